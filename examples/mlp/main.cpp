// A classifier on Fashion-MNIST from genmod's core: Parameters, differentiable ops and the tape,
// trained with the optional train::Trainer (progress bar, metrics, checkpoints, resume, Ctrl-C).
//
//   mlp [--data DIR] [--out DIR] [--epochs N] [--batch-size N] [--threads N] [--seed S]
//       [--resume PATH] [--hidden H] [--lr X]
//
// Writes OUT/metrics.jsonl (train_loss, test_loss, test_accuracy per epoch), OUT/loss.svg and
// OUT/checkpoint.npz, and prints the test accuracy after every epoch. --data may name any
// directory of IDX files in Fashion-MNIST's format (MNIST, say): the program names what it loaded.
#include <cmath>
#include <cstdio>

#include <genmod/genmod.hpp>

using namespace genmod;

namespace {

/// A 784-H-10 ReLU network written with raw Parameters and ops (nn::Linear would do the same).
class Classifier : public nn::Layer<float> {
 public:
  Classifier(std::int64_t hidden, Generator& g)
      : w1(uniform({hidden, 784}, 784, g)),
        b1(uniform({hidden}, 784, g)),
        w2(uniform({10, hidden}, hidden, g)),
        b2(uniform({10}, hidden, g)) {}

  Var<float> forward(const Var<float>& x) override {
    return linear(relu(linear(x, w1.var(), b1.var())), w2.var(), b2.var());
  }
  void visit(nn::ModuleVisitor<float>& v) override {
    v.param("w1", w1);
    v.param("b1", b1);
    v.param("w2", w2);
    v.param("b2", b2);
  }

  Parameter<float> w1, b1, w2, b2;

 private:
  // PyTorch's default Linear initialization: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  static Parameter<float> uniform(const Shape& s, std::int64_t fan_in, Generator& g) {
    Tensor<float> t(s);
    const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
    fill_uniform(t, g, -bound, bound);
    return Parameter<float>(t);
  }
};

/// Mean cross-entropy of logits [B, 10] against labels [B].
Var<float> cross_entropy(const Var<float>& logits, const Tensor<std::int64_t>& labels) {
  return -mean(gather(log_softmax(logits, 1), 1, labels.reshape({labels.numel(), 1})));
}

}  // namespace

int main(int argc, char** argv) try {
  train::ExampleArgs args("mlp", "Trains a 784-H-10 ReLU classifier on Fashion-MNIST with SGD.",
                          {.out = "mlp-out", .epochs = 5, .batch_size = 128});
  std::int64_t hidden = 256;
  double lr = 0.1;
  args.add_option("--hidden", hidden, "hidden units", 1);
  args.add_option("--lr", lr, "SGD learning rate");
  args.parse_or_exit(argc, argv);
  args.apply_threads();

  const auto train_data = data::FashionMNIST::load(data::Split::train, args.data);
  const auto test_data = data::FashionMNIST::load(data::Split::test, args.data);
  const Tensor<float> test_x = test_data.float_images(data::ImageLayout::flat);
  std::printf("train: %s\ntest: %s\n", train_data.description().c_str(), test_data.description().c_str());
  std::fflush(stdout);
  Generator init(args.seed);
  Classifier net(hidden, init);
  optim::SGD sgd{net.named_parameters(), {.lr = lr}};
  data::Loader loader(train_data.to_dataset(data::ImageLayout::flat),
                      {.batch_size = args.batch_size, .shuffle = true, .seed = args.seed});

  train::Trainer trainer(args.trainer_options());
  trainer.add_model("model", net, &sgd);
  trainer.set_evaluate([&] {
    NoGradGuard no_grad;
    const Var<float> logits = net(Var<float>(test_x));
    std::int64_t correct = 0;
    for (std::int64_t i = 0; i < test_data.size(); ++i) {
      const float* row = logits.value().data() + i * 10;
      correct += std::max_element(row, row + 10) - row == test_data.labels[i];
    }
    const double accuracy = static_cast<double>(correct) / static_cast<double>(test_data.size());
    std::printf("test accuracy %.2f%%\n", 100.0 * accuracy);
    return train::Metrics{{"test_loss", cross_entropy(logits, test_data.labels).item()}, {"test_accuracy", accuracy}};
  });
  const train::FitResult r = trainer.fit(
      loader, [&](const data::Batch& b) { return cross_entropy(net(Var<float>(b.x)), b.y); }, sgd);
  return r.interrupted ? 130 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "mlp: %s\n", e.what());
  return 1;
}
