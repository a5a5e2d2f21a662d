#include <catch2/catch.hpp>

#include "genmod/eval/linear_probe.hpp"

namespace eval_linear_probe_test {

using namespace genmod;

TEST_CASE("linear_probe: separates Gaussian blobs, sees through feature scale, rejects bad input", "[eval][probe]") {
  // Three classes around centres far apart in 4-D, one feature scaled by 1000: standardization
  // makes that harmless.
  Generator g(1);
  const std::int64_t n = 600;
  auto make = [&](std::int64_t rows) {
    Tensor<float> x = randn<float>({rows, 4}, g);
    Tensor<std::int64_t> y(Shape{rows});
    for (std::int64_t i = 0; i < rows; ++i) {
      y[i] = i % 3;
      x(i, y[i]) += 4.f;
      x(i, 3) *= 1000.f;
    }
    return std::pair{x, y};
  };
  const auto [xtr, ytr] = make(n);
  const auto [xte, yte] = make(300);
  const auto r = eval::linear_probe(xtr, ytr, xte, yte, {.epochs = 20, .batch_size = 64});
  INFO("train " << r.train_accuracy << " test " << r.test_accuracy << " loss " << r.test_loss);
  CHECK(r.test_accuracy > 0.95);
  CHECK(r.train_accuracy > 0.95);
  CHECK(r.test_loss < 0.2);
  CHECK_THROWS_AS(eval::linear_probe(xtr, ytr, Tensor<float>(Shape{3, 5}), yte), ShapeError);
  CHECK_THROWS_AS(eval::linear_probe(xtr, Tensor<std::int64_t>(Shape{5}), xte, yte), ShapeError);
  CHECK_THROWS_AS(eval::linear_probe(xtr, ytr, xte, yte, {.epochs = 0}), ValueError);
}

}  // namespace eval_linear_probe_test
