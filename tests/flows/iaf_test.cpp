// MaskedLinear, MADE and the inverse autoregressive flow step, in double:
//   * MADE's autoregressive property, exactly: every derivative of output i with respect to an
//     input j not strictly before i in the ordering is 0.0 (not small), at random parameters, for
//     both orderings, with and without a context, and every allowed derivative is nonzero;
//   * IAF's log-determinant against log |det| of the tape's whole Jacobian (h held fixed), and the
//     Jacobian itself triangular in the ordering with the gates on its diagonal;
//   * parameter gradients at first order, and second order through a gradient penalty;
//   * the error messages name what was expected and what was found.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "genmod/flows/iaf.hpp"
#include "genmod/flows/made.hpp"
#include "genmod/flows/posterior_flow.hpp"
#include "support/flow_checks.hpp"
#include "support/gradcheck.hpp"
#include "support/jacobian.hpp"

namespace flows_iaf_test {

using namespace genmod;
using V = Var<double>;
using flows::MADEOrder;

namespace {

// True when input j comes strictly before output i in the ordering (the test's own statement of
// the orderings, independent of MADE's degrees).
bool before(MADEOrder order, std::int64_t j, std::int64_t i) {
  return order == MADEOrder::natural ? j < i : j > i;
}

const char* name(MADEOrder order) {
  return order == MADEOrder::natural ? "natural" : "reversed";
}

// d out[:, c] / d x for every output column c of f(x): one [N, D] tensor per column (row n holds
// d out[n, c] / d x[n, :], the rows of a batch being independent). allow_unused: a column that
// ignores x entirely (Z = 1) has the zero gradient.
template <class F>
std::vector<Tensor<double>> column_gradients(F f, const Tensor<double>& x) {
  Tape<double> tape;
  const V xl = tape.leaf(x.clone());
  const V out = f(xl);
  std::vector<Tensor<double>> g;
  for (std::int64_t c = 0; c < out.dim(1); ++c)
    g.push_back(tape.grad(sum(slice(out, 1, c, 1)), {xl}, {.allow_unused = true})[0].value().clone());
  return g;
}

// The Jacobian dz'/dz [Z, Z] of one sample z [1, Z] of a step given its context h [1, H].
Eigen::MatrixXd step_jacobian(flows::InverseAutoregressiveFlow<double>& step, const Tensor<double>& z,
                              const Tensor<double>& h) {
  const std::int64_t d = z.dim(1);
  Tape<double> tape;
  const V zl = tape.leaf(z.clone());
  const V y = step.forward(zl, V(h)).y;
  Eigen::MatrixXd jac(d, d);
  for (std::int64_t r = 0; r < d; ++r) {
    const Tensor<double> g = tape.grad(sum(slice(y, 1, r, 1)), {zl})[0].value();
    for (std::int64_t c = 0; c < d; ++c) jac(r, c) = g[c];
  }
  return jac;
}

double sigmoid_of(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

}  // namespace

TEST_CASE("MaskedLinear: y = x (W m)^T + b, masked weights unused and never trained, mask a buffer", "[flows][made]") {
  const Tensor<double> mask = from_data<double>({3, 4}, {1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1});
  flows::MaskedLinear<double> layer(mask);
  CHECK(layer.in_features() == 4);
  CHECK(layer.out_features() == 3);
  for (std::int64_t k = 0; k < 12; ++k) {
    INFO("weight element " << k);
    if (mask[k] == 0) CHECK(layer.weight.value()[k] == 0.0);  // stored as used
  }
  test::randomize_parameters(layer, 70, 0.7);  // masked entries of W now nonzero, and must not matter
  const Tensor<double> x = test::rnd({5, 4}, 71);
  {
    NoGradGuard no_grad;
    const Tensor<double> y = layer(V(x)).value();
    for (std::int64_t n = 0; n < 5; ++n)
      for (std::int64_t o = 0; o < 3; ++o) {
        double expect = layer.bias.value()[o];
        for (std::int64_t k = 0; k < 4; ++k) expect += x(n, k) * layer.weight.value()(o, k) * mask(o, k);
        CHECK(y(n, o) == Approx(expect).epsilon(1e-13).margin(1e-13));
      }
  }
  // d y / d x = W m exactly, and the weight's gradient is exactly zero where the mask is.
  const auto gx = column_gradients([&](const V& xv) { return layer(xv); }, x);
  for (std::int64_t o = 0; o < 3; ++o)
    for (std::int64_t k = 0; k < 4; ++k)
      CHECK(gx[static_cast<std::size_t>(o)](0, k) == layer.weight.value()(o, k) * mask(o, k));
  layer.zero_grad();
  {
    Tape<double> tape;
    tape.backward(sum(square(layer(V(x)))));
  }
  for (std::int64_t k = 0; k < 12; ++k) {
    INFO("weight element " << k);
    if (mask[k] == 0)
      CHECK(layer.weight.grad()[k] == 0.0);
    else
      CHECK(layer.weight.grad()[k] != 0.0);
  }
  test::expect_module_gradients(layer, [&] { return layer(V(x)); });
  const auto buffers = layer.named_buffers();
  REQUIRE(buffers.size() == 1);
  CHECK(buffers[0].name == "mask");
  CHECK(layer.named_parameters().size() == 2);
  flows::MaskedLinear<double> no_bias(mask, {.bias = false});
  CHECK(no_bias.named_parameters().size() == 1);
}

TEST_CASE("MADE: degrees of the inputs and of the hidden units", "[flows][made]") {
  using M = flows::MADE<double>;
  CHECK(M::input_degrees(4, MADEOrder::natural) == std::vector<std::int64_t>{1, 2, 3, 4});
  CHECK(M::input_degrees(4, MADEOrder::reversed) == std::vector<std::int64_t>{4, 3, 2, 1});
  // Spread evenly over 1..Z-1: every degree present when hidden >= Z - 1 ...
  CHECK(M::hidden_degrees(4, 6, false) == std::vector<std::int64_t>{1, 1, 2, 2, 3, 3});
  CHECK(M::hidden_degrees(4, 3, false) == std::vector<std::int64_t>{1, 2, 3});
  // ... and the range still covered when it is not (a cycle would give 1, 2, 3).
  CHECK(M::hidden_degrees(9, 3, false) == std::vector<std::int64_t>{1, 3, 6});
  // With a context from 0: degree-0 units read only h and feed every output.
  CHECK(M::hidden_degrees(4, 8, true) == std::vector<std::int64_t>{0, 0, 1, 1, 2, 2, 3, 3});
  CHECK(M::hidden_degrees(1, 3, false) == std::vector<std::int64_t>{0, 0, 0});  // Z = 1: no input to see
  CHECK(M::hidden_degrees(1, 3, true) == std::vector<std::int64_t>{0, 0, 0});
  const Tensor<double> strict = M::degree_mask({1, 2, 3}, {1, 2}, true),
                       loose = M::degree_mask({1, 2, 3}, {1, 2}, false);
  CHECK(std::vector<double>(strict.begin(), strict.end()) == std::vector<double>{0, 0, 1, 0, 1, 1});
  CHECK(std::vector<double>(loose.begin(), loose.end()) == std::vector<double>{1, 0, 1, 1, 1, 1});
}

TEST_CASE("MADE: every output block is autoregressive, exactly, in both orderings, with and without a context",
          "[flows][made][causality]") {
  const std::int64_t n = 6;
  std::uint64_t seed = 100;
  for (const std::int64_t z_dim : {1, 2, 5, 9}) {
    for (const MADEOrder order : {MADEOrder::natural, MADEOrder::reversed}) {
      for (const std::int64_t context : {0, 3}) {
        for (const int layers : {1, 2}) {
          INFO("Z " << z_dim << ", order " << name(order) << ", context " << context << ", hidden layers " << layers);
          const std::int64_t outputs = 2;
          flows::MADE<double> made(z_dim, {.hidden = 64,
                                           .hidden_layers = layers,
                                           .context_dim = context,
                                           .outputs_per_dim = outputs,
                                           .order = order});
          test::randomize_parameters(made, seed += 10, 0.5);
          const Tensor<double> z = test::rnd({n, z_dim}, seed + 1),
                               h = test::rnd({n, std::max<std::int64_t>(context, 1)}, seed + 2);
          const V hv = context > 0 ? V(h) : V();
          const auto gz = column_gradients([&](const V& zv) { return made.forward(zv, hv); }, z);
          REQUIRE(gz.size() == static_cast<std::size_t>(outputs * z_dim));
          // Forbidden derivatives: exactly 0.0 in every sample. Allowed ones: nonzero in at least one
          // sample (in a given sample a ReLU may close every path from z_j to an output).
          std::int64_t forbidden = 0, forbidden_nonzero = 0, allowed = 0, allowed_unused = 0;
          std::string first_bad;
          for (std::int64_t c = 0; c < outputs * z_dim; ++c) {
            const std::int64_t i = c % z_dim;  // column c of block c / Z is output i
            const Tensor<double>& g = gz[static_cast<std::size_t>(c)];
            for (std::int64_t j = 0; j < z_dim; ++j) {
              bool used = false;
              for (std::int64_t s = 0; s < n; ++s) {
                used = used || g(s, j) != 0.0;
                if (!before(order, j, i) && g(s, j) != 0.0 && forbidden_nonzero++ == 0) {
                  std::ostringstream where;
                  where << "d out[" << s << ", " << c << "] / d z[" << s << ", " << j << "] = " << g(s, j);
                  first_bad = where.str();
                }
              }
              if (before(order, j, i)) {
                ++allowed;
                allowed_unused += !used;
              } else {
                ++forbidden;
              }
            }
          }
          INFO("first forbidden nonzero derivative: " << first_bad);
          CHECK(forbidden_nonzero == 0);  // exact zeros where j is not before i
          CHECK(forbidden == outputs * z_dim * (z_dim + 1) / 2);
          CHECK(allowed == outputs * z_dim * (z_dim - 1) / 2);
          CHECK(allowed_unused == 0);  // not trivially zero: every allowed input is used
          // The masks alone: the number of paths from input k to output o (the product of the
          // masks) is positive exactly when k is before o % Z: the network can use every allowed
          // input, and no other.
          Eigen::MatrixXd paths = Eigen::MatrixXd::Identity(z_dim, z_dim);
          for (std::size_t l = 0; l < made.layers.size(); ++l) {
            const Tensor<double>& m = made.layers[l].mask();
            Eigen::MatrixXd mm(m.dim(0), m.dim(1));
            for (std::int64_t a = 0; a < m.dim(0); ++a)
              for (std::int64_t b = 0; b < m.dim(1); ++b) mm(a, b) = m(a, b);
            paths = mm * paths;
          }
          REQUIRE(paths.rows() == outputs * z_dim);
          std::int64_t wrong_paths = 0;
          for (std::int64_t o = 0; o < outputs * z_dim; ++o)
            for (std::int64_t k = 0; k < z_dim; ++k) wrong_paths += (paths(o, k) > 0) != before(order, k, o % z_dim);
          CHECK(wrong_paths == 0);
          if (context > 0) {  // every output depends on the context (Z = 1: on it only)
            const auto gh = column_gradients([&](const V& hl) { return made.forward(V(z), hl); }, h);
            for (std::int64_t c = 0; c < outputs * z_dim; ++c) {
              double largest = 0;
              for (double v : gh[static_cast<std::size_t>(c)]) largest = std::max(largest, std::abs(v));
              INFO("output column " << c);
              CHECK(largest > 0);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("MADE: zero last layer, layer names, the masks as buffers, gradients", "[flows][made]") {
  flows::MADE<double> made(4, {.hidden = 8, .hidden_layers = 2, .context_dim = 3, .outputs_per_dim = 3});
  CHECK(made.dim() == 4);
  CHECK(made.context_dim() == 3);
  CHECK(made.outputs_per_dim() == 3);
  CHECK(made.hidden() == 8);
  CHECK(made.hidden_layers() == 2);
  CHECK(made.order() == MADEOrder::natural);
  const Tensor<double> z = test::rnd({2, 4}, 120), h = test::rnd({2, 3}, 121);
  {
    NoGradGuard no_grad;
    const Tensor<double> out = made.forward(V(z), V(h)).value();
    REQUIRE(out.shape() == (Shape{2, 12}));
    for (double v : out) CHECK(v == 0.0);  // zero_last: the output is 0 whatever z and h
  }
  std::vector<std::string> names;
  for (auto& p : made.named_parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                                          "layers.2.weight", "layers.2.bias", "context.weight"});
  std::vector<std::string> buffers;
  for (auto& b : made.named_buffers()) buffers.push_back(b.name);
  CHECK(buffers == std::vector<std::string>{"layers.0.mask", "layers.1.mask", "layers.2.mask"});
  CHECK(made.layers[2].weight.shape() == (Shape{12, 8}));
  CHECK(made.context->weight.shape() == (Shape{8, 3}));
  test::randomize_parameters(made, 122, 0.5);
  test::expect_module_gradients(made, [&] { return made.forward(V(z), V(h)); });
  // Without zero_last the output layer is drawn as nn::Linear draws it.
  flows::MADE<double> drawn(4, {.hidden = 8, .zero_last = false});
  NoGradGuard no_grad;
  const Tensor<double> out = drawn.forward(V(z)).value();
  double largest = 0;
  for (double v : out) largest = std::max(largest, std::abs(v));
  CHECK(largest > 0);
  CHECK(drawn.named_parameters().size() == 4);  // no context layer
}

TEST_CASE("IAF: log-det against the brute-force Jacobian; the Jacobian triangular with the gates on its diagonal",
          "[flows][iaf][jacobian]") {
  const std::int64_t n = 4, context = 4;
  std::uint64_t seed = 200;
  for (const std::int64_t z_dim : {1, 5, 16}) {
    for (const MADEOrder order : {MADEOrder::natural, MADEOrder::reversed}) {
      INFO("Z " << z_dim << ", order " << name(order));
      flows::InverseAutoregressiveFlow<double> step(z_dim, {.hidden = std::max<std::int64_t>(40, 6 * (z_dim - 1)),
                                                            .hidden_layers = 2,
                                                            .context_dim = context,
                                                            .order = order});
      CHECK(step.dim() == z_dim);
      CHECK(step.context_dim() == context);
      CHECK(step.order() == order);
      test::randomize_parameters(step, seed += 10, 0.5);
      const Tensor<double> z = test::rnd({n, z_dim}, seed + 1), h = test::rnd({n, context}, seed + 2);
      flows::FlowResult<double> r;
      Tensor<double> ms;
      Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic> used =
          Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic>::Constant(z_dim, z_dim, false);
      {
        NoGradGuard no_grad;
        r = step.forward(V(z), V(h));
        ms = step.made.forward(V(z), V(h)).value();
      }
      REQUIRE(r.y.shape() == z.shape());
      REQUIRE(r.logdet.shape() == (Shape{n}));
      for (std::int64_t s = 0; s < n; ++s) {
        INFO("sample " << s);
        // The closed form from MADE's outputs, computed here: z' = sigma z + (1 - sigma) m.
        double logdet = 0;
        std::vector<double> sigma(static_cast<std::size_t>(z_dim));
        for (std::int64_t i = 0; i < z_dim; ++i) {
          const double m = ms(s, i), g = sigmoid_of(ms(s, z_dim + i) + step.gate_bias());
          sigma[static_cast<std::size_t>(i)] = g;
          logdet += std::log(g);
          CHECK(r.y.value()(s, i) == Approx(g * z(s, i) + (1 - g) * m).epsilon(1e-12).margin(1e-12));
        }
        CHECK(r.logdet.value()[s] == Approx(logdet).epsilon(1e-12));
        CHECK(r.logdet.value()[s] < 0);  // every gate below 1
        // Against log |det| of the tape's whole Jacobian, h held fixed.
        const Tensor<double> zs = z.rows(s, 1).clone(), hs = h.rows(s, 1).clone();
        const std::vector<double> brute =
            test::tape_log_abs_det([&](const V& zi) { return step.forward(zi, V(hs)).y; }, zs);
        CHECK(r.logdet.value()[s] == Approx(brute[0]).margin(1e-9));
        // Triangular in the ordering, exactly, with diagonal sigma.
        const Eigen::MatrixXd jac = step_jacobian(step, zs, hs);
        std::int64_t above_nonzero = 0;
        for (std::int64_t i = 0; i < z_dim; ++i)
          for (std::int64_t j = 0; j < z_dim; ++j) {
            if (i == j) {
              CHECK(jac(i, i) == Approx(sigma[static_cast<std::size_t>(i)]).epsilon(1e-13));
            } else if (before(order, j, i)) {
              used(i, j) = used(i, j) || jac(i, j) != 0.0;
            } else {
              above_nonzero += jac(i, j) != 0.0;
            }
          }
        CHECK(above_nonzero == 0);
      }
      // And the step does use the earlier inputs: each strictly triangular entry is nonzero in
      // some sample (a ReLU may close every path in one).
      std::int64_t unused = 0;
      for (std::int64_t i = 0; i < z_dim; ++i)
        for (std::int64_t j = 0; j < z_dim; ++j) unused += before(order, j, i) && !used(i, j);
      CHECK(unused == 0);
    }
  }
}

TEST_CASE("IAF: starts as the gated identity z' = sigmoid(gate_bias) z; no context needed when H = 0", "[flows][iaf]") {
  const Tensor<double> z = test::rnd({4, 6}, 300), h = test::rnd({4, 2}, 301);
  for (const double gate_bias : {2.0, 1.0, -0.5}) {
    INFO("gate bias " << gate_bias);
    flows::InverseAutoregressiveFlow<double> step(6, {.hidden = 16, .context_dim = 2, .gate_bias = gate_bias});
    CHECK(step.gate_bias() == gate_bias);
    NoGradGuard no_grad;
    const auto r = step.forward(V(z), V(h));
    const double g = sigmoid_of(gate_bias);
    for (std::int64_t k = 0; k < z.numel(); ++k) CHECK(r.y.value()[k] == Approx(g * z[k]).epsilon(1e-14));
    for (std::int64_t s = 0; s < 4; ++s) CHECK(r.logdet.value()[s] == Approx(6 * std::log(g)).epsilon(1e-14));
  }
  CHECK(flows::IAFOptions{}.gate_bias == 2.0);
  flows::InverseAutoregressiveFlow<double> plain(6, {.hidden = 16});
  CHECK(plain.context_dim() == 0);
  test::randomize_parameters(plain, 302, 0.5);
  NoGradGuard no_grad;
  const auto without = plain.forward(V(z), V());
  const auto ignored = plain.forward(V(z), V(h));  // a context given to a step that reads none
  for (std::int64_t k = 0; k < z.numel(); ++k) CHECK(without.y.value()[k] == ignored.y.value()[k]);
}

TEST_CASE("IAF: parameter gradients at first order and through a double backward, input gradients to second order",
          "[flows][iaf][gradcheck]") {
  const std::int64_t z_dim = 4, context = 3;
  for (const MADEOrder order : {MADEOrder::natural, MADEOrder::reversed}) {
    INFO("order " << name(order));
    flows::InverseAutoregressiveFlow<double> step(
        z_dim, {.hidden = 10, .hidden_layers = 2, .context_dim = context, .order = order});
    test::randomize_parameters(step, order == MADEOrder::natural ? 400 : 410, 0.5);
    const Tensor<double> z = test::rnd({3, z_dim}, 420), h = test::rnd({3, context}, 421);
    // First order: every parameter, through z' and through the log-determinant.
    test::expect_module_gradients(step, [&] { return step.forward(V(z), V(h)).y; });
    test::expect_module_gradients(step, [&] { return step.forward(V(z), V(h)).logdet; });
    // Second order in the parameters: the gradients of a penalty on d(sum(w z') + sum(logdet))/d(z, h),
    // the backward pass recorded (create_graph) and differentiated again, against central differences
    // of the penalty (computed with a tape of its own when expect_module_gradients runs it tape-free).
    const Tensor<double> wy = test::rnd({3, z_dim}, 422);
    auto input_gradients = [&]() {
      std::optional<Tape<double>> own;
      Tape<double>* tape = Tape<double>::current();
      if (!tape) tape = &own.emplace();
      const V zl = tape->leaf(z), hl = tape->leaf(h);
      const auto r = step.forward(zl, hl);
      const V objective = add(sum(mul(r.y, V(wy))), sum(r.logdet));
      const auto g = tape->grad(objective, {zl, hl}, {.create_graph = true});
      return concat({g[0], g[1]}, 1);  // [N, Z + H]
    };
    test::expect_module_gradients(step, input_gradients);
    // Inputs: first and second derivatives in z and h.
    GENMOD_CHECK_GRADIENTS(
        [&](std::span<const V> p) {
          const auto r = step.forward(p[0], p[1]);
          return concat({r.y, reshape(r.logdet, Shape{3, 1})}, 1);
        },
        z, h);
  }
}

TEST_CASE("IAF in a PosteriorFlow: alternating orderings, log-dets summed, the chain's Jacobian", "[flows][iaf]") {
  const std::int64_t z_dim = 5, context = 3;
  flows::PosteriorFlow<double> flow(z_dim);
  flow.push_back(flows::InverseAutoregressiveFlow<double>(z_dim, {.hidden = 20, .context_dim = context}));
  flow.push_back(flows::InverseAutoregressiveFlow<double>(
      z_dim, {.hidden = 20, .context_dim = context, .order = MADEOrder::reversed}));
  CHECK(flow.context_dim() == context);
  test::randomize_parameters(flow, 500, 0.5);
  CHECK(flow.named_parameters().front().name == "steps.0.made.layers.0.weight");
  CHECK(flow.named_buffers().back().name == "steps.1.made.layers.1.mask");
  const Tensor<double> z = test::rnd({3, z_dim}, 501), h = test::rnd({3, context}, 502);
  flows::FlowResult<double> r, r0, r1;
  {
    NoGradGuard no_grad;
    r = flow.forward(V(z), V(h));
    r0 = flow[0].forward(V(z), V(h));
    r1 = flow[1].forward(r0.y, V(h));
  }
  for (std::int64_t s = 0; s < 3; ++s) {
    INFO("sample " << s);
    CHECK(r.logdet.value()[s] == Approx(r0.logdet.value()[s] + r1.logdet.value()[s]).epsilon(1e-14));
    const Tensor<double> hs = h.rows(s, 1).clone();
    const std::vector<double> brute =
        test::tape_log_abs_det([&](const V& zi) { return flow.forward(zi, V(hs)).y; }, z.rows(s, 1).clone());
    CHECK(r.logdet.value()[s] == Approx(brute[0]).margin(1e-9));
  }
}

TEST_CASE("IAF in float: the same step in single precision", "[flows][iaf]") {
  flows::InverseAutoregressiveFlow<float> step(3, {.hidden = 8, .context_dim = 2});
  Generator g(600);
  const Tensor<float> z = randn<float>({2, 3}, g), h = randn<float>({2, 2}, g);
  NoGradGuard no_grad;
  const auto r = step.forward(Var<float>(z), Var<float>(h));
  const float gate = 1.0f / (1.0f + std::exp(-2.0f));
  for (std::int64_t k = 0; k < z.numel(); ++k) CHECK(r.y.value()[k] == Approx(gate * z[k]).epsilon(1e-6));
  CHECK(r.logdet.value()[0] == Approx(3 * std::log(gate)).epsilon(1e-6));
}

TEST_CASE("IAF and MADE: errors name what was expected and what was found", "[flows][iaf][errors]") {
  using Step = flows::InverseAutoregressiveFlow<double>;
  CHECK_THROWS_AS(Step(0), ValueError);
  CHECK_THROWS_WITH(Step(0), Catch::Contains("flows::InverseAutoregressiveFlow: expected dim >= 1, got 0"));
  CHECK_THROWS_WITH(Step(4, {.hidden = 0}), Catch::Contains("expected hidden >= 1, got 0"));
  CHECK_THROWS_WITH(Step(4, {.hidden_layers = 0}), Catch::Contains("expected hidden_layers >= 1, got 0"));
  CHECK_THROWS_WITH(Step(4, {.context_dim = -2}), Catch::Contains("expected context_dim >= 0, got -2"));
  CHECK_THROWS_WITH(Step(4, {.gate_bias = std::nan("")}), Catch::Contains("expected gate_bias to be finite, got nan"));

  Step step(4, {.hidden = 8, .context_dim = 3});
  const V z(zeros<double>({2, 4})), h(zeros<double>({2, 3}));
  CHECK_THROWS_AS(step.forward(V(zeros<double>({4})), h), ShapeError);
  CHECK_THROWS_WITH(step.forward(V(zeros<double>({4})), h),
                    Catch::Contains("expected z of rank 2 ([N, Z]), got shape [4] (rank 1)"));
  CHECK_THROWS_WITH(step.forward(V(zeros<double>({2, 5})), h),
                    Catch::Contains("z with dimension 1 (the flow's code size Z) equal to 4, got shape [2, 5]"));
  CHECK_THROWS_WITH(step.forward(z, V()), Catch::Contains("expected h a context [N, 3], got none"));
  CHECK_THROWS_WITH(step.forward(z, V(zeros<double>({3, 3}))),
                    Catch::Contains("h with dimension 0 (one context row per code) equal to 2, got shape [3, 3]"));
  CHECK_THROWS_WITH(step.forward(z, V(zeros<double>({2, 2}))),
                    Catch::Contains("h with dimension 1 (the flow's context size H) equal to 3, got shape [2, 2]"));

  using Made = flows::MADE<double>;
  CHECK_THROWS_WITH(Made(3, {.outputs_per_dim = 0}),
                    Catch::Contains("flows::MADE: expected outputs_per_dim >= 1, got 0"));
  CHECK_THROWS_WITH(Made(0), Catch::Contains("flows::MADE: expected dim >= 1, got 0"));
  Made made(3, {.hidden = 4, .context_dim = 2});
  CHECK_THROWS_WITH(
      made.forward(V(zeros<double>({2, 4})), V(zeros<double>({2, 2}))),
      Catch::Contains("flows::MADE: expected z with dimension 1 (the code size Z) equal to 3, got shape [2, 4]"));
  CHECK_THROWS_WITH(made.forward(V(zeros<double>({2, 3}))),
                    Catch::Contains("flows::MADE: expected h a context [N, 2], got none"));
  CHECK_THROWS_WITH(made.forward(V(zeros<double>({2, 3})), V(zeros<double>({2, 5}))),
                    Catch::Contains("h with dimension 1 (the context size H) equal to 2, got shape [2, 5]"));

  using Masked = flows::MaskedLinear<double>;
  CHECK_THROWS_AS(Masked(from_data<double>({2, 2}, {1, 0.5, 0, 1})), ValueError);
  CHECK_THROWS_WITH(Masked(from_data<double>({2, 2}, {1, 0.5, 0, 1})),
                    Catch::Contains("expected the mask entries 0 or 1, got 0.5 at index 1"));
  CHECK_THROWS_WITH(Masked(ones<double>({4})),
                    Catch::Contains("expected the mask of rank 2 ([out, in]), got shape [4]"));
  Masked layer(ones<double>({2, 3}));
  CHECK_THROWS_WITH(
      layer(V(zeros<double>({5, 4}))),
      Catch::Contains("flows::MaskedLinear: expected input with dimension 1 (in) equal to 3, got shape [5, 4]"));
}

}  // namespace flows_iaf_test
