// Uses the installed genmod package: fits y = 3x - 1 by gradient descent through the tape, then
// fits a small convolutional classifier (convolution, batch norm, pooling: the AVX-512 kernels)
// to random labels with Adam. Exits non-zero if either fit fails.
#include <cmath>
#include <cstdio>

#include <genmod/genmod.hpp>

using namespace genmod;

namespace {

/// y = 3x - 1 from 256 samples by plain gradient descent on the raw tape: true if w, b are found.
bool fit_line() {
  Generator gen(0);
  Tensor<float> x = randn<float>({256, 1}, gen);
  Tensor<float> y(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) y[i] = 3.0f * x[i] - 1.0f;
  Parameter<float> w(zeros<float>({1, 1})), b(zeros<float>({1}));
  float loss_value = 0;
  for (int step = 0; step < 200; ++step) {
    Tape<float> tape;
    Var<float> loss = mean(square(matmul(Var<float>(x), w.var()) + b.var() - Var<float>(y)));
    tape.backward(loss);
    for (Parameter<float>* p : {&w, &b}) {
      kernels::axpy(-0.1f, p->grad().data(), p->value().data(), p->numel());
      p->zero_grad();
    }
    loss_value = loss.item();
  }
  std::printf("genmod %s consumer: w = %.4f, b = %.4f, loss = %.2e\n", GENMOD_VERSION_STRING, w.value()[0],
              b.value()[0], static_cast<double>(loss_value));
  return std::abs(w.value()[0] - 3.0f) < 1e-3f && std::abs(b.value()[0] + 1.0f) < 1e-3f;
}

/// 32 random 1 x 8 x 8 images with random labels among 4: a conv net memorises them, so its
/// cross-entropy must fall well below log(4) = 1.386 (chance) within 60 full-batch Adam steps.
bool fit_conv() {
  Generator gen(1);
  const Tensor<float> x = randn<float>({32, 1, 8, 8}, gen);
  Tensor<std::int64_t> y(Shape{32});
  for (std::int64_t i = 0; i < y.numel(); ++i) y[i] = (i * 7 + 3) % 4;
  nn::Sequential net{nn::Conv2d(1, 8, 3, {.padding = 1, .generator = &gen}),
                     nn::BatchNorm2d(8),  // deduced as a float layer, with g++ and clang alike
                     nn::LeakyReLU(0.2),  // a double literal still gives a float layer
                     nn::MaxPool2d(2),
                     nn::Flatten(),
                     nn::Linear(8 * 4 * 4, 4, {.generator = &gen})};
  optim::Adam<float> opt{net.named_parameters(), {.lr = 1e-2}};
  float first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    Tape<float> tape;
    Var<float> loss = mean(losses::cross_entropy(net(Var<float>(x)), y));
    tape.backward(loss);
    opt.step();
    opt.zero_grad();
    (step == 0 ? first : last) = loss.item();
  }
  std::printf("conv classifier: cross-entropy %.3f -> %.3f\n", static_cast<double>(first), static_cast<double>(last));
  return last < 0.5f * first;
}

}  // namespace

int main() {
  const bool line = fit_line();
  const bool conv = fit_conv();
  return line && conv ? 0 : 1;
}
