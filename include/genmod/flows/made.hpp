#pragma once
/// \file made.hpp
/// MaskedLinear and MADE, the masked autoencoder for distribution estimation (Germain, Gregor,
/// Murray and Larochelle 2015): an autoregressive network in one pass, the conditioner of an
/// inverse autoregressive flow (flows/iaf.hpp).
///
/// A MaskedLinear layer computes y = x (W m)^T + b, W [out, in] learned, m [out, in] a fixed 0/1
/// mask (m multiplies W elementwise), so output o ignores input k wherever m[o, k] = 0. The
/// weight's gradient is (G^T x) m: a masked entry never moves, and the derivative of an output
/// with respect to an input it ignores is an exact zero, not a small number.
///
/// MADE maps codes z [N, Z] (and an optional context h [N, H]) to `outputs_per_dim` blocks of Z
/// columns, each block autoregressive in an ordering of the Z inputs. Every unit gets a degree:
///   inputs      d(z_k) = position of k in the ordering, 1..Z (natural: k + 1; reversed: Z - k)
///   hidden      d_l(u) = lo + floor(u (Z - lo) / hidden), u = 0..hidden-1: spread evenly over
///               lo..Z-1, the same in every hidden layer (deterministic: no sampling of degrees);
///               lo = 1 without a context (Germain et al.), lo = 0 with one or when Z = 1
///   outputs     column b Z + i of block b has the degree of input i
/// and the masks connect a unit to a unit of the layer below only when
///   hidden (and the first hidden layer's inputs):   d_out >= d_in
///   output:                                         d_out >  d_in
/// Along any path from input k to output i the degrees never decrease and increase strictly at the
/// last step, so output i depends only on inputs strictly before it: the Jacobian of each block
/// is strictly triangular in the ordering. Once Z >= 2 no hidden unit needs degree Z (no output
/// may see the last input), nor, without a context, degree 0 (it would see no input at all).
/// Spreading the degrees rather than cycling through them (1, 2, ..., Z-1, 1, 2, ...) gives the
/// same degrees, in another order of the units, when hidden is a multiple of the range's size,
/// but still covers the whole range when hidden is smaller, where a cycle would stop after
/// `hidden` degrees and the inputs later in the ordering would reach no output.
///
/// The context enters the first hidden layer through an unmasked nn::Linear(H, hidden) without a
/// bias (the masked layer has one), added to the masked layer's output, which leaves the
/// autoregressive structure in z untouched. With a context the hidden degrees start at 0: a
/// degree-0 unit sees no input, only h, and feeds every output. Without them the first output in
/// the ordering (degree 1, strictly above no hidden unit of degree >= 1) would be a constant,
/// blind to h as well: the first dimension of an IAF step's code would get a gate and a shift
/// that ignore the encoder. So with a context every output depends on h; with Z = 1 the single
/// output sees no input and is a function of h and of the biases only.
///
///   a_1 = MaskedLinear_1(z) + C h,  a_(l+1) = MaskedLinear_(l+1)(relu(a_l)),  out = a_(L+1)
/// With `zero_last` the output layer starts at zero (weight and bias): out = 0 whatever z and h,
/// so a flow step built on it starts at its own reference point (IAF: the gated identity).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/nn/init.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/layers/linear.hpp"
#include "genmod/nn/module_list.hpp"

namespace genmod::flows {

/// y = x (W m)^T + b with a fixed 0/1 mask m [out, in] (see the file comment).
template <class T = float>
class MaskedLinear : public nn::Layer<T> {
 public:
  /// A layer with the mask `mask` [out, in] (entries 0 or 1; ValueError or ShapeError otherwise).
  /// W and b are drawn as nn::Linear(in, out, options) draws them, then the masked entries of W
  /// are set to zero, so the stored weight is the one in use.
  explicit MaskedLinear(Tensor<T> mask, nn::LinearOptions options = {}) : mask_(std::move(mask)) {
    constexpr std::string_view op = "flows::MaskedLinear";
    check_rank(op, "the mask", mask_.shape(), 2, "[out, in]");
    check_dim_at_least(op, "the mask", mask_.shape(), 0, 1, "out");
    check_dim_at_least(op, "the mask", mask_.shape(), 1, 1, "in");
    for (std::int64_t k = 0; k < mask_.numel(); ++k)
      if (mask_[k] != T(0) && mask_[k] != T(1))
        check_arg(false, op, "the mask", "entries 0 or 1",
                  genmod::detail::check_number(static_cast<double>(mask_[k])) + " at index " + std::to_string(k));
    const std::int64_t out = mask_.dim(0), in = mask_.dim(1);
    Generator& g = options.generator ? *options.generator : default_generator();
    Tensor<T> w(mask_.shape());
    nn::init::default_weight(w, g);
    for (std::int64_t k = 0; k < w.numel(); ++k) w[k] *= mask_[k];
    weight = Parameter<T>(w);
    if (options.bias) {
      Tensor<T> b(Shape{out});
      nn::init::default_bias(b, g, in);
      bias = Parameter<T>(b);
    }
  }

