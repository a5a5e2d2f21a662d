// A classifier on Fashion-MNIST from genmod's core alone: Parameters, differentiable ops and the
// tape, trained with plain SGD on the whole training set, evaluated on the whole test set.
//
//   mlp [--data DIR] [--epochs N] [--batch-size N] [--hidden N] [--lr X] [--threads N] [--seed S]
//
// Prints one line per epoch: training loss, test loss and accuracy, seconds.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <genmod/autodiff/autodiff.hpp>
#include <genmod/data/fashion_mnist.hpp>
#include <genmod/data/loader.hpp>

using namespace genmod;

namespace {

struct Options {
  std::string data_dir;
  int epochs = 5;
  std::int64_t batch_size = 128;
  std::int64_t hidden = 256;
  float lr = 0.1f;
  int threads = 0;
  std::uint64_t seed = 0;
};

void usage() {
  std::printf(
      "usage: mlp [--data DIR] [--epochs N] [--batch-size N] [--hidden N] [--lr X] [--threads N] [--seed S]\n"
      "Trains a 784-H-10 ReLU classifier on Fashion-MNIST with SGD and prints the test accuracy.\n"
      "  --data DIR      directory of the IDX files (default: $GENMOD_DATA_DIR or\n"
      "                  /usr/share/datasets/fashion-mnist, from the Debian package dataset-fashion-mnist)\n"
      "  --epochs N      passes over the 60000 training images (default 5)\n"
      "  --batch-size N  images per step (default 128)\n"
      "  --hidden N      hidden units (default 256)\n"
      "  --lr X          SGD learning rate (default 0.1)\n"
      "  --threads N     threads (default: OMP_NUM_THREADS or all cores)\n"
      "  --seed S        seed of initialization and shuffling (default 0)\n");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ValueError("missing value after " + a);
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    } else if (a == "--data") {
      o.data_dir = value();
    } else if (a == "--epochs") {
      o.epochs = std::stoi(value());
    } else if (a == "--batch-size") {
      o.batch_size = std::stoll(value());
    } else if (a == "--hidden") {
      o.hidden = std::stoll(value());
    } else if (a == "--lr") {
      o.lr = std::stof(value());
    } else if (a == "--threads") {
      o.threads = std::stoi(value());
    } else if (a == "--seed") {
      o.seed = std::stoull(value());
    } else {
      throw ValueError("unknown option " + a + " (see --help)");
    }
  }
  if (o.epochs < 0 || o.batch_size < 1 || o.hidden < 1 || !(o.lr > 0))
    throw ValueError("expected epochs >= 0, batch size >= 1, hidden >= 1 and lr > 0");
  return o;
}

// PyTorch's default Linear initialization: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
Parameter<float> uniform_param(const Shape& s, std::int64_t fan_in, Generator& g) {
  Tensor<float> t(s);
  const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
  fill_uniform(t, g, -bound, bound);
  return Parameter<float>(t);
}

struct Classifier {
  Parameter<float> w1, b1, w2, b2;
  Classifier(std::int64_t hidden, Generator& g)
      : w1(uniform_param({784, hidden}, 784, g)), b1(uniform_param({hidden}, 784, g)),
        w2(uniform_param({hidden, 10}, hidden, g)), b2(uniform_param({10}, hidden, g)) {}

  Var<float> logits(const Var<float>& x) const {
    return matmul(relu(matmul(x, w1.var()) + b1.var()), w2.var()) + b2.var();
  }
  Parameter<float>* params[4] = {&w1, &b1, &w2, &b2};
};

// Mean cross-entropy of logits [B, 10] against labels [B].
Var<float> cross_entropy(const Var<float>& logits, const Tensor<std::int64_t>& labels) {
  return -mean(gather(log_softmax(logits, 1), 1, labels.reshape({labels.numel(), 1})));
}

}  // namespace

int main(int argc, char** argv) try {
  const Options opt = parse(argc, argv);
  if (opt.threads > 0) set_num_threads(opt.threads);
  const auto train = data::FashionMNIST::load(data::Split::train, opt.data_dir);
  const auto test = data::FashionMNIST::load(data::Split::test, opt.data_dir);
  const data::Dataset train_set = train.to_dataset(data::ImageLayout::flat);
  const Tensor<float> test_x = test.float_images(data::ImageLayout::flat);
  std::printf("Fashion-MNIST: %lld training and %lld test images; 784-%lld-10 MLP, %d threads\n",
              static_cast<long long>(train.size()), static_cast<long long>(test.size()),
              static_cast<long long>(opt.hidden), get_num_threads());

  Generator gen(opt.seed);
  Classifier net(opt.hidden, gen);
  data::Loader loader(train_set, {.batch_size = opt.batch_size, .shuffle = true, .seed = opt.seed});

  for (int epoch = 1; epoch <= opt.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0;
    std::int64_t seen = 0;
    for (const auto& batch : loader) {
      Tape<float> tape;
      Var<float> loss = cross_entropy(net.logits(Var<float>(batch.x)), batch.y);
      if (!std::isfinite(loss.item()))
        throw NumericError("loss became " + std::to_string(loss.item()) + " at epoch " + std::to_string(epoch));
      tape.backward(loss);
      for (auto* p : net.params) {  // SGD: p -= lr * grad
        kernels::axpy(-opt.lr, p->grad().data(), p->value().data(), p->numel());
        p->zero_grad();
      }
      loss_sum += static_cast<double>(loss.item()) * static_cast<double>(batch.size());
      seen += batch.size();
    }
    // Test loss and accuracy, without recording.
    NoGradGuard no_grad;
    const Var<float> logits = net.logits(Var<float>(test_x));
    const float test_loss = cross_entropy(logits, test.labels).item();
    std::int64_t correct = 0;
    for (std::int64_t i = 0; i < test.size(); ++i) {
      const float* row = logits.value().data() + i * 10;
      correct += std::max_element(row, row + 10) - row == test.labels[i];
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("epoch %d  train_loss %.4f  test_loss %.4f  test_accuracy %.2f%%  %.2f s\n", epoch,
                loss_sum / static_cast<double>(seen), test_loss,
                100.0 * static_cast<double>(correct) / static_cast<double>(test.size()), secs);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "mlp: %s\n", e.what());
  return 1;
}
