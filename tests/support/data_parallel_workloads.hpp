#pragma once
// The data-parallel workloads of the equivalence proofs, shared by the thread-communicator tests
// (tests/distributed/data_parallel_test.cpp) and the MPI programs (tests/distributed/mpi/): a small
// mlp VAE (stochastic: epsilon per sample) and a conv net with SyncBatchNorm, each trained a few
// Adam steps data-parallel on a communicator's ranks.

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/data/loader.hpp"
#include "genmod/distributed/data_parallel.hpp"
#include "genmod/models/vae.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"

namespace genmod::test {

constexpr std::int64_t kDataParallelIn = 12, kDataParallelHidden = 10, kDataParallelLatent = 3;

template <class T>
auto make_vae(std::int64_t hidden = kDataParallelHidden) {
  return models::VAE{
      nn::Sequential{nn::Linear<T>(kDataParallelIn, hidden), nn::Tanh<T>(),
                     nn::Linear<T>(hidden, 2 * kDataParallelLatent)},
      nn::Sequential{nn::Linear<T>(kDataParallelLatent, hidden), nn::Tanh<T>(), nn::Linear<T>(hidden, kDataParallelIn)},
      dist::Bernoulli{}, models::VAEOptions{.seed = 7}};
}

// Pixels in [0, 1): a Bernoulli likelihood's data.
data::Dataset make_data(std::int64_t n) {
  Generator g(3);
  return data::Dataset(rand<float>({n, kDataParallelIn}, g));
}

template <class T>
Tensor<T> as(const Tensor<float>& x) {
  if constexpr (std::is_same_v<T, float>)
    return x;
  else
    return x.cast<T>();
}

// The parameters after `steps` Adam steps of a VAE on `data`, trained data-parallel on `comm`'s
// ranks with per-rank batch `batch` (the loop of data_parallel.hpp's example).
template <class T>
std::vector<Tensor<T>> train_vae(distributed::Communicator& comm, const data::Dataset& data, std::int64_t batch,
                                 int steps, std::int64_t bucket_bytes = std::int64_t{25} << 20) {
  manual_seed(static_cast<std::uint64_t>(11 + comm.rank()));  // replicas start apart: the broadcast aligns them
  auto vae = make_vae<T>();
  distributed::DataParallel<T> dp(vae, comm, {.bucket_bytes = bucket_bytes});
  optim::Adam<T> opt(vae.named_parameters(), {.lr = 1e-2});
  data::Loader loader(
      data, {.batch_size = batch, .shuffle = true, .seed = 5, .rank = comm.rank(), .world_size = comm.size()});
  int done = 0;
  while (done < steps) {
    for (auto& b : loader) {
      distributed::SampleWindowGuard window(vae.rng, b);
      Tape<T> tape;
      Var<T> loss = vae.loss(Var<T>(as<T>(b.x)));
      opt.zero_grad();
      dp.backward(tape, loss, b);
      opt.step();
      if (++done == steps) break;
    }
  }
  dp.check_replicas_equal();
  std::vector<Tensor<T>> out;
  for (auto& p : vae.parameters()) out.push_back(p.value().clone());
  return out;
}

// The largest relative difference ||a_k - b_k|| / ||b_k|| (L2) over the tensors of two parameter
// lists: the measure of "the same parameters". (Element by element, float rounding alone
// reaches 1e-5 on weights near 1e-3 after five Adam steps; the norms weigh each weight by its size.)
template <class T>
double max_relative_difference(const std::vector<Tensor<T>>& a, const std::vector<Tensor<T>>& b) {
  if (a.size() != b.size()) throw std::logic_error("max_relative_difference: different numbers of tensors");
  double worst = 0;
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (!(a[k].shape() == b[k].shape())) throw std::logic_error("max_relative_difference: different shapes");
    double diff = 0, norm = 0;
    for (std::int64_t i = 0; i < a[k].numel(); ++i) {
      const double x = static_cast<double>(a[k][i]), y = static_cast<double>(b[k][i]);
      diff += (x - y) * (x - y);
      norm += y * y;
    }
    if (diff > 0) worst = std::max(worst, std::sqrt(diff / std::max(norm, 1e-300)));
  }
  return worst;
}

// A small conv net with SyncBatchNorm, trained 5 Adam steps data-parallel on `comm`; its
// parameters, then its running statistics.
template <class T>
std::vector<Tensor<T>> train_conv(distributed::Communicator& comm, const data::Dataset& data, std::int64_t batch) {
  manual_seed(static_cast<std::uint64_t>(21 + comm.rank()));
  // No bias before the batch norm: its gradient is zero in exact arithmetic, so Adam (which divides
  // by the gradient's own scale) would turn rounding noise into full-size steps.
  nn::Sequential net{nn::Conv2d<T>(1, 4, 3, {.padding = 1, .bias = false}), nn::SyncBatchNorm<T>(4, &comm),
                     nn::ReLU<T>(), nn::Flatten<T>(), nn::Linear<T>(4 * 6 * 6, 1)};
  distributed::DataParallel<T> dp(net, comm);
  optim::Adam<T> opt(net.named_parameters(), {.lr = 1e-2});
  data::Loader loader(
      data, {.batch_size = batch, .shuffle = true, .seed = 8, .rank = comm.rank(), .world_size = comm.size()});
  int done = 0;
  for (auto& b : loader) {
    Tape<T> tape;
    const Tensor<T> x = as<T>(b.x);
    Var<T> y = net(Var<T>(x));
    // Target: the mean pixel of each image.
    Tensor<T> target(Shape{b.size(), 1});
    for (std::int64_t i = 0; i < b.size(); ++i) {
      double m = 0;
      for (std::int64_t j = 0; j < 36; ++j) m += static_cast<double>(x[i * 36 + j]);
      target[i] = static_cast<T>(m / 36);
    }
    Var<T> loss = mean(square(sub(y, Var<T>(target))));
    opt.zero_grad();
    dp.backward(tape, loss, b);
    opt.step();
    if (++done == 5) break;
  }
  std::vector<Tensor<T>> out;
  for (auto& p : net.parameters()) out.push_back(p.value().clone());
  for (auto& b : net.named_buffers()) out.push_back(b.tensor.clone());
  return out;
}

}  // namespace genmod::test