  /// x [N, in] -> x (W m)^T + b [N, out]; ShapeError naming the shapes otherwise.
  Var<T> forward(const Var<T>& x) override {
    constexpr std::string_view op = "flows::MaskedLinear";
    check_rank(op, "input", x.shape(), 2, "[N, in]");
    check_dim(op, "input", x.shape(), 1, in_features(), "in");
    return linear(x, mul(weight.var(), Var<T>(mask_)), bias.defined() ? bias.var() : Var<T>());
  }

  /// Lists `weight`, `bias` when present, and the mask as buffer "mask".
  void visit(nn::ModuleVisitor<T>& v) override {
    v.param("weight", weight);
    if (bias.defined()) v.param("bias", bias);
    v.buffer("mask", mask_);
  }

  /// The mask m [out, in] (1: connected).
  const Tensor<T>& mask() const noexcept { return mask_; }
  /// Input width `in`.
  std::int64_t in_features() const { return mask_.dim(1); }
  /// Output width `out`.
  std::int64_t out_features() const { return mask_.dim(0); }

  Parameter<T> weight;  ///< W [out, in]; only the entries where the mask is 1 are used
  Parameter<T> bias;    ///< b [out], undefined without bias

 private:
  Tensor<T> mask_;
};

/// The ordering of MADE's inputs: which inputs come before which.
enum class MADEOrder {
  natural,  ///< z_0, z_1, ..., z_(Z-1): output i sees z_j for j < i
  reversed  ///< z_(Z-1), ..., z_0: output i sees z_j for j > i
};

/// Options of MADE.
struct MADEOptions {
  std::int64_t hidden = 256;             ///< width of every hidden layer (>= 1)
  int hidden_layers = 1;                 ///< number of hidden layers (>= 1), ReLU between layers
  std::int64_t context_dim = 0;          ///< H, the context's width (0: no context)
  std::int64_t outputs_per_dim = 2;      ///< number of output blocks of Z columns (>= 1)
  MADEOrder order = MADEOrder::natural;  ///< the ordering of the inputs
  bool zero_last = true;                 ///< the output layer starts at zero (weight and bias)
  Generator* generator = nullptr;        ///< for the initialization; default_generator() when null
};

/// MADE: z [N, Z] (and h [N, H]) -> [N, outputs_per_dim * Z], each block of Z columns
/// autoregressive in the ordering (see the file comment).
template <class T = float>
class MADE : public nn::Module<T> {
 public:
  /// A MADE on codes of size `dim` (ValueError when dim, hidden, hidden_layers or outputs_per_dim
  /// is below 1 or context_dim below 0). The masks are built here, once.
  explicit MADE(std::int64_t dim, MADEOptions options = {})
      : dim_(dim),
        context_dim_(options.context_dim),
        outputs_per_dim_(options.outputs_per_dim),
        hidden_(options.hidden),
        order_(options.order) {
    constexpr std::string_view op = "flows::MADE";
    check_at_least(op, "dim", dim, 1);
    check_at_least(op, "hidden", options.hidden, 1);
    check_at_least(op, "hidden_layers", options.hidden_layers, 1);
    check_non_negative(op, "context_dim", options.context_dim);
    check_at_least(op, "outputs_per_dim", options.outputs_per_dim, 1);
    const nn::LinearOptions lin{.bias = true, .generator = options.generator};
    const std::vector<std::int64_t> in_deg = input_degrees(dim, options.order);
    const std::vector<std::int64_t> hid_deg = hidden_degrees(dim, options.hidden, options.context_dim > 0);
    std::vector<std::int64_t> out_deg;
    out_deg.reserve(static_cast<std::size_t>(options.outputs_per_dim * dim));
    for (std::int64_t b = 0; b < options.outputs_per_dim; ++b)
      out_deg.insert(out_deg.end(), in_deg.begin(), in_deg.end());
    layers.push_back(MaskedLinear<T>(degree_mask(hid_deg, in_deg, false), lin));
    for (int l = 1; l < options.hidden_layers; ++l)
      layers.push_back(MaskedLinear<T>(degree_mask(hid_deg, hid_deg, false), lin));
    MaskedLinear<T> last(degree_mask(out_deg, hid_deg, true), lin);
    if (options.zero_last) {
      last.weight.value().fill(T(0));
      last.bias.value().fill(T(0));
    }
    layers.push_back(std::move(last));
    if (context_dim_ > 0)
      context.emplace(context_dim_, options.hidden, nn::LinearOptions{.bias = false, .generator = options.generator});
  }

