// The fused affine-coupling kernels (kernels/coupling.hpp): float against double, vector bodies
// and scalar tails, one and two threads giving the same bits, gscale accumulated into what is
// there, and absent gradients (gy or glogdet) read as zero.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>

#include "genmod/core/parallel.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/coupling.hpp"

namespace kernels_coupling_test {

using namespace genmod;
using kernels::CouplingBound;

namespace {

constexpr CouplingBound kBounds[] = {CouplingBound::tanh, CouplingBound::sigmoid, CouplingBound::exp};

// Every output of one forward and one backward pass, for inputs given in double and run in T.
struct Outputs {
  Tensor<double> y, logdet, gx, grt, gscale;
};

struct Data {
  std::int64_t n, d;
  Tensor<double> x, rt, scale, mask, gy, glogdet, gscale0;
};

Data make_data(std::int64_t n, std::int64_t d, std::uint64_t seed) {
  Generator g(seed);
  Data a{n,
         d,
         Tensor<double>({n, d}),
         Tensor<double>({n, 2 * d}),
         Tensor<double>({d}),
         Tensor<double>({d}),
         Tensor<double>({n, d}),
         Tensor<double>({n}),
         Tensor<double>({d})};
  fill_normal(a.x, g);
  fill_normal(a.rt, g, 0.0, 1.5);
  fill_normal(a.scale, g, 0.5, 0.5);
  fill_normal(a.gy, g);
  fill_normal(a.glogdet, g);
  fill_normal(a.gscale0, g);
  for (std::int64_t i = 0; i < d; ++i) a.mask[i] = (i * 5 + n) % 3 == 0 ? 0.0 : 1.0;
  return a;
}

template <class T>
Tensor<T> as(const Tensor<double>& t) {
  Tensor<T> r(t.shape());
  for (std::int64_t i = 0; i < t.numel(); ++i) r[i] = static_cast<T>(t[i]);
  return r;
}
template <class T>
Tensor<double> to_double(const Tensor<T>& t) {
  Tensor<double> r(t.shape());
  for (std::int64_t i = 0; i < t.numel(); ++i) r[i] = static_cast<double>(t[i]);
  return r;
}

template <class T>
Outputs run(const Data& a, CouplingBound bound, bool with_gy = true, bool with_glogdet = true) {
  const Tensor<T> x = as<T>(a.x), rt = as<T>(a.rt), scale = as<T>(a.scale), mask = as<T>(a.mask);
  const Tensor<T> gy = as<T>(a.gy), gl = as<T>(a.glogdet);
  Tensor<T> y({a.n, a.d}), ld({a.n}), e({a.n, a.d}), th({a.n, a.d}), gx({a.n, a.d}), grt({a.n, 2 * a.d});
  Tensor<T> gscale = as<T>(a.gscale0);
  const kernels::CouplingLayout l{a.n, a.d};
  kernels::affine_coupling_forward<T>(l, bound,
                                      {.x = x.data(),
                                       .rt = rt.data(),
                                       .scale = scale.data(),
                                       .transform = mask.data(),
                                       .y = y.data(),
                                       .logdet = ld.data(),
                                       .e = e.data(),
                                       .th = th.data()});
  gx.fill(T(-7));  // must stay untouched without gy
  kernels::affine_coupling_backward<T>(l, bound,
                                       {.gy = with_gy ? gy.data() : nullptr,
                                        .glogdet = with_glogdet ? gl.data() : nullptr,
                                        .x = x.data(),
                                        .scale = scale.data(),
                                        .transform = mask.data(),
                                        .e = e.data(),
                                        .th = th.data(),
                                        .gx = gx.data(),
                                        .grt = grt.data(),
                                        .gscale = gscale.data()});
  return {to_double(y), to_double(ld), to_double(gx), to_double(grt), to_double(gscale)};
}

// The file comment's formulas, element by element in double.
Outputs reference(const Data& a, CouplingBound bound, bool with_gy = true, bool with_glogdet = true) {
  Outputs o{Tensor<double>({a.n, a.d}), zeros<double>({a.n}), full<double>({a.n, a.d}, -7.0),
            Tensor<double>({a.n, 2 * a.d}), a.gscale0.clone()};
  for (std::int64_t n = 0; n < a.n; ++n)
    for (std::int64_t i = 0; i < a.d; ++i) {
      const double r = a.rt(n, i), t = a.rt(n, a.d + i), m = a.mask[i], x = a.x(n, i);
      const double th = std::tanh(r), sig = 1 / (1 + std::exp(-(r + 2)));
      const double b = bound == CouplingBound::tanh      ? a.scale[i] * th
                       : bound == CouplingBound::sigmoid ? std::log(sig)
                                                         : r;
      const double dbdr = bound == CouplingBound::tanh      ? a.scale[i] * (1 - th * th)
                          : bound == CouplingBound::sigmoid ? 1 - sig
                                                            : 1;
      const double s = b * m, e = std::exp(s);
      o.y(n, i) = x * e + t * m;
      o.logdet[n] += s;
      const double gy = with_gy ? a.gy(n, i) : 0, gl = with_glogdet ? a.glogdet[n] : 0;
      if (with_gy) o.gx(n, i) = gy * e;
      const double gb = (gy * x * e + gl) * m;
      o.grt(n, i) = gb * dbdr;
      o.grt(n, a.d + i) = gy * m;
      if (bound == CouplingBound::tanh) o.gscale[i] += gb * th;
    }
  return o;
}

// max |a - b| / max(1, |b|) over all elements.
double worst(const Tensor<double>& a, const Tensor<double>& b) {
  REQUIRE(a.shape() == b.shape());
  double w = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) w = std::max(w, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  return w;
}

void expect_close(const Outputs& got, const Outputs& want, double tol, bool gscale_too) {
  CHECK(worst(got.y, want.y) <= tol);
  CHECK(worst(got.logdet, want.logdet) <= tol);
  CHECK(worst(got.gx, want.gx) <= tol);
  CHECK(worst(got.grt, want.grt) <= tol);
  if (gscale_too) CHECK(worst(got.gscale, want.gscale) <= tol);
}

bool same_bits(const Tensor<double>& a, const Tensor<double>& b) {
  for (std::int64_t i = 0; i < a.numel(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

}  // namespace

TEST_CASE("Coupling kernels: double and float against the formulas, bodies and tails", "[kernels]") {
  // d = 7: tails only; 37 and 100: bodies and tails; 784: realnvp_mlp's rows (13 backward blocks
  // of 64 floats). Float: the rounding of tanh, exp and the per-sample sums of up to 784 terms
  // (at most 2e-6 relative here).
  for (const std::int64_t d : {7, 37, 100, 784}) {
    const Data a = make_data(5, d, static_cast<std::uint64_t>(d));
    for (const CouplingBound bound : kBounds) {
      INFO("d " << d << ", bound " << static_cast<int>(bound));
      const Outputs want = reference(a, bound);
      expect_close(run<double>(a, bound), want, 1e-13, true);
      expect_close(run<float>(a, bound), want, 1e-5, true);
      // Without gy: gx untouched, t's half zero; without glogdet: only gy's terms.
      expect_close(run<double>(a, bound, false, true), reference(a, bound, false, true), 1e-13, true);
      expect_close(run<double>(a, bound, true, false), reference(a, bound, true, false), 1e-13, true);
    }
  }
}

TEST_CASE("Coupling kernels: the same bits at one and two threads", "[kernels][threads]") {
  const int saved = get_num_threads();
  // 64 x 784: both passes above the parallel grain, so two threads really split the work.
  const Data a = make_data(64, 784, 3);
  for (const CouplingBound bound : kBounds) {
    INFO("bound " << static_cast<int>(bound));
    set_num_threads(1);
    const Outputs one = run<float>(a, bound);
    set_num_threads(2);
    const Outputs two = run<float>(a, bound);
    CHECK(same_bits(one.y, two.y));
    CHECK(same_bits(one.logdet, two.logdet));
    CHECK(same_bits(one.gx, two.gx));
    CHECK(same_bits(one.grt, two.grt));
    CHECK(same_bits(one.gscale, two.gscale));
  }
  set_num_threads(saved);
}

}  // namespace kernels_coupling_test
