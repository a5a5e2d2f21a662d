#pragma once
/// \file config.hpp
/// Version, project-wide macros and the genmod::Error exception family.

#include <stdexcept>
#include <string>

#define GENMOD_VERSION_MAJOR 0
#define GENMOD_VERSION_MINOR 1
#define GENMOD_VERSION_PATCH 0
#define GENMOD_VERSION_STRING "0.1.0"

#if defined(_OPENMP)
#define GENMOD_HAS_OPENMP 1
#else
#define GENMOD_HAS_OPENMP 0
#endif

#define GENMOD_STRINGIFY_IMPL(x) #x
#define GENMOD_STRINGIFY(x) GENMOD_STRINGIFY_IMPL(x)

namespace genmod {

/// Base of every exception genmod throws on purpose: bad input, bad shapes, bad files.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Tensor shapes that do not fit an op; the message names the op and both shapes.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A hyperparameter or argument outside its valid range.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A file that is missing, truncated or corrupt.
class IOError : public Error {
 public:
  using Error::Error;
};

/// A NaN or Inf where a finite number was required (e.g. a training loss).
class NumericError : public Error {
 public:
  using Error::Error;
};

/// Misuse of the autodiff tape (e.g. backward from a non-scalar without a seed gradient).
class AutodiffError : public Error {
 public:
  using Error::Error;
};

}  // namespace genmod
