#include <cmath>

#include "support/gradcheck.hpp"
#include "genmod/losses/classification.hpp"

namespace losses_classification_test {

using namespace genmod;
using V = Var<double>;
using Xs = std::span<const V>;
using test::rnd;

namespace {

Tensor<std::int64_t> labels_of(std::initializer_list<std::int64_t> l) {
  return from_data<std::int64_t>({static_cast<std::int64_t>(l.size())}, l);
}

}  // namespace

TEST_CASE("cross_entropy: gradients, first and second order", "[gradcheck][losses][classification]") {
  const auto labels = labels_of({0, 4, 2, 2});
  GENMOD_CHECK_GRADIENTS([labels](Xs v) { return losses::cross_entropy(v[0], labels); }, rnd({4, 5}, 1, 2.0));
  const auto one = labels_of({1});
  GENMOD_CHECK_GRADIENTS([one](Xs v) { return losses::cross_entropy(v[0], one); }, rnd({1, 2}, 2));
}

TEST_CASE("cross_entropy: per-sample negative log-likelihood of hand-computed cases", "[losses][classification]") {
  // Row 0: logits [0, 0, 0], label 1: -log(1/3) = log 3 = 1.0986123.
  // Row 1: logits [1, 2, 3], label 2: log(e + e^2 + e^3) - 3 = log(1 + e^-1 + e^-2) = 0.4076060.
  Var<float> logits(from_data<float>({2, 3}, {0.f, 0.f, 0.f, 1.f, 2.f, 3.f}));
  auto y = losses::cross_entropy(logits, labels_of({1, 2})).value();
  REQUIRE(y.shape() == (Shape{2}));
  CHECK(y[0] == Approx(1.0986123));
  CHECK(y[1] == Approx(0.4076060));
  // Stable for huge logits: [1000, 0] -> label 1 costs 1000 nats, label 0 costs log(1 + e^-1000) = 0.
  Var<float> big(from_data<float>({2, 2}, {1000.f, 0.f, 1000.f, 0.f}));
  auto b = losses::cross_entropy(big, labels_of({1, 0})).value();
  CHECK(b[0] == Approx(1000.0));
  CHECK(b[1] == Approx(0.0).margin(1e-6));
}

TEST_CASE("cross_entropy: agrees with -gather(log_softmax) in value and gradient", "[losses][classification]") {
  const auto labels = labels_of({3, 0, 1, 1, 2, 0});
  const Tensor<double> x0 = rnd({6, 4}, 5, 3.0);
  Tape<double> tape;
  auto x = tape.leaf(x0);
  auto fused = losses::cross_entropy(x, labels);
  auto ref = neg(reshape(gather(log_softmax(x, 1), 1, labels.reshape({6, 1})), Shape{6}));
  CHECK(allclose(fused.value(), ref.value(), 1e-12, 1e-12));
  // Weighted sums, so each row's gradient is scaled differently: d/dx = w_i (softmax - onehot).
  const V w(rnd({6}, 6));
  auto g_fused = tape.grad(sum(mul(fused, w)), {x})[0].value();
  auto g_ref = tape.grad(sum(mul(ref, w)), {x})[0].value();
  CHECK(allclose(g_fused, g_ref, 1e-12, 1e-12));
  // Each row of softmax - onehot sums to 0.
  auto g = tape.grad(sum(fused), {x})[0].value();
  for (std::int64_t i = 0; i < 6; ++i) CHECK(g(i, 0) + g(i, 1) + g(i, 2) + g(i, 3) == Approx(0.0).margin(1e-12));
}

TEST_CASE("cross_entropy per position: gradients, first and second order", "[gradcheck][losses][classification]") {
  // Logits [N, C, H, W] and labels [N, H, W], as PixelCNN's per-pixel classes. 12 and 20 positions:
  // full registers and scalar tails of the position-vectorised kernel.
  Tensor<std::int64_t> l4({2, 3, 4}), l3({2, 20});
  for (std::int64_t i = 0; i < l4.numel(); ++i) l4[i] = (i * 7) % 5;
  for (std::int64_t i = 0; i < l3.numel(); ++i) l3[i] = (i * 5) % 3;
  GENMOD_CHECK_GRADIENTS([l4](Xs v) { return losses::cross_entropy(v[0], l4); }, rnd({2, 5, 3, 4}, 11, 2.0));
  GENMOD_CHECK_GRADIENTS([l3](Xs v) { return losses::cross_entropy(v[0], l3); }, rnd({2, 3, 20}, 12, 2.0));
}

TEST_CASE("cross_entropy per position agrees with -gather(log_softmax(x, 1)), in float and double",
          "[losses][classification]") {
  auto check = []<class T>(T tol) {
    Tensor<std::int64_t> labels({3, 5, 4});
    for (std::int64_t i = 0; i < labels.numel(); ++i) labels[i] = (i * 11 + 3) % 7;
    Tensor<T> x0({3, 7, 5, 4});
    Generator gen(13);
    fill_normal(x0, gen, T(0), T(4));
    const Tensor<T> w0 = [&] {
      Tensor<T> w({3, 5, 4});
      fill_normal(w, gen);
      return w;
    }();
    Tape<T> tape;
    auto x = tape.leaf(x0);
    auto fused = losses::cross_entropy(x, labels);
    REQUIRE(fused.shape() == (Shape{3, 5, 4}));
    auto ref = neg(reshape(gather(log_softmax(x, 1), 1, labels.reshape({3, 1, 5, 4})), Shape{3, 5, 4}));
    CHECK(allclose(fused.value(), ref.value(), tol, tol));
    const Var<T> w(w0);  // a weight per position, so every position's gradient is scaled differently
    auto g_fused = tape.grad(sum(mul(fused, w)), {x})[0].value();
    auto g_ref = tape.grad(sum(mul(ref, w)), {x})[0].value();
    CHECK(allclose(g_fused, g_ref, tol, tol));
  };
  check(1e-12);
  check(2e-5f);
}

TEST_CASE("cross_entropy: bad shapes and out-of-range labels throw", "[losses][classification]") {
  V logits(zeros<double>({2, 3}));
  CHECK_THROWS_AS(losses::cross_entropy(V(zeros<double>({3})), labels_of({0, 1, 2})), ShapeError);
  CHECK_THROWS_AS(losses::cross_entropy(V(zeros<double>({2, 0})), labels_of({0, 0})), ShapeError);
  CHECK_THROWS_AS(losses::cross_entropy(logits, labels_of({0, 1, 2})), ShapeError);
  CHECK_THROWS_AS(losses::cross_entropy(logits, from_data<std::int64_t>({2, 1}, {0, 1})), ShapeError);
  CHECK_THROWS_AS(losses::cross_entropy(logits, labels_of({0, 3})), ValueError);
  CHECK_THROWS_WITH(losses::cross_entropy(logits, labels_of({0, 3})),
                    Catch::Contains("cross_entropy") && Catch::Contains("label 3") && Catch::Contains("position 1"));
  CHECK_THROWS_AS(losses::cross_entropy(logits, labels_of({-1, 0})), ValueError);
  // Per-position logits [N, C, H, W] need labels [N, H, W].
  V image(zeros<double>({2, 3, 4, 5}));
  CHECK_THROWS_WITH(losses::cross_entropy(image, Tensor<std::int64_t>({2, 4})),
                    Catch::Contains("expected labels [2, 4, 5]") && Catch::Contains("[2, 3, 4, 5]"));
  Tensor<std::int64_t> pixels = zeros<std::int64_t>({2, 4, 5});
  pixels[17] = 3;
  CHECK_THROWS_WITH(losses::cross_entropy(image, pixels), Catch::Contains("label 3") && Catch::Contains("position 17"));
}

TEST_CASE("accuracy: fraction of rows whose argmax is the label", "[losses][classification]") {
  // argmax per row: 1 (label 1, right), 0 (label 0, right), 1 (label 0, wrong), a tie -> 0 (label 0, right).
  auto logits = from_data<float>({4, 2}, {0.1f, 0.9f, 0.8f, 0.2f, 0.3f, 0.7f, 0.5f, 0.5f});
  CHECK(losses::accuracy(logits, labels_of({1, 0, 0, 0})) == 0.75);
  CHECK(losses::accuracy(logits, labels_of({0, 1, 0, 1})) == 0.0);
  CHECK(losses::accuracy(from_data<double>({1, 3}, {-5.0, -1.0, -2.0}), labels_of({1})) == 1.0);
  CHECK_THROWS_AS(losses::accuracy(logits, labels_of({1, 0})), ShapeError);
  CHECK_THROWS_AS(losses::accuracy(logits, labels_of({1, 0, 2, 0})), ValueError);
  CHECK_THROWS_AS(losses::accuracy(zeros<float>({0, 3}), Tensor<std::int64_t>(Shape{0})), ShapeError);
  CHECK_THROWS_AS(losses::accuracy(zeros<float>({2, 3, 4}), zeros<std::int64_t>({2, 4})), ShapeError);
}

}  // namespace losses_classification_test
