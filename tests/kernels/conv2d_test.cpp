#include <catch2/catch.hpp>

#include <algorithm>
#include <span>

#include "genmod/autodiff/ops/conv.hpp"

using namespace genmod;

namespace {

// Direct definition: y[n,o,i,j] = b[o] + sum_{c,ky,kx} w[o,c,ky,kx] x[n,c,i*s-p+ky*d, j*s-p+kx*d].
Tensor<double> naive_conv(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& b, std::int64_t s,
                          std::int64_t p, std::int64_t d, const bool* keep = nullptr) {
  const std::int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const std::int64_t O = w.dim(0), K = w.dim(2);
  const std::int64_t Ho = (H + 2 * p - d * (K - 1) - 1) / s + 1, Wo = (W + 2 * p - d * (K - 1) - 1) / s + 1;
  Tensor<double> y = zeros<double>({N, O, Ho, Wo});
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < O; ++o)
      for (std::int64_t i = 0; i < Ho; ++i)
        for (std::int64_t j = 0; j < Wo; ++j) {
          double acc = b.defined() ? b[o] : 0.0;
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t ky = 0; ky < K; ++ky)
              for (std::int64_t kx = 0; kx < K; ++kx) {
                if (keep && !keep[ky * K + kx]) continue;
                const std::int64_t iy = i * s - p + ky * d, ix = j * s - p + kx * d;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += w(o, c, ky, kx) * x(n, c, iy, ix);
              }
          y(n, o, i, j) = acc;
        }
  return y;
}

Tensor<double> rnd(const Shape& s, std::uint64_t seed) {
  Generator g(seed);
  return randn<double>(s, g);
}

}  // namespace

TEST_CASE("conv2d matches the direct definition over strides, paddings and dilations", "[kernels][conv]") {
  struct Case {
    std::int64_t n, c, h, w, o, k, s, p, d;
  };
  for (const Case& t :
       {Case{2, 3, 7, 6, 4, 3, 1, 1, 1}, Case{2, 1, 28, 28, 8, 4, 2, 1, 1}, Case{1, 4, 9, 9, 2, 3, 2, 0, 2},
        Case{3, 5, 5, 5, 6, 1, 1, 0, 1}, Case{1, 2, 6, 8, 3, 5, 3, 2, 1}, Case{4, 32, 14, 14, 64, 4, 2, 1, 1},
        Case{13, 2, 14, 14, 3, 3, 1, 1, 1}, Case{21, 3, 8, 8, 5, 3, 2, 1, 1},
        // Output rows longer than one register (full register + masked tail), an unpadded stride-1
        // input read in place, and stride 3 with dilation (taps over all nine phases).
        Case{2, 3, 10, 11, 4, 3, 1, 0, 1}, Case{2, 2, 25, 24, 3, 3, 3, 1, 2}}) {
    INFO("n c h w o k s p d = " << t.n << " " << t.c << " " << t.h << " " << t.w << " " << t.o << " " << t.k << " "
                                << t.s << " " << t.p << " " << t.d);
    auto x = rnd({t.n, t.c, t.h, t.w}, 1), w = rnd({t.o, t.c, t.k, t.k}, 2), b = rnd({t.o}, 3);
    auto y = conv2d(Var<double>(x), Var<double>(w), Var<double>(b), {.stride = t.s, .padding = t.p, .dilation = t.d});
    auto ref = naive_conv(x, w, b, t.s, t.p, t.d);
    REQUIRE(y.shape() == ref.shape());
    CHECK(allclose(y.value(), ref, 1e-10, 1e-10));
  }
}

