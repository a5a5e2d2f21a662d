#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>

#include "genmod/core/parallel.hpp"
#include "genmod/core/random.hpp"
#include "genmod/kernels/gemm.hpp"

namespace kernels_gemm_test {

using namespace genmod;

namespace {

// C = alpha op(A) op(B) + beta C0 by the definition, in double.
template <class T>
Tensor<double> reference(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                         const Tensor<T>& a, const Tensor<T>& b, double beta, const Tensor<T>& c0) {
  Tensor<double> c(Shape{m, n});
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::int64_t p = 0; p < k; ++p)
        s += static_cast<double>(ta ? a[p * m + i] : a[i * k + p]) *
             static_cast<double>(tb ? b[j * k + p] : b[p * n + j]);
      c[i * n + j] = alpha * s + beta * static_cast<double>(c0[i * n + j]);
    }
  return c;
}

template <class T>
void check_products(double tol) {
  Generator g(21);
  // Sizes around the register and panel widths, depths beyond one packed depth block, and rows
  // beyond one packed row block.
  const std::int64_t shapes[][3] = {{1, 1, 1},       {5, 7, 3},       {17, 33, 19}, {48, 50, 64},
                                    {64, 130, 1100}, {130, 20, 2500}, {2100, 9, 40}};
  for (const auto& s : shapes) {
    const std::int64_t m = s[0], n = s[1], k = s[2];
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      Tensor<T> a(ta ? Shape{k, m} : Shape{m, k}), b(tb ? Shape{n, k} : Shape{k, n}), c0(Shape{m, n});
      fill_normal(a, g);
      fill_normal(b, g);
      fill_normal(c0, g);
      for (double beta : {0.0, 1.0, -0.5}) {
        INFO("m " << m << " n " << n << " k " << k << " ta " << ta << " tb " << tb << " beta " << beta);
        const Tensor<double> want = reference(ta, tb, m, n, k, 0.75, a, b, beta, c0);
        Tensor<T> c1 = c0.clone(), c2 = c0.clone();
        kernels::gemm<T>(ta, tb, m, n, k, T(0.75), a.data(), ta ? m : k, b.data(), tb ? k : n, T(beta), c1.data(), n);
        const kernels::PackedA<T> packed(ta, m, k, a.data(), ta ? m : k);
        kernels::gemm_packed<T>(packed, tb, n, T(0.75), b.data(), tb ? k : n, T(beta), c2.data(), n);
        double err1 = 0, err2 = 0;
        for (std::int64_t i = 0; i < m * n; ++i) {
          const double scale = 1 + std::sqrt(static_cast<double>(k));
          err1 = std::max(err1, std::abs(c1[i] - want[i]) / scale);
          err2 = std::max(err2, std::abs(c2[i] - want[i]) / scale);
        }
        CHECK(err1 < tol);
        CHECK(err2 < tol);
      }
    }
  }
}

}  // namespace

TEST_CASE("gemm and gemm_packed agree with the definition, every transpose, beta and thread count", "[kernels][gemm]") {
  const int saved = get_num_threads();
  for (int threads : {1, 2}) {
    INFO("threads " << threads);
    set_num_threads(threads);
    check_products<double>(1e-12);
    check_products<float>(1e-5);
  }
  set_num_threads(saved);
}

}  // namespace kernels_gemm_test
