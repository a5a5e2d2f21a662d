#include <catch2/catch.hpp>

#include "genmod/autodiff/autodiff.hpp"

using namespace genmod;

TEST_CASE("A tiny graph differentiates", "[autodiff]") {
  Tape<double> tape;
  auto x = tape.leaf(from_data<double>({3}, {1, 2, 3}));
  auto y = sum(x * x * 3.0);
  auto g = tape.grad(y, {x});
  CHECK(g[0].value()[2] == Approx(18.0));
}
