// Every convolution path that exists on the target against the plain-loop reference
// (kernels/conv2d_reference.hpp), on the geometries of the reference workloads
// (benchmarks/reference_shapes.hpp) and on edge geometries that reach each path's corners.
//
// Each case names the path each pass takes for float on AVX-512 (the table in kernels/conv2d.hpp)
// and the test first asserts it (forward_path, input_grad_path, weight_grad_path); elsewhere, and
// for double, every pass takes im2col (or pointwise). Then each pass runs on two kinds of data:
//
// - Small integers (|x|, |w|, |g| <= 4, |b| <= 4): every product and every partial sum is an
//   integer below 2^24, exactly representable in float, so every path must equal the reference
//   exactly, in any accumulation order. A wrong index, a lost tap, a padding read as non-zero or
//   a group copied to the wrong place shows as a non-zero difference.
// - Gaussian data: a sum of n products computed in floating point, in any order and with or
//   without FMA, is within gamma_n sum |products| of the exact sum, gamma_n = n u / (1 - n u)
//   with u the unit roundoff (Higham, Accuracy and Stability of Numerical Algorithms, 3.1). The
//   kernel (type T) and the reference (double, on the same T-representable inputs) each stay
//   within that bound, so |kernel - reference| <= (gamma_n(u_T) + gamma_n(u_double)) A, where A
//   is the reference run on |x|, |w|, |g|, |b| and n the most terms any output element sums. This
//   is the worst case, not a loosened tolerance: it bounds float accumulation whatever order a
//   path sums in, and the integer data above holds the indexing to zero difference.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>

#include "genmod/core/parallel.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/conv2d.hpp"
#include "genmod/kernels/conv2d_reference.hpp"