  /// [N, outputs_per_dim * Z]: block b, column i (column b Z + i) depends on z_j only for j
  /// strictly before i in the ordering, and on every entry of h. h [N, H] is required when
  /// context_dim() > 0 and ignored (may be undefined) otherwise; ShapeError on a wrong shape.
  Var<T> forward(const Var<T>& z, const Var<T>& h = {}) {
    constexpr std::string_view op = "flows::MADE";
    check_rank(op, "z", z.shape(), 2, "[N, Z]");
    check_dim(op, "z", z.shape(), 1, dim_, "the code size Z");
    Var<T> a = layers[0](z);
    if (context) {
      if (!h.defined())  // the message is built only on failure: this runs in every training step
        check_shape_arg(false, op, "h", "a context [N, " + std::to_string(context_dim_) + "]", "none");
      check_rank(op, "h", h.shape(), 2, "[N, H]");
      check_dim(op, "h", h.shape(), 0, z.dim(0), "one context row per code");
      check_dim(op, "h", h.shape(), 1, context_dim_, "the context size H");
      a = add(a, (*context)(h));
    }
    for (std::size_t l = 1; l < layers.size(); ++l) a = layers[l](relu(a));
    return a;
  }

  /// Lists the masked layers as "layers.0" (input), ..., "layers.L" (output), and "context"
  /// when context_dim() > 0.
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("layers", layers);
    if (context) v.child("context", *context);
  }

  /// Z, the code size.
  std::int64_t dim() const noexcept { return dim_; }
  /// H, the context size (0: none).
  std::int64_t context_dim() const noexcept { return context_dim_; }
  /// Number of output blocks of Z columns.
  std::int64_t outputs_per_dim() const noexcept { return outputs_per_dim_; }
  /// Width of the hidden layers.
  std::int64_t hidden() const noexcept { return hidden_; }
  /// Number of hidden layers.
  int hidden_layers() const noexcept { return static_cast<int>(layers.size()) - 1; }
  /// The ordering of the inputs.
  MADEOrder order() const noexcept { return order_; }

  /// Degrees of the Z inputs: input k gets its position in the ordering, 1..Z.
  static std::vector<std::int64_t> input_degrees(std::int64_t dim, MADEOrder order) {
    std::vector<std::int64_t> d(static_cast<std::size_t>(dim));
    for (std::int64_t k = 0; k < dim; ++k)
      d[static_cast<std::size_t>(k)] = order == MADEOrder::natural ? k + 1 : dim - k;
    return d;
  }

  /// Degrees of `hidden` units spread evenly over lo..Z-1, lo + floor(u (Z - lo) / hidden) for unit
  /// u: lo = 1 without a context (Germain et al.), lo = 0 with one (`context`) or when Z = 1, the
  /// degree-0 units reading only the context and feeding every output. Every degree is present
  /// when hidden >= Z - lo.
  static std::vector<std::int64_t> hidden_degrees(std::int64_t dim, std::int64_t hidden, bool context) {
    const std::int64_t lo = context || dim == 1 ? 0 : 1;
    std::vector<std::int64_t> d(static_cast<std::size_t>(hidden));
    for (std::int64_t u = 0; u < hidden; ++u) d[static_cast<std::size_t>(u)] = lo + u * (dim - lo) / hidden;
    return d;
  }

  /// The mask [out, in] connecting unit o to unit k when d_out[o] >= d_in[k] (`strict`: >).
  static Tensor<T> degree_mask(const std::vector<std::int64_t>& d_out, const std::vector<std::int64_t>& d_in,
                               bool strict) {
    const auto out = static_cast<std::int64_t>(d_out.size()), in = static_cast<std::int64_t>(d_in.size());
    Tensor<T> m(Shape{out, in});
    for (std::int64_t o = 0; o < out; ++o)
      for (std::int64_t k = 0; k < in; ++k) {
        const std::int64_t a = d_out[static_cast<std::size_t>(o)], b = d_in[static_cast<std::size_t>(k)];
        m(o, k) = static_cast<T>(strict ? a > b : a >= b);
      }
    return m;
  }

  nn::ModuleList<MaskedLinear<T>> layers;  ///< input layer, hidden_layers - 1 hidden layers, output layer
  std::optional<nn::Linear<T>> context;    ///< C [hidden, H], no bias; absent when context_dim() = 0

 private:
  std::int64_t dim_, context_dim_, outputs_per_dim_, hidden_;
  MADEOrder order_;
};

}  // namespace genmod::flows
