// The message of the genmod::Error a callable throws, for tests that check several parts of it.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "genmod/core/check.hpp"

namespace genmod::test {

/// What f throws as a genmod::Error (fails the test, and returns "", when it throws nothing).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return {};
}

}  // namespace genmod::test