namespace kernels_conv2d_reference_test {

using namespace genmod;
using kernels::ConvPath;
namespace ref = kernels::reference;

namespace {

enum class Mask { none, a, b };

// One convolution: batch, channels, input extent, kernel, stride, padding and dilation (the same
// along both axes unless kw / sw say otherwise), the PixelCNN mask, and the path of each pass for
// float on AVX-512.
struct Case {
  const char* name;
  std::int64_t n, cin, h, w, cout, kh, kw, sh, sw, p, d;
  Mask mask;
  ConvPath forward, input_grad, weight_grad;
};

constexpr ConvPath im2col = ConvPath::im2col, pointwise = ConvPath::pointwise, gathered = ConvPath::gathered,
                   permuted = ConvPath::permuted, direct = ConvPath::direct, phases = ConvPath::phases;

// The workloads' convolution geometries (reference_shapes.hpp), batch cut to cover one full group
// of images per product and a partial one (7x7 outputs: 6 images per product, so 7 images). A
// transposed convolution runs as the input gradient of the convolution beneath it (its forward is
// that convolution's input gradient, its backward that convolution's forward and weight gradient),
// so conv_vae.dec1 is enc2's geometry, dcgan.G.up1 D.c2's, and dec2 and G.up2 those of enc1 and
// D.c1.
constexpr Case kWorkloads[] = {
    {"conv_vae.enc1 (and under dec2)", 3, 1, 28, 28, 32, 4, 4, 2, 2, 1, 1, Mask::none, im2col, im2col, im2col},
    {"conv_vae.enc2 (and under dec1)", 7, 32, 14, 14, 64, 4, 4, 2, 2, 1, 1, Mask::none, direct, phases, direct},
    {"dcgan.D.c1 (and under G.up2)", 2, 1, 28, 28, 64, 4, 4, 2, 2, 1, 1, Mask::none, im2col, im2col, im2col},
    {"dcgan.D.c2 (and under G.up1)", 7, 64, 14, 14, 128, 4, 4, 2, 2, 1, 1, Mask::none, direct, phases, direct},
    {"pixelcnn.maskA7", 2, 1, 28, 28, 64, 7, 7, 1, 1, 3, 1, Mask::a, im2col, im2col, im2col},
    {"pixelcnn.maskB3", 2, 64, 28, 28, 64, 3, 3, 1, 1, 1, 1, Mask::b, gathered, phases, direct},
    {"pixelcnn.1x1_64", 2, 64, 28, 28, 64, 1, 1, 1, 1, 0, 1, Mask::none, pointwise, pointwise, pointwise},
    {"pixelcnn.1x1_256", 1, 64, 28, 28, 256, 1, 1, 1, 1, 0, 1, Mask::none, pointwise, pointwise, pointwise},
};

// Corners of each path: partial column panels and groups, odd extents, rows wider than a
// register, stride 3 with dilation, masks on strided kernels, unequal strides and kernel sides,
// and input rows no tap reaches (a transposed convolution's output padding).
constexpr Case kEdges[] = {
    // Forward by permutes from the phase stack (strided, K >= 64, Cout < 32): 14x14 -> 7x7 in
    // groups of 6 (13 = 6 + 6 + 1); rows wider than a register (the stack's plain fill).
    {"permuted, groups 6 + 6 + 1", 13, 5, 14, 14, 9, 4, 4, 2, 2, 1, 1, Mask::none, permuted, im2col, im2col},
    {"permuted, input grad by phases", 7, 32, 14, 14, 16, 4, 4, 2, 2, 1, 1, Mask::none, permuted, phases, im2col},
    {"permuted, 20x21 input", 2, 16, 20, 21, 16, 4, 4, 2, 2, 1, 1, Mask::none, permuted, phases, im2col},
    // 1x1 outputs put 16 images in a register, too far apart in the stack for one permute.
    {"gathered, 1x1 outputs", 17, 8, 4, 4, 12, 4, 4, 2, 2, 0, 1, Mask::none, gathered, im2col, im2col},
    // Direct products: two output-channel panels (80), a partial one (40), a masked strided kernel
    // (the reduction scatters to the kept taps), stride 3 with dilation (taps over nine phases).
    {"direct, stride 3, dilation 2", 3, 9, 17, 16, 80, 3, 3, 3, 3, 1, 2, Mask::none, direct, phases, direct},
    {"direct, strided mask B", 4, 8, 11, 12, 64, 5, 5, 2, 2, 2, 1, Mask::b, direct, phases, direct},
    {"direct, 6x6 k2", 2, 16, 6, 6, 32, 2, 2, 2, 2, 0, 1, Mask::none, direct, im2col, direct},
    {"same, dilation 2, Cout 40", 2, 8, 9, 12, 40, 3, 3, 1, 1, 2, 2, Mask::none, gathered, phases, direct},
    {"same, mask B, Cout 24", 3, 16, 10, 9, 24, 3, 3, 1, 1, 1, 1, Mask::b, gathered, phases, im2col},
    // The explicit path: few rows of K, valid (not "same") stride 1, rows wider than a register,
    // col2im's scalar form (phase rows too long for its registers), mask A with a 7x7 kernel.
    {"im2col, 40x40 stride 2", 3, 2, 40, 40, 3, 4, 4, 2, 2, 1, 1, Mask::none, im2col, im2col, im2col},
    {"im2col, valid 3x3 on 10x11", 2, 3, 10, 11, 4, 3, 3, 1, 1, 0, 1, Mask::none, im2col, im2col, im2col},
    {"im2col, stride 3, dilation 2", 2, 2, 25, 24, 3, 3, 3, 3, 3, 1, 2, Mask::none, im2col, im2col, im2col},
    {"im2col, mask A 7x7 on 9x11", 3, 2, 9, 11, 4, 7, 7, 1, 1, 3, 1, Mask::a, im2col, im2col, im2col},
    {"im2col, groups of 11", 19, 3, 9, 9, 4, 3, 3, 2, 2, 1, 1, Mask::none, im2col, im2col, im2col},
    {"im2col, col2im scalar form", 2, 3, 40, 40, 4, 3, 3, 1, 1, 1, 1, Mask::none, im2col, im2col, im2col},
    {"pointwise, 5x7", 3, 8, 5, 7, 6, 1, 1, 1, 1, 0, 1, Mask::none, pointwise, pointwise, pointwise},
    // Unequal kernel sides and strides; a 15x15 input whose last row and column no tap reaches
    // (the input of a transposed convolution with output padding 1).
    {"3x2 kernel, strides 1 and 2", 3, 16, 12, 13, 32, 3, 2, 1, 2, 1, 1, Mask::none, direct, phases, direct},
    {"unreached last row (output padding)", 7, 16, 15, 15, 32, 4, 4, 2, 2, 1, 1, Mask::none, direct, phases, direct},
};

kernels::Conv2dGeometry geometry_of(const Case& c) {
  kernels::Conv2dGeometry g;
  g.n = c.n, g.cin = c.cin, g.h = c.h, g.w = c.w, g.cout = c.cout, g.kh = c.kh, g.kw = c.kw;
  g.stride_h = c.sh, g.stride_w = c.sw, g.pad_h = g.pad_w = c.p, g.dil_h = g.dil_w = c.d;
  g.ho = kernels::conv_out_extent(g.h, g.kh, g.stride_h, g.pad_h, g.dil_h);
  g.wo = kernels::conv_out_extent(g.w, g.kw, g.stride_w, g.pad_w, g.dil_w);
  if (c.mask != Mask::none) {
    // PixelCNN: the rows above the centre, and the centre row left of (A) or up to (B) the centre.
    bool keep[kernels::Conv2dGeometry::kMaxMaskedTaps] = {};
    for (std::int64_t ky = 0; ky < c.kh; ++ky)
      for (std::int64_t kx = 0; kx < c.kw; ++kx)
        keep[ky * c.kw + kx] =
            ky < c.kh / 2 || (ky == c.kh / 2 && (c.mask == Mask::a ? kx < c.kw / 2 : kx <= c.kw / 2));
    g.set_mask(std::span<const bool>(keep, static_cast<std::size_t>(c.kh * c.kw)));
  }
  return g;
}

// Small integers in [-4, 4] (rounded Gaussians), or Gaussians rounded to T so that the double
// reference sees exactly what the kernel sees.
template <class T>
Tensor<double> data(const Shape& s, std::uint64_t seed, bool integers) {
  Generator gen(seed);
  Tensor<double> t = randn<double>(s, gen);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t[i] = integers ? std::clamp(std::round(2.0 * t[i]), -4.0, 4.0) : static_cast<double>(static_cast<T>(t[i]));
  return t;
}

Tensor<double> abs_of(const Tensor<double>& t) {
  Tensor<double> a(t.shape());
  for (std::int64_t i = 0; i < t.numel(); ++i) a[i] = std::abs(t[i]);
  return a;
}

// gamma_n for unit roundoff u (see the file comment).
template <class T>
double gamma(std::int64_t n) {
  const double u = std::numeric_limits<T>::epsilon() / 2, nu = static_cast<double>(n) * u;
  return nu / (1 - nu);
}

// The largest |got - want| / bound, bound = (gamma_n(u_T) + gamma_n(u_double)) A; exact data
// (A undefined) requires got == want, reported as the largest |got - want|.
template <class T>
double worst(const Tensor<T>& got, const Tensor<double>& want, const Tensor<double>& a, std::int64_t n) {
  REQUIRE(got.shape() == want.shape());
  const double scale = gamma<T>(n) + gamma<double>(n);
  double w = 0;
  for (std::int64_t i = 0; i < want.numel(); ++i) {
    const double diff = std::abs(static_cast<double>(got[i]) - want[i]);
    w = std::max(w, a.defined() ? (diff == 0 ? 0 : diff / (scale * a[i])) : diff);
  }
  return w;
}

// A copy of y with b[o] added to y[n, o, :, :] (Tensor copies share their buffer).
Tensor<double> plus_bias(const Tensor<double>& y_in, const Tensor<double>& b) {
  Tensor<double> y = y_in.clone();
  const std::int64_t n = y.dim(0), c = y.dim(1), hw = y.dim(2) * y.dim(3);
  for (std::int64_t i = 0; i < n * c * hw; ++i) y[i] += b[(i / hw) % c];
  return y;
}

// Every entry point against the reference on one kind of data, T = the kernels' type.
template <class T>
void check_passes(const kernels::Conv2dGeometry& g, bool integers) {
  INFO((integers ? "integer data" : "Gaussian data"));
  const Tensor<double> x = data<T>(g.input_shape(), 1, integers), w = data<T>(g.weight_shape(), 2, integers);
  const Tensor<double> gy = data<T>(g.output_shape(), 3, integers), b = data<T>(Shape{g.cout}, 4, integers);
  const Tensor<T> xt = x.cast<T>(), wt = w.cast<T>(), gyt = gy.cast<T>(), bt = b.cast<T>();
  const Tensor<double> forward = ref::conv2d_forward(g, x, w, Tensor<double>()),
                       input = ref::conv2d_input_grad(g, gy, w), weight = ref::conv2d_weight_grad(g, x, gy),
                       bias = ref::conv2d_bias_grad(gy);
  // The most terms any element sums: Cin T products and the bias; Cout T products; N Ho Wo.
  const std::int64_t n_forward = g.k() + 1, n_input = g.cout * g.num_taps(), n_weight = g.n * g.hw_out();
  // A: the reference on absolute values (Gaussian data only; integer data must match exactly).
  Tensor<double> a_forward, a_forward_bias, a_input, a_weight, a_bias;
  if (!integers) {
    a_forward = ref::conv2d_forward(g, abs_of(x), abs_of(w), Tensor<double>());
    a_forward_bias = plus_bias(a_forward, abs_of(b));
    a_input = ref::conv2d_input_grad(g, abs_of(gy), abs_of(w));
    a_weight = ref::conv2d_weight_grad(g, abs_of(x), abs_of(gy));
    a_bias = ref::conv2d_bias_grad(abs_of(gy));
  }
  const double limit = integers ? 0.0 : 1.0;
  CHECK(worst(kernels::conv2d_forward(g, xt, wt, bt), plus_bias(forward, b), a_forward_bias, n_forward) <= limit);
  CHECK(worst(kernels::conv2d_input_grad(g, gyt, wt), input, a_input, n_input) <= limit);
  CHECK(worst(kernels::conv2d_weight_grad(g, xt, gyt), weight, a_weight, n_weight) <= limit);
  const auto [y, dw] = kernels::conv2d_forward_and_weight_grad(g, xt, wt, gyt);
  CHECK(worst(y, forward, a_forward, n_forward) <= limit);
  CHECK(worst(dw, weight, a_weight, n_weight) <= limit);
  CHECK(worst(kernels::conv2d_bias_grad(gyt), bias, a_bias, n_weight) <= limit);
}

// The path a pass of g takes for T here: the case's AVX-512 float path where those paths exist.
template <class T>
ConvPath on_this_target(const kernels::Conv2dGeometry& g, ConvPath avx512_float) {
  if constexpr (kernels::detail::kGatherColumns<T>) return avx512_float;
  return g.pointwise() ? ConvPath::pointwise : ConvPath::im2col;
}

// Asserts the paths of case c for T, then checks every pass on integer data and, with `gaussian`,
// on Gaussian data.
template <class T>
void check_case(const Case& c, bool gaussian) {
  const kernels::Conv2dGeometry g = geometry_of(c);
  INFO(c.name << ": n " << g.n << ", " << g.cin << " -> " << g.cout << ", " << g.h << "x" << g.w << " -> " << g.ho
              << "x" << g.wo << ", kernel " << g.kh << "x" << g.kw << " (" << g.num_taps() << " taps), stride "
              << g.stride_h << "x" << g.stride_w << ", padding " << g.pad_h << ", dilation " << g.dil_h);
  const std::int64_t group = std::min(g.n, kernels::detail::images_per_gemm(g));
  CHECK(kernels::forward_path<T>(g, group) == on_this_target<T>(g, c.forward));
  CHECK(kernels::input_grad_path<T>(g) == on_this_target<T>(g, c.input_grad));
  CHECK(kernels::weight_grad_path<T>(g) == on_this_target<T>(g, c.weight_grad));
  check_passes<T>(g, true);
  if (gaussian) check_passes<T>(g, false);
}

// Runs f with `threads` threads, restoring the count after.
template <class F>
void with_threads(int threads, F&& f) {
  const int saved = get_num_threads();
  set_num_threads(threads);
  f();
  set_num_threads(saved);
}

}  // namespace

// Integer data only: the workloads' products are large enough that three reference passes on
// them dominate the test's time; the corners below take every path through Gaussian data too.
TEST_CASE("Every float convolution path equals the reference on the workloads' geometries", "[kernels][conv]") {
  with_threads(2, [] {
    for (const Case& c : kWorkloads) check_case<float>(c, false);
  });
}

TEST_CASE("Every float convolution path equals the reference at its corners", "[kernels][conv]") {
  with_threads(2, [] {
    for (const Case& c : kEdges) check_case<float>(c, true);
  });
}

TEST_CASE("Double convolutions (the explicit path) equal the reference", "[kernels][conv]") {
  // One thread and two: the weight gradient's per-thread partials are summed in chunk order.
  for (const int threads : {1, 2})
    with_threads(threads, [] {
      for (const Case& c : kEdges) check_case<double>(c, true);
    });
}

TEST_CASE("The corners take every path of this target", "[kernels][conv]") {
  // Guards the lists above against drifting from the dispatch: every path that exists for float
  // here is the path of some corner case (so Gaussian data reaches it too), for each pass that has it.
  bool seen[3][6] = {};
  for (const Case& c : kEdges) {
    const kernels::Conv2dGeometry g = geometry_of(c);
    const std::int64_t group = std::min(g.n, kernels::detail::images_per_gemm(g));
    seen[0][static_cast<int>(kernels::forward_path<float>(g, group))] = true;
    seen[1][static_cast<int>(kernels::input_grad_path<float>(g))] = true;
    seen[2][static_cast<int>(kernels::weight_grad_path<float>(g))] = true;
  }
  for (const int pass : {0, 1, 2}) {
    INFO("pass " << pass);
    CHECK(seen[pass][static_cast<int>(ConvPath::im2col)]);
    CHECK(seen[pass][static_cast<int>(ConvPath::pointwise)]);
  }
  if constexpr (kernels::detail::kGatherColumns<float>) {
    CHECK(seen[0][static_cast<int>(ConvPath::direct)]);
    CHECK(seen[0][static_cast<int>(ConvPath::permuted)]);
    CHECK(seen[0][static_cast<int>(ConvPath::gathered)]);
    CHECK(seen[1][static_cast<int>(ConvPath::phases)]);
    CHECK(seen[2][static_cast<int>(ConvPath::direct)]);
  }
}

}  // namespace kernels_conv2d_reference_test
