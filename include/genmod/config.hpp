#pragma once
/// \file config.hpp
/// Version, project-wide macros and the genmod::Error exception family.

#include <stdexcept>
#include <string>

/// Major version: incremented on incompatible API changes.
#define GENMOD_VERSION_MAJOR 0
/// Minor version: new features, source-compatible.
#define GENMOD_VERSION_MINOR 1
/// Patch version: fixes only.
#define GENMOD_VERSION_PATCH 0
/// "MAJOR.MINOR.PATCH", as also found by CMake's find_package(genmod VERSION).
#define GENMOD_VERSION_STRING "0.1.0"

/// 1 when compiled with OpenMP (parallel kernels), 0 when the kernels run on one thread.
#if defined(_OPENMP)
#define GENMOD_HAS_OPENMP 1
#else
#define GENMOD_HAS_OPENMP 0
#endif

/// 1 under GCC 12 and older, whose AVX-512 intrinsics warn about their own self-initialised
/// `__Y` (-Wmaybe-uninitialized at -O2, -Wuninitialized at -O1; GCC bug 105593, fixed in GCC 13)
/// wherever they are inlined. The headers that inline them (kernels/simd.hpp, kernels/microkernel.hpp
/// and the umbrella genmod.hpp) silence those two warnings in a `#pragma GCC diagnostic` region
/// (GENMOD_GCC_BUG_105593_BEGIN ... GENMOD_GCC_BUG_105593_END) when it is 1, so that a user's
/// `-Wall` build is clean without flags of its own.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#define GENMOD_GCC_BUG_105593 1
/// Opens the region that silences GCC bug 105593's two warnings (nothing on other compilers).
#define GENMOD_GCC_BUG_105593_BEGIN                                                          \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
/// Closes the region GENMOD_GCC_BUG_105593_BEGIN opened.
#define GENMOD_GCC_BUG_105593_END _Pragma("GCC diagnostic pop")
#else
#define GENMOD_GCC_BUG_105593 0
/// Nothing: this compiler does not have the bug.
#define GENMOD_GCC_BUG_105593_BEGIN
/// Nothing: this compiler does not have the bug.
#define GENMOD_GCC_BUG_105593_END
#endif

// GENMOD_EIGEN_INCLUDE_BEGIN / GENMOD_EIGEN_INCLUDE_END enclose every `#include <Eigen/...>` of
// genmod. GCC and clang judge a warning by the pragmas at the code's own location, and Eigen's
// code is where a genmod header first includes it, so the region silences there what Eigen 3.4
// itself trips over in a user's -Wall -Wextra -Wpedantic build when Eigen is found with -I rather
// than as a system header: unused variables in its bfloat16 packet functions, GCC 12's false
// -Wmaybe-uninitialized in the AVX-512 intrinsics it inlines (GENMOD_GCC_BUG_105593), and
// clang's compound literal in _cvtss_sh (-Wc99-extensions).
#if defined(__clang__)
/// Opens the region around an Eigen include (see above).
#define GENMOD_EIGEN_INCLUDE_BEGIN                                                           \
  _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Wunused-variable\"") \
      _Pragma("clang diagnostic ignored \"-Wc99-extensions\"")
/// Closes the region GENMOD_EIGEN_INCLUDE_BEGIN opened.
#define GENMOD_EIGEN_INCLUDE_END _Pragma("clang diagnostic pop")
#elif GENMOD_GCC_BUG_105593
/// Opens the region around an Eigen include (see above).
#define GENMOD_EIGEN_INCLUDE_BEGIN                                                       \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wunused-variable\"") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")                        \
          _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
/// Closes the region GENMOD_EIGEN_INCLUDE_BEGIN opened.
#define GENMOD_EIGEN_INCLUDE_END _Pragma("GCC diagnostic pop")
#else
/// Opens the region around an Eigen include (see above).
#define GENMOD_EIGEN_INCLUDE_BEGIN \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wunused-variable\"")
/// Closes the region GENMOD_EIGEN_INCLUDE_BEGIN opened.
#define GENMOD_EIGEN_INCLUDE_END _Pragma("GCC diagnostic pop")
#endif

/// Helper of GENMOD_STRINGIFY: stringizes its argument unexpanded.
#define GENMOD_STRINGIFY_IMPL(x) #x
/// The macro-expanded argument as a string literal: GENMOD_STRINGIFY(GENMOD_VERSION_MAJOR) is "0".
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
