#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/data/loader.hpp"
#include "genmod/distributed/data_parallel.hpp"
#include "genmod/distributed/thread_communicator.hpp"
#include "genmod/io/model_checkpoint.hpp"
#include "genmod/models/gan.hpp"
#include "genmod/models/vae.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"
#include "genmod/train/trainer.hpp"
#include "support/data_parallel_workloads.hpp"
#include "support/temp_dir.hpp"

namespace distributed_data_parallel_test {

using namespace genmod;
namespace fs = std::filesystem;

namespace {

using test::make_data;
using test::make_vae;
using test::max_relative_difference;
using test::train_conv;
using test::train_vae;
constexpr std::int64_t kHidden = test::kDataParallelHidden;

// Runs body(comm) on n ranks, each expected to throw E; returns every rank's message (a rank that
// did not throw E leaves an empty one). run_ranks rethrows the first rank's exception: an E too.
template <class E, class F>
std::vector<std::string> messages_of_failing_ranks(int n, F body) {
  std::vector<std::string> messages(static_cast<std::size_t>(n));
  CHECK_THROWS_AS(distributed::run_ranks(n,
                                         [&](distributed::Communicator& c) {
                                           try {
                                             body(c);
                                           } catch (const E& e) {
                                             messages[static_cast<std::size_t>(c.rank())] = e.what();
                                             throw;
                                           }
                                         }),
                  E);
  return messages;
}

struct OneThread {
  int before = get_num_threads();
  OneThread() { set_num_threads(1); }
  ~OneThread() { set_num_threads(before); }
};

}  // namespace

TEST_CASE("Loader shards: the ranks' slices of each global batch are the one-process batch", "[distributed][data]") {
  const data::Dataset data = make_data(23);
  for (int ranks = 1; ranks <= 4; ++ranks) {
    const std::int64_t b = 3, g = b * ranks;
    data::Loader whole(data, {.batch_size = g, .shuffle = true, .seed = 9});
    std::vector<data::Loader> shards;
    for (int r = 0; r < ranks; ++r)
      shards.emplace_back(
          data, data::LoaderOptions{.batch_size = b, .shuffle = true, .seed = 9, .rank = r, .world_size = ranks});
    // A tail shorter than the number of ranks is dropped; otherwise every global batch is kept.
    const std::int64_t tail = 23 % g;
    const std::int64_t expected = 23 / g + (tail >= ranks ? 1 : 0);
    for (auto& s : shards) CHECK(s.num_batches() == expected);
    CHECK(shards[0].global_batch_size() == g);
    std::vector<data::Loader::Iterator> its;
    for (auto& s : shards) its.push_back(s.begin());
    std::int64_t batches = 0;
    for (auto w = whole.begin(); w != whole.end() && batches < expected; ++w, ++batches) {
      std::vector<float> joined;
      std::int64_t position = 0;
      for (int r = 0; r < ranks; ++r) {
        const data::Batch& sb = *its[static_cast<std::size_t>(r)];
        CHECK(sb.window.first == position);
        CHECK(sb.window.total == w->size());
        CHECK(sb.window.count == sb.size());
        CHECK(sb.size() >= 1);
        position += sb.size();
        joined.insert(joined.end(), sb.x.data(), sb.x.data() + sb.x.numel());
        ++its[static_cast<std::size_t>(r)];
      }
      CHECK(position == w->size());
      CHECK(std::equal(joined.begin(), joined.end(), w->x.data(), w->x.data() + w->x.numel()));
    }
    for (int r = 0; r < ranks; ++r)
      CHECK(its[static_cast<std::size_t>(r)] == shards[static_cast<std::size_t>(r)].end());
  }
  CHECK_THROWS_AS(data::Loader(data, {.batch_size = 2, .rank = 2, .world_size = 2}), ValueError);
  CHECK_THROWS_AS(data::Loader(data, {.batch_size = 2, .rank = 0, .world_size = 0}), ValueError);
}

TEMPLATE_TEST_CASE("A sample window draws this rank's rows of the whole batch's noise", "[distributed][random]", float,
                   double) {
  const std::int64_t total = 7, cols = 5;
  Generator whole_g(4, 2);
  const Tensor<TestType> whole_n = randn<TestType>({total, cols}, whole_g);
  const Tensor<TestType> whole_u = rand<TestType>({total, 1, cols}, whole_g);
  for (std::int64_t first = 0; first < total; ++first)
    for (std::int64_t count = 1; first + count <= total; ++count) {
      Generator g(4, 2);
      g.set_sample_window({first, count, total});
      const Tensor<TestType> n = randn<TestType>({count, cols}, g);
      const Tensor<TestType> u = rand<TestType>({count, 1, cols}, g);
      for (std::int64_t i = 0; i < n.numel(); ++i) CHECK(n[i] == whole_n[first * cols + i]);
      for (std::int64_t i = 0; i < u.numel(); ++i) CHECK(u[i] == whole_u[first * cols + i]);
      CHECK(g.state().offset == whole_g.state().offset);  // every rank advances as the whole fill
    }
  // A fill whose leading dimension is not the window's count is drawn as without a window.
  Generator a(1), b(1);
  b.set_sample_window({1, 2, 6});
  const Tensor<TestType> ta = randn<TestType>({3, 4}, a), tb = randn<TestType>({3, 4}, b);
  for (std::int64_t i = 0; i < ta.numel(); ++i) CHECK(ta[i] == tb[i]);
}

TEST_CASE("DataParallel: N ranks x batch B train as one process x batch N B (mlp VAE, 5 Adam steps)", "[distributed]") {
  OneThread one;
  // 5 steps over 4 full global batches and an uneven tail (split 1-2 samples per rank).
  for (int ranks : {2, 3}) {
    const std::int64_t b = 4, g = b * ranks;
    const data::Dataset data = make_data(4 * g + ranks + 1);
    std::vector<Tensor<double>> single_d;
    std::vector<Tensor<float>> single_f;
    distributed::run_ranks(1, [&](distributed::Communicator& c) {
      single_d = train_vae<double>(c, data, g, 5);
      single_f = train_vae<float>(c, data, g, 5);
    });
    std::vector<std::vector<Tensor<double>>> multi_d(static_cast<std::size_t>(ranks));
    std::vector<std::vector<Tensor<float>>> multi_f(static_cast<std::size_t>(ranks));
    distributed::run_ranks(ranks, [&](distributed::Communicator& c) {
      multi_d[static_cast<std::size_t>(c.rank())] = train_vae<double>(c, data, b, 5);
      multi_f[static_cast<std::size_t>(c.rank())] = train_vae<float>(c, data, b, 5);
    });
    for (int r = 0; r < ranks; ++r) {
      INFO("ranks " << ranks << ", rank " << r);
      CHECK(max_relative_difference(multi_d[static_cast<std::size_t>(r)], single_d) <= 1e-10);
      CHECK(max_relative_difference(multi_f[static_cast<std::size_t>(r)], single_f) <= 1e-5);
      CHECK(max_relative_difference(multi_d[static_cast<std::size_t>(r)], multi_d[0]) == 0);  // replicas bit-equal
    }
    // The training moved the parameters (the comparison is not of untouched initial values).
    std::vector<Tensor<double>> initial;
    distributed::run_ranks(1, [&](distributed::Communicator& c) { initial = train_vae<double>(c, data, g, 0); });
    CHECK(max_relative_difference(single_d, initial) > 1e-3);
  }
}

TEST_CASE("DataParallel: the bucket size changes the messages, not the result", "[distributed]") {
  OneThread one;
  const data::Dataset data = make_data(40);
  std::vector<Tensor<double>> one_bucket, many;
  distributed::run_ranks(2, [&](distributed::Communicator& c) {
    auto a = train_vae<double>(c, data, 4, 3);
    auto m = train_vae<double>(c, data, 4, 3, 64);  // 64 bytes: about a bucket per parameter
    if (c.rank() == 0) {
      one_bucket = std::move(a);
      many = std::move(m);
    }
  });
  CHECK(max_relative_difference(many, one_bucket) == 0);
  auto vae = make_vae<double>();
  distributed::run_ranks(1, [&](distributed::Communicator& c) {
    distributed::DataParallel<double> small(vae, c, {.bucket_bytes = 8});  // one double: a bucket per parameter
    distributed::DataParallel<double> big(vae, c);
    CHECK(small.num_buckets() == vae.parameters().size());
    CHECK(big.num_buckets() == 1);
  });
}

TEST_CASE("DataParallel: ranks with different models fail at the start, naming the first mismatch",
          "[distributed][errors]") {
  const auto messages = messages_of_failing_ranks<distributed::DistributedError>(2, [](distributed::Communicator& c) {
    auto vae = make_vae<float>(c.rank() == 0 ? kHidden : kHidden + 1);
    distributed::DataParallel<float> dp(vae, c);
  });
  for (const auto& m : messages) {
    INFO(m);
    CHECK(m.find("encoder.0.weight") != std::string::npos);
    CHECK(m.find("[10, 12] on rank 0") != std::string::npos);
    CHECK(m.find("[11, 12] on rank 1") != std::string::npos);
  }
  CHECK_THROWS_AS(distributed::run_ranks(1,
                                         [&](distributed::Communicator& c) {
                                           auto vae = make_vae<float>();
                                           distributed::DataParallel<float> dp(vae, c, {.bucket_bytes = 0});
                                         }),
                  ValueError);
}

TEST_CASE("DataParallel: the replica check names the first parameter that differs", "[distributed][errors]") {
  const auto messages = messages_of_failing_ranks<distributed::DistributedError>(3, [](distributed::Communicator& c) {
    auto vae = make_vae<float>();
    distributed::DataParallel<float> dp(vae, c);
    dp.check_replicas_equal();  // equal after the broadcast
    if (c.rank() == 2) vae.decoder.get<2>().bias.value()[1] += 1e-6f;
    dp.check_replicas_equal();
  });
  for (const auto& m : messages) {
    INFO(m);
    CHECK(m.find("'decoder.2.bias' on rank(s) 2") != std::string::npos);
  }
}

TEST_CASE("Trainer + DataParallel: 2 ranks equal 1 process, rank 0 writes, resume on another rank count",
          "[distributed][train]") {
  OneThread one;
  const data::Dataset data = make_data(30);
  const std::int64_t global = 6;
  auto run = [&](distributed::Communicator& c, const std::string& out, std::int64_t epochs,
                 const std::string& resume) -> std::vector<Tensor<double>> {
    manual_seed(1);
    auto vae = make_vae<float>();
    distributed::DataParallel<float> dp(vae, c);
    optim::Adam opt(vae.named_parameters(), {.lr = 1e-2});
    data::Loader loader(
        data, {.batch_size = global / c.size(), .shuffle = true, .seed = 2, .rank = c.rank(), .world_size = c.size()});
    train::Trainer trainer(
        {.epochs = epochs, .out_dir = out, .resume = resume, .progress = train::Progress::off, .handle_sigint = false});
    trainer.add_model("vae", vae, &opt).add_generator(vae.rng).set_data_parallel(dp);
    const auto result = trainer.fit(
        loader, [&](const data::Batch& b) { return Var<float>(vae.loss(Var<float>(b.x))); }, opt);
    std::vector<Tensor<double>> out_params;
    for (auto& p : vae.parameters()) out_params.push_back(p.value().cast<double>());
    out_params.push_back(from_data<double>({1}, {result.epochs.back().train_loss}));
    return out_params;
  };
  test::TempDir dir("genmod_dp_trainer");
  std::vector<Tensor<double>> single, pair, resumed;
  distributed::run_ranks(1, [&](distributed::Communicator& c) { single = run(c, dir.file("single"), 2, ""); });
  distributed::run_ranks(2, [&](distributed::Communicator& c) {
    auto p = run(c, dir.file("pair"), 2, "");
    if (c.rank() == 1) pair = std::move(p);
  });
  CHECK(max_relative_difference(pair, single) <= 1e-5);  // parameters and the last epoch's train_loss
  CHECK(fs::exists(dir.file("pair/checkpoint.npz")));
  CHECK(fs::exists(dir.file("pair/metrics.jsonl")));
  // Epoch 1 on 3 ranks, epoch 2 resumed on 2: the same run as 2 epochs in one process.
  distributed::run_ranks(3, [&](distributed::Communicator& c) { run(c, dir.file("resumed"), 1, ""); });
  distributed::run_ranks(2, [&](distributed::Communicator& c) {
    auto p = run(c, dir.file("resumed"), 2, dir.file("resumed/checkpoint.npz"));
    if (c.rank() == 0) resumed = std::move(p);
  });
  CHECK(max_relative_difference(resumed, single) <= 1e-5);
}

TEST_CASE("Trainer + DataParallel: a rank that fails stops the others; the last checkpoint survives",
          "[distributed][train][errors]") {
  OneThread one;
  const data::Dataset data = make_data(24);
  test::TempDir dir("genmod_dp_fault");
  auto run = [&](distributed::Communicator& c, bool fail) {
    auto vae = make_vae<float>();
    distributed::DataParallel<float> dp(vae, c);
    optim::Adam opt(vae.named_parameters(), {.lr = 1e-2});
    data::Loader loader(data, {.batch_size = 4, .rank = c.rank(), .world_size = c.size()});
    train::Trainer trainer(
        {.epochs = 3, .out_dir = dir.file("out"), .progress = train::Progress::off, .handle_sigint = false});
    trainer.add_model("vae", vae, &opt).add_generator(vae.rng).set_data_parallel(dp);
    trainer.fit(
        loader,
        [&](const data::Batch& b) {
          if (fail && c.rank() == 1 && trainer.step() == 4) throw std::runtime_error("rank 1 lost its disk");
          return Var<float>(vae.loss(Var<float>(b.x)));
        },
        opt);
  };
  std::string what;
  try {
    distributed::run_ranks(
        2, [&](distributed::Communicator& c) { run(c, true); }, distributed::ThreadGroupOptions{.timeout_seconds = 10});
  } catch (const std::exception& e) {
    what = e.what();
  }
  CHECK(what == "rank 1 lost its disk");
  // Epoch 1 (3 steps) was saved before the failure at step 5; the file loads.
  auto vae = make_vae<float>();
  optim::Adam opt(vae.named_parameters(), {.lr = 1e-2});
  io::CheckpointSet set;
  set.add("vae", vae, &opt);
  CHECK(set.load(dir.file("out/checkpoint.npz")).epoch == 1);
  // A NaN on one rank stops every rank at the same step with NumericError.
  const auto messages = messages_of_failing_ranks<NumericError>(2, [&](distributed::Communicator& c) {
    auto v = make_vae<float>();
    distributed::DataParallel<float> dp(v, c);
    optim::Adam opt(v.named_parameters(), {.lr = 1e-2});
    data::Loader loader(data, {.batch_size = 4, .rank = c.rank(), .world_size = c.size()});
    train::Trainer trainer(
        {.epochs = 1, .out_dir = dir.file("nan"), .progress = train::Progress::off, .handle_sigint = false});
    trainer.set_data_parallel(dp);
    trainer.fit(
        loader,
        [&](const data::Batch& b) {
          Var<float> l = v.loss(Var<float>(b.x));
          return c.rank() == 0 && trainer.step() == 1 ? log(scale(l, 0.0f)) : l;
        },
        opt);
  });
  CHECK(messages[0].find("at step 2") != std::string::npos);
  CHECK(messages[0].find("first non-finite value") != std::string::npos);
  CHECK(messages[1].find("on another rank at step 2") != std::string::npos);
}

TEST_CASE("DataParallel: with overlap every bucket starts during the backward pass, with the same result",
          "[distributed]") {
  OneThread one;
  const data::Dataset data = make_data(16);
  for (bool overlap : {true, false}) {
    std::vector<Tensor<double>> grads;
    std::size_t early = 99, buckets = 0;
    distributed::run_ranks(2, [&](distributed::Communicator& c) {
      auto vae = make_vae<double>();
      distributed::DataParallel<double> dp(vae, c, {.bucket_bytes = 8, .overlap = overlap});
      data::Loader loader(data, {.batch_size = 8, .rank = c.rank(), .world_size = c.size()});
      auto& b = *loader.begin();
      distributed::SampleWindowGuard window(vae.rng, b);
      Tape<double> tape;
      vae.zero_grad();
      dp.backward(tape, vae.loss(Var<double>(b.x.cast<double>())), b);
      if (c.rank() == 0) {
        early = dp.buckets_started_early();
        buckets = dp.num_buckets();
        for (auto& p : vae.parameters()) grads.push_back(p.grad().clone());
      }
    });
    CHECK(early == (overlap ? buckets : 0));
    // The gradient of the whole batch's mean loss, in one process.
    std::vector<Tensor<double>> whole;
    distributed::run_ranks(1, [&](distributed::Communicator& c) {
      auto vae = make_vae<double>();
      distributed::DataParallel<double> dp(vae, c);
      data::Loader loader(data, {.batch_size = 16});
      auto& b = *loader.begin();
      Tape<double> tape;
      vae.zero_grad();
      dp.backward(tape, vae.loss(Var<double>(b.x.cast<double>())), b);
      for (auto& p : vae.parameters()) whole.push_back(p.grad().clone());
    });
    CHECK(max_relative_difference(grads, whole) <= 1e-10);
  }
}

TEMPLATE_TEST_CASE("DataParallel + SyncBatchNorm: N ranks x B train as one process x N B (conv net, 5 Adam steps)",
                   "[distributed]", float, double) {
  OneThread one;
  const double tolerance = std::is_same_v<TestType, double> ? 1e-10 : 1e-5;
  for (int ranks : {2, 3}) {
    const std::int64_t b = 3, g = b * ranks;
    Generator gen(12);
    const data::Dataset data(rand<float>({5 * g, 1, 6, 6}, gen));
    std::vector<Tensor<TestType>> single;
    distributed::run_ranks(1, [&](distributed::Communicator& c) { single = train_conv<TestType>(c, data, g); });
    std::vector<std::vector<Tensor<TestType>>> multi(static_cast<std::size_t>(ranks));
    distributed::run_ranks(ranks, [&](distributed::Communicator& c) {
      multi[static_cast<std::size_t>(c.rank())] = train_conv<TestType>(c, data, b);
    });
    for (int r = 0; r < ranks; ++r) {
      INFO("ranks " << ranks << ", rank " << r);
      CHECK(max_relative_difference(multi[static_cast<std::size_t>(r)], single) <= tolerance);
    }
    // Plain BatchNorm per rank would normalize with each slice's own statistics: not the same run.
  }
}

namespace {

// A small GAN trained `steps` train_steps data-parallel (two DataParallels: D and G); its parameters.
std::vector<Tensor<double>> train_gan(distributed::Communicator& comm, const data::Dataset& data, std::int64_t batch,
                                      models::GanObjective objective, int n_critic) {
  manual_seed(static_cast<std::uint64_t>(31 + comm.rank()));
  models::GAN gan{
      nn::Sequential{nn::Linear<double>(4, 8), nn::Tanh<double>(), nn::Linear<double>(8, 12)},
      // No output bias in D: a Wasserstein loss's gradient for it is zero in exact arithmetic
      // (it cancels between real and fake), and Adam would turn rounding noise into steps.
      nn::Sequential{nn::Linear<double>(12, 8), nn::Tanh<double>(), nn::Linear<double>(8, 1, {.bias = false})},
      models::GANOptions{.objective = objective, .latent_dim = 4, .n_critic = n_critic, .noise_seed = 3}};
  distributed::DataParallel<double> d_dp(gan.discriminator(), comm), g_dp(gan.generator(), comm);
  gan.set_data_parallel(&d_dp, &g_dp);
  optim::Adam<double> d_opt(gan.discriminator().named_parameters(), {.lr = 1e-2});
  optim::Adam<double> g_opt(gan.generator().named_parameters(), {.lr = 1e-2});
  data::Loader loader(
      data, {.batch_size = batch, .shuffle = true, .seed = 4, .rank = comm.rank(), .world_size = comm.size()});
  for (auto& b : loader) {
    distributed::SampleWindowGuard window(gan.noise(), b);  // z and the penalty's alpha per global sample
    gan.train_step(b.x.cast<double>(), d_opt, g_opt);
  }
  std::vector<Tensor<double>> out;
  for (auto& p : gan.parameters()) out.push_back(p.value().clone());
  return out;
}

}  // namespace

TEST_CASE("DataParallel GAN: N ranks x B train as one process x N B (non-saturating, WGAN-GP, n_critic 2)",
          "[distributed][gan]") {
  OneThread one;
  const data::Dataset data = make_data(5 * 6);  // 5 steps of a global batch of 6
  for (auto [objective, n_critic] :
       {std::pair{models::GanObjective::non_saturating, 1}, std::pair{models::GanObjective::wgan_gp, 2}}) {
    for (int ranks : {2, 3}) {
      std::vector<Tensor<double>> single, multi;
      distributed::run_ranks(
          1, [&](distributed::Communicator& c) { single = train_gan(c, data, 6, objective, n_critic); });
      distributed::run_ranks(ranks, [&](distributed::Communicator& c) {
        auto p = train_gan(c, data, 6 / ranks, objective, n_critic);
        if (c.rank() == ranks - 1) multi = std::move(p);
      });
      INFO("objective " << static_cast<int>(objective) << ", ranks " << ranks);
      CHECK(max_relative_difference(multi, single) <= 1e-10);
      std::vector<Tensor<double>> untrained;
      distributed::run_ranks(1, [&](distributed::Communicator& c) {
        untrained = train_gan(c, data::Dataset(zeros<float>({0, 12})), 6, objective, n_critic);
      });
      CHECK(max_relative_difference(single, untrained) > 1e-3);
    }
  }
}

TEST_CASE("DataParallel GAN: a step without the noise generator's sample window is refused",
          "[distributed][gan][errors]") {
  const data::Dataset data = make_data(8);
  const auto messages = messages_of_failing_ranks<ValueError>(2, [&](distributed::Communicator& c) {
    models::GAN gan{nn::Sequential{nn::Linear<double>(4, 12)}, nn::Sequential{nn::Linear<double>(12, 1)},
                    models::GANOptions{.latent_dim = 4}};
    distributed::DataParallel<double> d_dp(gan.discriminator(), c), g_dp(gan.generator(), c);
    gan.set_data_parallel(&d_dp, &g_dp);
    optim::Adam<double> d_opt(gan.discriminator().named_parameters()), g_opt(gan.generator().named_parameters());
    data::Loader loader(data, {.batch_size = 4, .rank = c.rank(), .world_size = c.size()});
    gan.train_step(loader.begin()->x.cast<double>(), d_opt, g_opt);  // no SampleWindowGuard
  });
  for (const auto& m : messages) CHECK(m.find("sample window") != std::string::npos);
}

}  // namespace distributed_data_parallel_test
