#include <catch2/catch.hpp>

#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/nn/nn.hpp"

namespace autodiff_gradient_ready_hook_test {

using namespace genmod;

TEST_CASE("Tape's gradient-ready hook reports each parameter once, with its final gradient, last layer first",
          "[autodiff][tape]") {
  manual_seed(3);
  nn::Sequential net{nn::Linear<double>(5, 4), nn::Tanh<double>(), nn::Linear<double>(4, 3), nn::Tanh<double>(),
                     nn::Linear<double>(3, 2)};
  auto params = net.named_parameters();
  Generator g(1);
  const Tensor<double> x = randn<double>({6, 5}, g);
  // A parameter read twice (the first layer's weight also in a penalty computed last): it is final
  // only once its first reader, the first layer, has run its backward.
  auto loss_of = [&] {
    Var<double> y = net(Var<double>(x));
    return add(mean(square(y)), scale(sum(square(Var<double>(params[0].parameter))), 0.1));
  };

  // The reference gradients, without a hook.
  std::vector<Tensor<double>> reference;
  {
    net.zero_grad();
    Tape<double> tape;
    tape.backward(loss_of());
    for (auto& p : params) reference.push_back(p.parameter.grad().clone());
  }

  net.zero_grad();
  std::vector<const double*> order;
  std::vector<Tensor<double>> at_report;
  {
    Tape<double> tape;
    Var<double> loss = loss_of();
    tape.set_gradient_ready_hook([&](Tensor<double>& buffer) {
      order.push_back(buffer.data());
      at_report.push_back(buffer.clone());
    });
    tape.backward(loss);
  }
  REQUIRE(order.size() == params.size());
  for (std::size_t k = 0; k < params.size(); ++k) {
    // Reported in reverse order of the layers: the last Linear's bias and weight first.
    const auto& p = params[params.size() - 1 - k];
    INFO("report " << k << ", expected " << p.name);
    const bool same_pair =
        order[k] == p.parameter.grad().data() ||
        (k % 2 == 0 ? order[k + 1] == p.parameter.grad().data() : order[k - 1] == p.parameter.grad().data());
    CHECK(same_pair);
  }
  for (std::size_t k = 0; k < params.size(); ++k) {
    // The buffer held its final value when it was reported, and the result equals the reference.
    std::size_t j = 0;
    while (order[j] != params[k].parameter.grad().data()) ++j;
    CHECK(allclose(at_report[j], reference[k], 0, 0));
    CHECK(allclose(params[k].parameter.grad(), reference[k], 0, 0));
  }
}

TEST_CASE("Tape's gradient-ready hook is off for create_graph and for Tape::grad", "[autodiff][tape]") {
  nn::Linear<double> lin(3, 2);
  Generator g(2);
  const Tensor<double> x = randn<double>({4, 3}, g);
  int reports = 0;
  {
    Tape<double> tape;
    tape.set_gradient_ready_hook([&](Tensor<double>&) { ++reports; });
    Var<double> xv = tape.leaf(x);
    Var<double> loss = sum(square(lin(xv)));
    auto grads = tape.grad(loss, {xv});
    CHECK(grads.size() == 1);
    tape.backward(loss, {.create_graph = true});
  }
  CHECK(reports == 0);
}

}  // namespace autodiff_gradient_ready_hook_test
