#include "support/gradcheck.hpp"

namespace autodiff_ops_select_test {

using namespace genmod;
using genmod::test::rnd;
using V = Var<double>;
using Xs = std::span<const V>;

TEST_CASE("where and masked multiply", "[gradcheck][ops][select]") {
  auto mask = from_data<double>({2, 3}, {1, 0, 1, 0, 0, 1});
  GENMOD_CHECK_GRADIENTS([mask](Xs v) { return where(mask, v[0], v[1]); }, rnd({2, 3}, 1), rnd({2, 3}, 2));
  GENMOD_CHECK_GRADIENTS([mask](Xs v) { return where(mask, v[0], v[1]); }, rnd({3}, 3), rnd({2, 1}, 4));
  GENMOD_CHECK_GRADIENTS([mask](Xs v) { return mul(v[0], V(mask)); }, rnd({2, 3}, 5));
}

TEST_CASE("gather and scatter_add along an axis", "[gradcheck][ops][select]") {
  auto idx = from_data<std::int64_t>({3, 1}, {2, 0, 3});
  GENMOD_CHECK_GRADIENTS([idx](Xs v) { return gather(v[0], 1, idx); }, rnd({3, 4}, 6));
  // Repeated indices: the adjoint adds.
  auto idx2 = from_data<std::int64_t>({2, 3}, {1, 1, 0, 2, 0, 2});
  GENMOD_CHECK_GRADIENTS([idx2](Xs v) { return gather(v[0], 1, idx2); }, rnd({2, 3}, 7));
  // Per-pixel classes: logits [N, C, H, W], targets [N, 1, H, W] along axis 1.
  Tensor<std::int64_t> t({2, 1, 2, 2});
  for (int i = 0; i < 8; ++i) t[i] = (i * 3) % 5;
  GENMOD_CHECK_GRADIENTS([t](Xs v) { return gather(log_softmax(v[0], 1), 1, t); }, rnd({2, 5, 2, 2}, 8));
  GENMOD_CHECK_GRADIENTS([idx](Xs v) { return scatter_add(v[0], Shape{3, 4}, 1, idx); }, rnd({3, 1}, 9));
}

TEST_CASE("one_hot and index validation", "[ops][select][errors]") {
  auto labels = from_data<std::int64_t>({3}, {2, 0, 1});
  auto oh = one_hot<float>(labels, 3);
  CHECK(oh(0, 2) == 1.f);
  CHECK(oh(0, 0) == 0.f);
  CHECK(oh(2, 1) == 1.f);
  CHECK_THROWS_WITH(one_hot<float>(from_data<std::int64_t>({1}, {3}), 3), Catch::Contains("label 3"));
  V x(zeros<double>({3, 4}));
  CHECK_THROWS_AS(gather(x, 1, from_data<std::int64_t>({3, 1}, {0, 4, 1})), ValueError);
  CHECK_THROWS_AS(gather(x, 1, from_data<std::int64_t>({2, 1}, {0, 1})), ShapeError);
  CHECK_THROWS_AS(where(zeros<double>({2, 2}), x, x), ShapeError);
}

TEST_CASE("where does not leak Inf from the branch not taken", "[ops][select][stability]") {
  Tape<double> tape;
  auto a = tape.leaf(from_data<double>({2}, {1.0, 0.0}));
  auto l = log(a);  // -inf at a = 0
  auto y = where(from_data<double>({2}, {1, 0}), l, V(zeros<double>({2})));
  CHECK(std::isfinite(y.value()[1]));
  auto g = tape.grad(sum(y), {a})[0].value();
  CHECK(g[0] == 1.0);
}

}  // namespace autodiff_ops_select_test
