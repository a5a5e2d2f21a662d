// Uses the installed genmod package: fits y = 3x - 1 by gradient descent through the tape.
#include <cmath>
#include <cstdio>

#include <genmod/genmod.hpp>

int main() {
  using namespace genmod;
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
  return std::abs(w.value()[0] - 3.0f) < 1e-3f && std::abs(b.value()[0] + 1.0f) < 1e-3f ? 0 : 1;
}
