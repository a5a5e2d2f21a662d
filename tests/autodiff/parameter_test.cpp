#include "genmod/autodiff/parameter.hpp"

#include <catch2/catch.hpp>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/nn/layers/linear.hpp"
#include "genmod/optim/sgd.hpp"

namespace autodiff_parameter_test {

using namespace genmod;

TEST_CASE("Parameter copies share the value, the gradient and the requires_grad flag", "[autodiff][parameter]") {
  Parameter<double> p(from_data<double>({2}, {1.0, 2.0}));
  const Parameter<double> q = p;  // e.g. the handle an optimizer or a checkpoint keeps
  CHECK(q.same_as(p));
  p.value()[0] = 5.0;
  p.grad()[1] = 3.0;
  CHECK(q.value()[0] == 5.0);
  CHECK(q.grad()[1] == 3.0);
  p.set_requires_grad(false);
  CHECK_FALSE(q.requires_grad());
  {
    Tape<double> tape;
    CHECK_FALSE(q.var().requires_grad());  // a constant for the ops, through every copy
  }
  p.set_requires_grad(true);
  CHECK(q.requires_grad());
}

TEST_CASE("Freezing through the module after the optimizer was built freezes it for the optimizer",
          "[autodiff][parameter][optim]") {
  nn::Linear<double> lin(3, 2);
  optim::SGD<double> opt{lin.named_parameters(), {.lr = 0.5}};  // built first
  const Tensor<double> x = from_data<double>({1, 3}, {1.0, -2.0, 0.5});
  auto backward = [&] {
    Tape<double> tape;
    tape.backward(sum(lin(Var<double>(x))));
  };
  // Gradients are already in the buffers when the weight is frozen, so an optimizer that read a
  // flag of its own would still move the weight: only the shared flag keeps it still.
  backward();
  REQUIRE(lin.weight.grad()[0] != 0.0);
  lin.weight.set_requires_grad(false);  // through the module's handle, not the optimizer's
  const Tensor<double> w0 = lin.weight.value().clone();
  const Tensor<double> b0 = lin.bias.value().clone();
  opt.step();
  for (std::int64_t i = 0; i < w0.numel(); ++i) CHECK(lin.weight.value()[i] == w0[i]);
  CHECK(lin.bias.value()[0] == b0[0] - 0.5 * 1.0);  // d sum(Wx + b) / db = 1
  // While frozen the weight is a constant: the next backward adds nothing to its gradient.
  opt.zero_grad();
  backward();
  CHECK(lin.weight.grad()[0] == 0.0);
  CHECK(lin.bias.grad()[0] == 1.0);
  // Unfrozen, again through the module: the optimizer updates it from the next gradient.
  lin.weight.set_requires_grad(true);
  opt.zero_grad();
  backward();
  opt.step();
  CHECK(lin.weight.value()(0, 1) == w0(0, 1) - 0.5 * x[1]);  // d sum(Wx + b) / dW_01 = x_1
}

}  // namespace autodiff_parameter_test