// Small outputs are computed several images per GEMM (kernels::detail::images_per_gemm); the
// three kernels must give what they give one image at a time, for full and partial groups.
TEST_CASE("Grouped-image convolution kernels equal the per-image ones", "[kernels][conv]") {
  for (const std::int64_t n : {1, 5, 6, 7, 19}) {
    kernels::Conv2dGeometry g;
    g.n = n, g.cin = 3, g.h = 9, g.w = 9, g.cout = 4, g.kh = 3, g.kw = 3, g.stride_h = g.stride_w = 2;
    g.pad_h = g.pad_w = 1, g.ho = 5, g.wo = 5;  // 25 output pixels: 11 images per GEMM
    INFO("batch " << n << ", images per GEMM " << kernels::detail::images_per_gemm(g));
    CHECK(kernels::detail::images_per_gemm(g) == 11);
    auto x = rnd({n, 3, 9, 9}, 11), w = rnd({4, 3, 3, 3}, 12), b = rnd({4}, 13), gy = rnd({n, 4, 5, 5}, 14);
    const auto y = kernels::conv2d_forward(g, x, w, b);
    const auto dx = kernels::conv2d_input_grad(g, gy, w);
    const auto dw = kernels::conv2d_weight_grad(g, x, gy);
    kernels::Conv2dGeometry one = g;
    one.n = 1;
    Tensor<double> dw_sum = zeros<double>(w.shape());
    for (std::int64_t i = 0; i < n; ++i) {
      const auto yi = kernels::conv2d_forward(one, x.rows(i, 1), w, b);
      const auto dxi = kernels::conv2d_input_grad(one, gy.rows(i, 1), w);
      const auto dwi = kernels::conv2d_weight_grad(one, x.rows(i, 1), gy.rows(i, 1));
      CHECK(allclose(y.rows(i, 1), yi, 1e-12, 1e-12));
      CHECK(allclose(dx.rows(i, 1), dxi, 1e-12, 1e-12));
      for (std::int64_t k = 0; k < dw_sum.numel(); ++k) dw_sum[k] += dwi[k];
    }
    CHECK(allclose(dw, dw_sum, 1e-10, 1e-10));
    // The fused pair (a transposed convolution's backward) gives both from one im2col.
    const auto [y2, dw2] = kernels::conv2d_forward_and_weight_grad(g, x, w, gy);
    CHECK(allclose(y2, kernels::conv2d_forward(g, x, w, Tensor<double>()), 1e-12, 1e-12));
    CHECK(allclose(dw2, dw, 1e-12, 1e-12));
  }
}

TEST_CASE("Masked convolution equals a dense one with masked weights zeroed", "[kernels][conv][masked]") {
  kernels::Conv2dGeometry g;
  g.n = 2, g.cin = 3, g.h = 6, g.w = 6, g.cout = 4, g.kh = 3, g.kw = 3, g.pad_h = g.pad_w = 1, g.ho = 6, g.wo = 6;
  const bool keep[9] = {true, true, true, true, false, false, false, false, false};  // type A, 3x3
  g.set_mask(std::span<const bool>(keep, 9));
  CHECK(g.num_taps() == 4);
  auto x = rnd({2, 3, 6, 6}, 4), w = rnd({4, 3, 3, 3}, 5);
  auto y = kernels::conv2d_forward(g, x, w, Tensor<double>());
  CHECK(allclose(y, naive_conv(x, w, Tensor<double>(), 1, 1, 1, keep), 1e-10, 1e-10));
  // Weight gradient: zero at masked taps.
  auto gw = kernels::conv2d_weight_grad(g, x, ones<double>(g.output_shape()));
  for (std::int64_t o = 0; o < 4; ++o)
    for (std::int64_t c = 0; c < 3; ++c)
      for (int t = 0; t < 9; ++t)
        if (!keep[t]) CHECK(gw[(o * 3 + c) * 9 + t] == 0.0);
}

TEST_CASE("Transposed convolution is the adjoint of convolution", "[kernels][conv][transpose]") {
  // <C(x, W), y> == <x, Cx*(y, W)> for random x, y.
  auto w = rnd({4, 3, 4, 4}, 6);  // ConvT(4 -> 3) weight [Cin_T, Cout_T, k, k]
  auto yin = rnd({2, 4, 7, 7}, 7);
  auto out = conv_transpose2d(Var<double>(yin), Var<double>(w), Var<double>(), {.stride = 2, .padding = 1});
  CHECK(out.shape() == (Shape{2, 3, 14, 14}));
  auto x = rnd({2, 3, 14, 14}, 8);
  auto cx = conv2d(Var<double>(x), Var<double>(w), Var<double>(), {.stride = 2, .padding = 1});
  double lhs = 0, rhs = 0;
  for (std::int64_t i = 0; i < cx.numel(); ++i) lhs += cx.value()[i] * yin[i];
  for (std::int64_t i = 0; i < x.numel(); ++i) rhs += x[i] * out.value()[i];
  CHECK(lhs == Approx(rhs).epsilon(1e-12));
  // Output padding adds a row and column.
  auto op = conv_transpose2d(Var<double>(yin), Var<double>(w), Var<double>(),
                             {.stride = 2, .padding = 1, .output_padding = 1});
  CHECK(op.shape() == (Shape{2, 3, 15, 15}));
}

