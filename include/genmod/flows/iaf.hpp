#pragma once
/// \file iaf.hpp
/// InverseAutoregressiveFlow: one step of inverse autoregressive flow (Kingma, Salimans,
/// Jozefowicz, Chen, Sutskever and Welling 2016) on a VAE's latent code, in the numerically stable
/// LSTM-type form of the paper. With a MADE (flows/made.hpp) that reads z [N, Z] and the encoder's
/// context h [N, H],
///   (m, s) = MADE(z, h)              m_i and s_i depend on z_j only for j before i in the ordering
///   sigma  = sigmoid(s + gate_bias)  a gate in (0, 1)
///   z'     = sigma z + (1 - sigma) m  computed as m + sigma (z - m), one multiplication fewer
///   log |det dz'/dz| = sum_i log sigma_i   computed as log_sigmoid(s + gate_bias)
/// Why the Jacobian is that simple: dz'_i/dz_j = 0 for j after i (m_i, s_i and z_i ignore z_j),
/// and dz'_i/dz_i = sigma_i (m_i and s_i ignore z_i), so dz'/dz is triangular in the ordering with
/// diagonal sigma, and its determinant is the product of the gates. The forward pass, which is all
/// the ELBO needs, is one network evaluation for all Z dimensions; the inverse would take Z
/// sequential ones and is not provided (posterior_flow.hpp).
///
/// Why the gated form rather than z' = z e^s + m: the factor on z is sigma in (0, 1), so no step
/// can multiply the code, or the density, by e^s for a large s (the usual way an affine flow
/// diverges), and z' stays a convex combination of z and the network's output m. log sigma <= 0
/// is computed by log_sigmoid, finite for any s (the log of a sigmoid that underflowed to 0 would
/// be -inf). The gate bias, a constant added to s, sets where the gate starts: the paper
/// recommends outputs s "sufficiently positive, such as close to +1 or +2" so that each step
/// updates z only slightly at first. The default 2 (sigma = 0.881) is the second of those, the
/// value of Pyro's stable IAF and of this library's Glow-style sigmoid coupling bound
/// (flows/affine_coupling.hpp). With MADE's last layer at zero a step starts as
/// z' = sigmoid(2) z, so K stacked steps start by shrinking the code by 0.881^K, where a bias of 1
/// would give 0.731^K (0.29 after four steps instead of 0.60).

#include <cstdint>
#include <string_view>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/flows/bijector.hpp"
#include "genmod/flows/made.hpp"
#include "genmod/flows/posterior_flow.hpp"

namespace genmod::flows {

/// Options of InverseAutoregressiveFlow.
struct IAFOptions {
  std::int64_t hidden = 256;             ///< width of MADE's hidden layers (>= 1)
  int hidden_layers = 1;                 ///< number of MADE's hidden layers (>= 1)
  std::int64_t context_dim = 0;          ///< H, the width of the encoder's context h (0: none)
  MADEOrder order = MADEOrder::natural;  ///< the autoregressive ordering of the code's dimensions
  double gate_bias = 2.0;                ///< added to s before the sigmoid (finite; see the file comment)
  bool zero_last = true;                 ///< MADE's last layer starts at zero: z' = sigmoid(gate_bias) z
  Generator* generator = nullptr;        ///< for the initialization; default_generator() when null
};

/// One IAF step z' = sigma z + (1 - sigma) m on codes [N, Z] given a context h [N, H] (see the
/// file comment); a PosteriorFlowStep, to be chained in a flows::PosteriorFlow.
template <class T = float>
class InverseAutoregressiveFlow : public PosteriorFlowStep<T> {
 public:
  /// A step on codes of size `dim`; ValueError when dim, options.hidden or options.hidden_layers
  /// is below 1, options.context_dim below 0 or options.gate_bias not finite.
  explicit InverseAutoregressiveFlow(std::int64_t dim, IAFOptions options = {})
      : made(dim, made_options(dim, options)),
        dim_(dim),
        context_dim_(options.context_dim),
        gate_bias_(options.gate_bias) {}

  /// {z' [N, Z], sum_i log sigma_i [N]}; h [N, context_dim()] is required when context_dim() > 0
  /// and ignored otherwise. ShapeError naming what was expected on a wrong shape.
  FlowResult<T> forward(const Var<T>& z, const Var<T>& h) override {
    check_posterior_flow_input("flows::InverseAutoregressiveFlow", z, h, dim_, context_dim_);
    const Var<T> ms = made.forward(z, h);  // [N, 2Z]: m, then the raw gate s
    const Var<T> m = slice(ms, 1, 0, dim_);
    const Var<T> s = add_scalar(slice(ms, 1, dim_, dim_), static_cast<T>(gate_bias_));
    const Var<T> sigma = sigmoid(s);
    return {add(m, mul(sigma, sub(z, m))), sum(log_sigmoid(s), 1)};
  }

  /// Z.
  std::int64_t dim() const override { return dim_; }
  /// H (0: the step reads no context).
  std::int64_t context_dim() const override { return context_dim_; }
  /// The constant added to s before the sigmoid.
  double gate_bias() const noexcept { return gate_bias_; }
  /// The autoregressive ordering.
  MADEOrder order() const noexcept { return made.order(); }

  /// Lists the network as "made" (its layers "made.layers.0", ..., and "made.context").
  void visit(nn::ModuleVisitor<T>& v) override { v.child("made", made); }

  MADE<T> made;  ///< (z, h) -> (m, s), stacked along dimension 1: [N, 2Z]

 private:
  // MADE's options from the step's, after checking them under the step's name (MADE is built
  // before the constructor's body runs, so the checks happen here).
  static MADEOptions made_options(std::int64_t dim, const IAFOptions& o) {
    constexpr std::string_view op = "flows::InverseAutoregressiveFlow";
    check_at_least(op, "dim", dim, 1);
    check_at_least(op, "hidden", o.hidden, 1);
    check_at_least(op, "hidden_layers", o.hidden_layers, 1);
    check_non_negative(op, "context_dim", o.context_dim);
    check_finite(op, "gate_bias", o.gate_bias);
    return {.hidden = o.hidden,
            .hidden_layers = o.hidden_layers,
            .context_dim = o.context_dim,
            .outputs_per_dim = 2,
            .order = o.order,
            .zero_last = o.zero_last,
            .generator = o.generator};
  }

  std::int64_t dim_, context_dim_;
  double gate_bias_;
};

static_assert(PosteriorFlowType<InverseAutoregressiveFlow<float>>);

}  // namespace genmod::flows
