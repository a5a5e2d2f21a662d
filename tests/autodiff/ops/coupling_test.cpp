// affine_coupling (autodiff/ops/coupling.hpp): first- and second-order gradient checks in double
// for every bound on [N, D] and [N, C, H, W] inputs, with y and logdet used together and alone, and
// values and gradients against the composed form of the same math (slice, bound, masks, exp, sum).
#include <array>
#include <cstdint>

#include "genmod/autodiff/ops/coupling.hpp"
#include "support/gradcheck.hpp"

namespace autodiff_ops_coupling_test {

using namespace genmod;
using genmod::test::rnd;
using V = Var<double>;
using Xs = std::span<const V>;

namespace {

constexpr CouplingBound kBounds[] = {CouplingBound::tanh, CouplingBound::sigmoid, CouplingBound::exp};

// A transform mask of `sample`'s shape: 1 at every other element (odd count: unequal halves), 0 else.
Tensor<double> alternating(const Shape& sample) {
  Tensor<double> m(sample);
  for (std::int64_t i = 0; i < m.numel(); ++i) m[i] = (i * 7 + 3) % 5 < 3 ? 1.0 : 0.0;
  return m;
}

Shape sample_of(const Shape& x) {
  return Shape(x.dims().subspan(1));
}

// The composed form: what flows::AffineCoupling computed before the fused op.
V composed(const V& x, const V& rt, const V& scale, const Tensor<double>& mask, CouplingBound bound, V& logdet) {
  const std::int64_t c = x.dim(1);
  const V m(mask);
  const V r = slice(rt, 1, 0, c), t = slice(rt, 1, c, c);
  V b = bound == CouplingBound::tanh      ? mul(tanh(r), scale)
        : bound == CouplingBound::sigmoid ? log_sigmoid(add_scalar(r, 2.0))
                                          : r;
  const V s = mul(b, m);
  logdet = sum(flatten(s, 1), 1);
  return add(mul(x, exp(s)), mul(t, m));
}

// [N, D + 1]: y flattened and logdet side by side, so that one projection weighs both outputs.
V joined(const V& y, const V& logdet) {
  const std::array<V, 2> parts{flatten(y, 1), reshape(logdet, Shape{y.dim(0), 1})};
  return concat(std::span<const V>(parts), 1);
}

// The op's inputs for x of shape `xs`: x, rt, and scale (tanh) or an undefined Var.
struct Inputs {
  Tensor<double> x, rt, scale, mask;
};
Inputs inputs_for(const Shape& xs, std::uint64_t seed) {
  const Shape sample = sample_of(xs);
  return {rnd(xs, seed), rnd(xs.with_dim(1, 2 * xs[1]), seed + 1, 0.8), rnd(sample, seed + 2, 0.7),
          alternating(sample)};
}

}  // namespace

TEST_CASE("affine_coupling: gradients to second order, every bound, [N, D] and [N, C, H, W]", "[gradcheck][ops]") {
  for (const Shape xs : {Shape{3, 7}, Shape{2, 2, 3, 3}}) {
    const Inputs in = inputs_for(xs, 10);
    for (const CouplingBound bound : kBounds) {
      INFO("x " << xs.to_string() << ", bound " << static_cast<int>(bound));
      const bool tanh_bound = bound == CouplingBound::tanh;
      auto scale_of = [tanh_bound](Xs v) { return tanh_bound ? v[2] : V(); };
      const Tensor<double>& mask = in.mask;
      // y and logdet together; the squares make the second derivatives reach through y's node too.
      GENMOD_CHECK_GRADIENTS(
          [&](Xs v) {
            V ld;
            V y = affine_coupling(v[0], v[1], scale_of(v), mask, bound, ld);
            return joined(square(y), square(ld));
          },
          in.x, in.rt, in.scale);
      // y alone (logdet unused) and logdet alone (y unused).
      GENMOD_CHECK_GRADIENTS(
          [&](Xs v) {
            V ld;
            return tanh(affine_coupling(v[0], v[1], scale_of(v), mask, bound, ld));
          },
          in.x, in.rt, in.scale);
      GENMOD_CHECK_GRADIENTS(
          [&](Xs v) {
            V ld;
            affine_coupling(v[0], v[1], scale_of(v), mask, bound, ld);
            return square(ld);
          },
          in.x, in.rt, in.scale);
    }
  }
}

TEST_CASE("affine_coupling equals the composed form: values and gradients", "[ops]") {
  for (const Shape xs : {Shape{4, 9}, Shape{3, 2, 5, 3}, Shape{5, 37}}) {
    const Inputs in = inputs_for(xs, 20);
    for (const CouplingBound bound : kBounds) {
      for (const bool create_graph : {false, true}) {
        INFO("x " << xs.to_string() << ", bound " << static_cast<int>(bound) << ", create_graph " << create_graph);
        const bool tanh_bound = bound == CouplingBound::tanh;
        const Tensor<double> wy = rnd(xs, 30), wl = rnd({xs[0]}, 31);
        // Values and the gradients of sum(wy y^2) + sum(wl logdet) with respect to x, rt, scale.
        auto run = [&](bool fused) {
          Tape<double> tape;
          const V x = tape.leaf(in.x), rt = tape.leaf(in.rt), scale = tape.leaf(in.scale);
          V ld;
          const V y = fused ? affine_coupling(x, rt, tanh_bound ? scale : V(), in.mask, bound, ld)
                            : composed(x, rt, scale, in.mask, bound, ld);
          const V loss = add(sum(mul(square(y), V(wy))), sum(mul(ld, V(wl))));
          auto g = tape.grad(loss, {x, rt, scale}, {.create_graph = create_graph, .allow_unused = true});
          return std::array<Tensor<double>, 5>{y.value(), ld.value(), g[0].value(), g[1].value(), g[2].value()};
        };
        const auto fused = run(true), reference = run(false);
        const char* names[] = {"y", "logdet", "gx", "grt", "gscale"};
        for (std::size_t k = 0; k < fused.size(); ++k) {
          INFO(names[k]);
          REQUIRE(fused[k].shape() == reference[k].shape());
          double worst = 0;
          for (std::int64_t i = 0; i < fused[k].numel(); ++i)
            worst = std::max(worst, std::abs(fused[k][i] - reference[k][i]) / std::max(1.0, std::abs(reference[k][i])));
          CHECK(worst <= 1e-13);
        }
      }
    }
  }
}

TEST_CASE("affine_coupling in float against double: values and gradients", "[ops]") {
  const Inputs in = inputs_for(Shape{6, 3, 7, 5}, 60);  // 105 elements per sample: bodies and tails
  const Tensor<double> wy = rnd({6, 3, 7, 5}, 61), wl = rnd({6}, 62);
  for (const CouplingBound bound : kBounds) {
    INFO("bound " << static_cast<int>(bound));
    const bool tanh_bound = bound == CouplingBound::tanh;
    // y, logdet and the gradients of sum(wy y) + sum(wl logdet) with respect to x, rt and scale.
    auto run = [&]<class T>(T) {
      auto cast = [](const Tensor<double>& t) {
        Tensor<T> r(t.shape());
        for (std::int64_t i = 0; i < t.numel(); ++i) r[i] = static_cast<T>(t[i]);
        return r;
      };
      Tape<T> tape;
      const Var<T> x = tape.leaf(cast(in.x)), rt = tape.leaf(cast(in.rt)), scale = tape.leaf(cast(in.scale));
      Var<T> ld;
      const Var<T> y = affine_coupling(x, rt, tanh_bound ? scale : Var<T>(), cast(in.mask), bound, ld);
      const Var<T> loss = add(sum(mul(y, Var<T>(cast(wy)))), sum(mul(ld, Var<T>(cast(wl)))));
      auto g = tape.grad(loss, {x, rt, scale}, {.allow_unused = true});
      return std::array<Tensor<T>, 5>{y.value(), ld.value(), g[0].value(), g[1].value(), g[2].value()};
    };
    const auto f = run(0.0f);
    const auto d = run(0.0);
    for (std::size_t k = 0; k < f.size(); ++k) {
      INFO("output " << k << " (y, logdet, gx, grt, gscale)");
      double worst = 0;
      for (std::int64_t i = 0; i < d[k].numel(); ++i)
        worst = std::max(worst, std::abs(static_cast<double>(f[k][i]) - d[k][i]) / std::max(1.0, std::abs(d[k][i])));
      CHECK(worst <= 1e-5);  // float rounding of tanh, exp and sums of 105 terms
    }
  }
}

TEST_CASE("affine_coupling: the kept elements pass through, constants record nothing", "[ops]") {
  const Inputs in = inputs_for(Shape{2, 6}, 40);
  V ld;
  const V y = affine_coupling(V(in.x), V(in.rt), V(in.scale), in.mask, CouplingBound::tanh, ld);
  CHECK_FALSE(y.requires_grad());
  CHECK_FALSE(ld.requires_grad());
  for (std::int64_t n = 0; n < 2; ++n)
    for (std::int64_t i = 0; i < 6; ++i)
      if (in.mask[i] == 0) CHECK(y.value()(n, i) == in.x(n, i));
  // The learned scale bounds s: |logdet| <= sum of |scale| over the transformed elements.
  double bound = 0;
  for (std::int64_t i = 0; i < 6; ++i) bound += in.mask[i] * std::abs(in.scale[i]);
  CHECK(std::abs(ld.value()[0]) <= bound);
  // Under a tape the two outputs are recorded as two nodes.
  Tape<double> tape;
  const V x = tape.leaf(in.x);
  V ld2;
  const V y2 = affine_coupling(x, V(in.rt), V(), in.mask, CouplingBound::exp, ld2);
  CHECK(std::string(tape.producer_name(y2)) == "affine_coupling");
  CHECK(std::string(tape.producer_name(ld2)) == "affine_coupling.logdet");
}

TEST_CASE("affine_coupling: errors name the argument and the shapes", "[ops][errors]") {
  const Inputs in = inputs_for(Shape{2, 4}, 50);
  V ld;
  CHECK_THROWS_WITH(affine_coupling(V(in.x), V(rnd({2, 6}, 1)), V(in.scale), in.mask, CouplingBound::tanh, ld),
                    Catch::Contains("affine_coupling: expected rt") && Catch::Contains("of shape [2, 8]") &&
                        Catch::Contains("got shape [2, 6]"));
  CHECK_THROWS_WITH(affine_coupling(V(in.x), V(in.rt), V(in.scale), alternating(Shape{5}), CouplingBound::tanh, ld),
                    Catch::Contains("transform mask") && Catch::Contains("[4]") && Catch::Contains("[5]"));
  Tensor<double> half = in.mask.clone();
  half[2] = 0.5;
  CHECK_THROWS_WITH(affine_coupling(V(in.x), V(in.rt), V(in.scale), half, CouplingBound::tanh, ld),
                    Catch::Contains("0 or 1") && Catch::Contains("0.5") && Catch::Contains("index 2"));
  CHECK_THROWS_WITH(affine_coupling(V(in.x), V(in.rt), V(), in.mask, CouplingBound::tanh, ld),
                    Catch::Contains("scale"));
  CHECK_THROWS_WITH(affine_coupling(V(in.x), V(in.rt), V(in.scale), in.mask, CouplingBound::exp, ld),
                    Catch::Contains("undefined for the sigmoid and exp bounds"));
  CHECK_THROWS_WITH(affine_coupling(V(rnd({4}, 1)), V(in.rt), V(in.scale), in.mask, CouplingBound::tanh, ld),
                    Catch::Contains("rank >= 2"));
}

}  // namespace autodiff_ops_coupling_test