TEST_CASE("Hand-computed convolution and transposed convolution values", "[kernels][conv]") {
  // 1x1x3x3 input 1..9, 2x2 kernel of ones, stride 1: window sums.
  auto x = from_data<double>({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto w = ones<double>({1, 1, 2, 2});
  auto y = conv2d(Var<double>(x), Var<double>(w)).value();
  CHECK(y.shape() == (Shape{1, 1, 2, 2}));
  CHECK(y[0] == 12);
  CHECK(y[1] == 16);
  CHECK(y[2] == 24);
  CHECK(y[3] == 28);
  // Transposed, stride 2: each input pixel paints a 2x2 block scaled by its value.
  auto t = conv_transpose2d(Var<double>(from_data<double>({1, 1, 1, 2}, {1, 2})), Var<double>(w), Var<double>(),
                            {.stride = 2})
               .value();
  CHECK(t.shape() == (Shape{1, 1, 2, 4}));
  const double expect[] = {1, 1, 2, 2, 1, 1, 2, 2};
  for (int i = 0; i < 8; ++i) CHECK(t[i] == expect[i]);
}

TEST_CASE("Convolution shape errors name the op and the shapes", "[kernels][conv][errors]") {
  Var<double> x(zeros<double>({1, 3, 4, 4}));
  CHECK_THROWS_WITH(conv2d(x, Var<double>(zeros<double>({2, 4, 3, 3}))),
                    Catch::Contains("3 channels") && Catch::Contains("[2, 4, 3, 3]"));
  CHECK_THROWS_WITH(conv2d(x, Var<double>(zeros<double>({2, 3, 7, 7}))),
                    Catch::Contains("larger than the input") && Catch::Contains("[1, 3, 4, 4]"));
  CHECK_THROWS_AS(conv2d(x, Var<double>(zeros<double>({2, 3, 3, 3})), Var<double>(), {.stride = 0}), ValueError);
  CHECK_THROWS_AS(conv2d(Var<double>(zeros<double>({3, 4, 4})), Var<double>(zeros<double>({2, 3, 3, 3}))), ShapeError);
  CHECK_THROWS_AS(
      conv_transpose2d(x, Var<double>(zeros<double>({3, 2, 3, 3})), Var<double>(), {.stride = 2, .output_padding = 2}),
      ValueError);
}

// The double tests above run the 8-lane AVX-512 forms of the row helpers; float convolutions take
// the 16-lane ones. Float kernels must agree with double ones, including rows wider than a
// register (Wo = 20, 18) and strides 1, 2 and 3.
TEST_CASE("Float convolution kernels agree with double ones over strides and wide rows", "[kernels][conv]") {
  struct Case {
    std::int64_t n, c, h, w, o, k, s, p, d;
  };
  for (const Case& t :
       {Case{3, 2, 40, 40, 3, 4, 2, 1, 1}, Case{2, 3, 14, 14, 5, 4, 2, 1, 1}, Case{2, 2, 20, 18, 3, 3, 1, 1, 1},
        Case{2, 2, 20, 20, 3, 3, 1, 0, 1}, Case{2, 2, 25, 24, 3, 3, 3, 1, 2}, Case{7, 4, 9, 9, 2, 3, 2, 1, 1}}) {
    INFO("n c h w o k s p d = " << t.n << " " << t.c << " " << t.h << " " << t.w << " " << t.o << " " << t.k << " "
                                << t.s << " " << t.p << " " << t.d);
    const auto g = conv2d_geometry_for(Shape{t.n, t.c, t.h, t.w}, Shape{t.o, t.c, t.k, t.k},
                                       {.stride = t.s, .padding = t.p, .dilation = t.d});
    const auto x = rnd(g.input_shape(), 21), w = rnd(g.weight_shape(), 22), gy = rnd(g.output_shape(), 23);
    const auto xf = x.cast<float>(), wf = w.cast<float>(), gyf = gy.cast<float>();
    CHECK(allclose(kernels::conv2d_forward(g, xf, wf, Tensor<float>()).cast<double>(),
                   kernels::conv2d_forward(g, x, w, Tensor<double>()), 1e-4, 1e-4));
    CHECK(allclose(kernels::conv2d_input_grad(g, gyf, wf).cast<double>(), kernels::conv2d_input_grad(g, gy, w), 1e-4,
                   1e-4));
    CHECK(allclose(kernels::conv2d_weight_grad(g, xf, gyf).cast<double>(), kernels::conv2d_weight_grad(g, x, gy), 1e-4,
                   1e-3));
  }
}

// Float convolutions gather their column panels straight from the images, and take strided input
// gradients by phases, where the target has AVX-512 (kernels/conv2d_gather.hpp); double ones build
// the column matrix. Masked taps, bias, batches that split into uneven groups of small images, and
// the fused forward + weight gradient must agree between the two.
TEST_CASE("Float gathered columns and phases agree with double ones: masks, bias, uneven groups, fused pass",
          "[kernels][conv]") {
  struct Case {
    std::int64_t n, c, h, w, o, k, s, p, d;
    int mask;  // 0 dense, 1 type A, 2 type B
  };
  // Strided convolutions with 64+ rows of K and 32+ output channels multiply straight from a
  // zero-padded phase stack, forward and weight gradient (direct_from_stack; 80, 64, 32 output
  // channels: two, one and a partial column panel, a masked kernel the scattered reduction), as
  // does the weight gradient of the stride-1 "same" one with 40 output channels. With fewer output
  // channels, strided forwards build their columns by permutes from the stack; the 1 x 1 outputs
  // of {17, 8, 4, 4, ..} put 16 images in a register, too far apart for one permute, and are
  // gathered; {2, 16, 20, 21, ..} has rows wider than a register (the stack's plain fill).
  // The last seven take the input gradient by stride phases (8+ input channels, a deep enough
  // product per phase), among them odd extents, stride 3 with dilation, a strided masked kernel
  // whose phases keep different numbers of taps, and two stride-1 "same" convolutions (one phase,
  // columns loaded as runs of the image rather than gathered).
  for (const Case& t : {Case{13, 5, 14, 14, 9, 4, 2, 1, 1, 0}, Case{3, 2, 9, 11, 4, 7, 1, 3, 1, 1},
                        Case{2, 6, 12, 10, 5, 3, 1, 1, 1, 2}, Case{5, 3, 7, 7, 17, 3, 2, 0, 1, 0},
                        Case{9, 8, 14, 13, 16, 4, 2, 1, 1, 0}, Case{3, 9, 17, 16, 80, 3, 3, 1, 2, 0},
                        Case{4, 8, 11, 12, 64, 5, 2, 2, 1, 2}, Case{2, 16, 6, 6, 32, 2, 2, 0, 1, 0},
                        Case{3, 16, 10, 9, 24, 3, 1, 1, 1, 2}, Case{2, 8, 9, 12, 40, 3, 1, 2, 2, 0},
                        Case{7, 32, 14, 14, 16, 4, 2, 1, 1, 0}, Case{17, 8, 4, 4, 12, 4, 2, 0, 1, 0},
                        Case{2, 16, 20, 21, 16, 4, 2, 1, 1, 0}}) {
    INFO("n c h w o k s p d mask = " << t.n << " " << t.c << " " << t.h << " " << t.w << " " << t.o << " " << t.k << " "
                                     << t.s << " " << t.p << " " << t.d << " " << t.mask);
    auto g = conv2d_geometry_for(Shape{t.n, t.c, t.h, t.w}, Shape{t.o, t.c, t.k, t.k},
                                 {.stride = t.s, .padding = t.p, .dilation = t.d});
    if (t.mask > 0) {
      // PixelCNN masks: rows above the centre, and the centre row left of (A) or up to (B) the centre.
      bool keep[64] = {};
      for (std::int64_t ky = 0; ky < t.k; ++ky)
        for (std::int64_t kx = 0; kx < t.k; ++kx)
          keep[ky * t.k + kx] = ky < t.k / 2 || (ky == t.k / 2 && (t.mask == 1 ? kx < t.k / 2 : kx <= t.k / 2));
      g.set_mask(std::span<const bool>(keep, static_cast<std::size_t>(t.k * t.k)));
    }
#if defined(__AVX512F__)
    const std::int64_t group = std::min(t.n, kernels::detail::images_per_gemm(g));
    const bool permuted = kernels::detail::permute_columns<float>(g, group);
    if (t.c == 5 || t.c == 32 || t.w == 21) CHECK(permuted);
    if (t.h == 4) CHECK((!permuted && kernels::detail::gather_columns<float>(g, group)));
    if (t.s > 1 && t.o >= 32) CHECK(kernels::detail::forward_direct<float>(g));
#endif
    const auto x = rnd(g.input_shape(), 31), w = rnd(g.weight_shape(), 32), gy = rnd(g.output_shape(), 33);
    const auto b = rnd(Shape{t.o}, 34);
    const auto xf = x.cast<float>(), wf = w.cast<float>(), gyf = gy.cast<float>(), bf = b.cast<float>();
    CHECK(allclose(kernels::conv2d_forward(g, xf, wf, bf).cast<double>(), kernels::conv2d_forward(g, x, w, b), 1e-4,
                   1e-4));
    CHECK(allclose(kernels::conv2d_weight_grad(g, xf, gyf).cast<double>(), kernels::conv2d_weight_grad(g, x, gy), 1e-4,
                   1e-3));
    CHECK(allclose(kernels::conv2d_input_grad(g, gyf, wf).cast<double>(), kernels::conv2d_input_grad(g, gy, w), 1e-4,
                   1e-3));
    const auto [yf, dwf] = kernels::conv2d_forward_and_weight_grad(g, xf, wf, gyf);
    CHECK(allclose(yf.cast<double>(), kernels::conv2d_forward(g, x, w, Tensor<double>()), 1e-4, 1e-4));
    CHECK(allclose(dwf.cast<double>(), kernels::conv2d_weight_grad(g, x, gy), 1e-4, 1e-3));
  }
}
