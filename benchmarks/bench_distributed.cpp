// Data-parallel training steps (distributed::DataParallel over an MpiCommunicator) and the
// communicator's allreduce bandwidth, as JSON lines (rank 0 prints). Started by the MPI launcher:
//
//   mpiexec -n N bench_distributed --workload mlp_vae|conv_vae [--batch B] [--steps S] [--warmup W]
//                                  [--bucket-mib M] [--no-overlap] [--threads T] [--data DIR]
//                                  [--random-data] [--comm mpi|none]
//   mpiexec -n N bench_distributed --allreduce [--sizes 4KiB,64KiB,1MiB,4MiB,25MiB] [--reps R] [--warmup W]
//
// Training steps. The models and the batch are bench_models' mlp_vae and conv_vae (the classes are
// repeated below: bench_models.cpp is a program, not a header), Adam 1e-3, real Fashion-MNIST
// batches (sequential minibatches of a fixed random permutation, as bench_models) or, with
// --random-data, random pixels. --batch is the GLOBAL batch: rank r trains on rows
// [r B / N, (r + 1) B / N) of each global batch, its noise drawn through a SampleWindow (the rows a
// single process would draw). Every rank holds two replicas of the model, trained in alternating
// steps (the order swapped every step, so drifts of the machine's load hit both alike):
//
//   data_parallel   DataParallel over the MPI communicator: forward, dp.backward (backward pass +
//                   gradient allreduce in buckets), Adam.
//   compute_only    the same local batch without any communicator: forward, tape.backward, Adam
//                   (the replicas of different ranks drift apart; the timing does not care).
//
// Every step starts after a barrier (outside the timer), so the ranks start it together; times
// are rank 0's. The gradient synchronisation is estimated, adding nothing to the library, as
//
//   sync_s = median(dp.backward) - median(tape.backward of compute_only)
//
// i.e. what DataParallel adds to the backward pass: packing and unpacking the buckets, the
// allreduces not hidden behind the backward pass, and waiting for the slower rank. Measured
// directly through a timing wrapper around the communicator: comm_wait_median_s, the time blocked
// in Communicator::wait (the allreduces' unhidden part), and comm_start_median_s, the time inside
// start_allreduce_sum. buckets_started_early is DataParallel's count of buckets started during
// the backward pass. With --comm none the program does not touch MPI at all (run it without
// mpiexec): only the compute_only replica, the one-process baseline with no communicator overhead.
//
// Allreduce: MpiCommunicator::allreduce_sum on float buffers of each size, each repetition after a
// barrier, alternating with a plain blocking MPI_Allreduce on the same MPI communicator (MPI's own
// speed, without the communicator's non-blocking start and polling) and with MPI_Iallreduce +
// MPI_Wait (the communicator's MPI call without its polling). Algorithm bandwidth = bytes /
// t, bus bandwidth = 2 (N - 1) / N * bytes / t (what each rank sends in a ring allreduce, per second).
// Then an overlap probe per size: start_allreduce_sum, compute without MPI calls for twice the
// allreduce's median time (at least 1 ms), wait(); the time left in wait() is what computing did not hide
// (hidden_fraction = 1 - wait / allreduce alone). Open MPI moves a non-blocking collective forward
// only inside MPI calls, so expect little hidden beyond what the start itself sends.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "genmod/distributed/mpi_communicator.hpp"
#include "genmod/genmod.hpp"
#include "reference_vaes.hpp"

using namespace genmod;

namespace {

using F = float;
using V = Var<F>;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size();
  return m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}

double minimum(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}

// ----------------------------------------------------------------------------------- the models
// bench_models' mlp_vae and conv_vae (reference_vaes.hpp).
using bench::ConvVae;
using bench::MlpVae;

/// A model with its optimizer and noise generator (bench_models' settings).
template <class Model>
struct Replica {
  Model model;
  optim::Adam<F> opt{model.named_parameters(), {.lr = 1e-3}};
  Generator noise{1234};
};

// ----------------------------------------------------------------------------------- timed communicator
/// Forwards every call to another Communicator, adding up the time spent inside
/// start_allreduce_sum and wait (the parts of a gradient synchronisation that are MPI's).
class TimedCommunicator final : public distributed::Communicator {
 public:
  /// Wraps `inner` (which must outlive this object).
  explicit TimedCommunicator(distributed::Communicator& inner) : inner_(inner) {}

  /// Seconds inside start_allreduce_sum since the last reset().
  double start_seconds() const noexcept { return start_s_; }
  /// Seconds inside wait since the last reset().
  double wait_seconds() const noexcept { return wait_s_; }
  /// Zeroes both clocks.
  void reset() noexcept { start_s_ = wait_s_ = 0; }

  int rank() const noexcept override { return inner_.rank(); }
  int size() const noexcept override { return inner_.size(); }
  void allreduce_sum(std::span<float> buf) override { inner_.allreduce_sum(buf); }
  void allreduce_sum(std::span<double> buf) override { inner_.allreduce_sum(buf); }
  distributed::RequestId start_allreduce_sum(std::span<float> buf) override { return timed_start(buf); }
  distributed::RequestId start_allreduce_sum(std::span<double> buf) override { return timed_start(buf); }
  void wait(distributed::RequestId request) override {
    const auto t0 = Clock::now();
    inner_.wait(request);
    wait_s_ += seconds_since(t0);
  }
  void broadcast(std::span<float> buf, int root) override { inner_.broadcast(buf, root); }
  void broadcast(std::span<double> buf, int root) override { inner_.broadcast(buf, root); }
  void broadcast(std::span<std::byte> buf, int root) override { inner_.broadcast(buf, root); }
  void allgather(std::span<const std::byte> mine, std::span<std::byte> all) override { inner_.allgather(mine, all); }
  void barrier() override { inner_.barrier(); }
  std::string describe() const override { return inner_.describe(); }

 private:
  template <class T>
  distributed::RequestId timed_start(std::span<T> buf) {
    const auto t0 = Clock::now();
    const distributed::RequestId id = inner_.start_allreduce_sum(buf);
    start_s_ += seconds_since(t0);
    return id;
  }

  distributed::Communicator& inner_;
  double start_s_ = 0, wait_s_ = 0;
};

// ----------------------------------------------------------------------------------- options
struct Options {
  std::string workload;  // mlp_vae or conv_vae
  bool allreduce = false;
  std::int64_t batch = 128;
  int steps = 30;
  int warmup = 5;
  double bucket_mib = 25;
  bool overlap = true;
  int threads = 1;
  std::string data_dir;
  bool random_data = false;
  bool use_mpi = true;  // --comm mpi (default) or none
  std::vector<std::int64_t> sizes{4 << 10, 64 << 10, 1 << 20, 4 << 20, 25 << 20};
  int reps = 20;
};

void usage() {
  std::printf(
      "usage: mpiexec -n N bench_distributed --workload mlp_vae|conv_vae [--batch B] [--steps S] [--warmup W]\n"
      "                                      [--bucket-mib M] [--no-overlap] [--threads T] [--data DIR]\n"
      "                                      [--random-data] [--comm mpi|none]\n"
      "       mpiexec -n N bench_distributed --allreduce [--sizes 4KiB,64KiB,1MiB,4MiB,25MiB] [--reps R]\n"
      "                                      [--warmup W]\n"
      "Data-parallel training steps and allreduce bandwidth over MPI, as JSON lines (rank 0 prints).\n"
      "  --workload NAME  bench_models' mlp_vae or conv_vae, trained with DataParallel + Adam\n"
      "  --batch B        the global batch, split over the ranks (default 128, bench_models' batch)\n"
      "  --steps S        timed steps (default 30); --warmup W: untimed steps first (default 5)\n"
      "  --bucket-mib M   DataParallel's bucket size in MiB (default 25)\n"
      "  --no-overlap     start the allreduces after the backward pass, not during it\n"
      "  --threads T      OpenMP threads per rank (default 1)\n"
      "  --data DIR       Fashion-MNIST IDX directory (default: $GENMOD_DATA_DIR or the Debian path)\n"
      "  --random-data    random pixels instead of Fashion-MNIST\n"
      "  --comm none      no MPI at all (one process, started without mpiexec): the compute_only path\n"
      "  --allreduce      time MpiCommunicator::allreduce_sum (float) and MPI_Allreduce per size\n"
      "  --sizes LIST     buffer sizes in bytes, suffixes KiB and MiB (default 4KiB,64KiB,1MiB,4MiB,25MiB)\n"
      "  --reps R         timed repetitions per size (default 20; --warmup: untimed ones, default 5)\n");
}

std::int64_t parse_size(const std::string& s) {
  std::size_t used = 0;
  const long long n = std::stoll(s, &used);
  const std::string unit = s.substr(used);
  std::int64_t scale = 1;
  if (unit == "KiB")
    scale = std::int64_t{1} << 10;
  else if (unit == "MiB")
    scale = std::int64_t{1} << 20;
  else if (!unit.empty() && unit != "B")
    throw ValueError("--sizes: expected a number of bytes with an optional KiB or MiB suffix, got " + s);
  if (n * scale < 4) throw ValueError("--sizes: expected at least 4 bytes (one float), got " + s);
  return n * scale;
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
    } else if (a == "--workload") {
      o.workload = value();
    } else if (a == "--allreduce") {
      o.allreduce = true;
    } else if (a == "--batch") {
      o.batch = std::stoll(value());
    } else if (a == "--steps") {
      o.steps = std::stoi(value());
    } else if (a == "--warmup") {
      o.warmup = std::stoi(value());
    } else if (a == "--bucket-mib") {
      o.bucket_mib = std::stod(value());
    } else if (a == "--no-overlap") {
      o.overlap = false;
    } else if (a == "--threads") {
      o.threads = std::stoi(value());
    } else if (a == "--data") {
      o.data_dir = value();
    } else if (a == "--random-data") {
      o.random_data = true;
    } else if (a == "--comm") {
      const std::string c = value();
      if (c != "mpi" && c != "none") throw ValueError("--comm: expected mpi or none, got " + c);
      o.use_mpi = c == "mpi";
    } else if (a == "--sizes") {
      o.sizes.clear();
      const std::string list = value();
      for (std::size_t at = 0; at <= list.size();) {
        const std::size_t comma = std::min(list.find(',', at), list.size());
        o.sizes.push_back(parse_size(list.substr(at, comma - at)));
        at = comma + 1;
      }
    } else if (a == "--reps") {
      o.reps = std::stoi(value());
    } else {
      throw ValueError("unknown option " + a + " (see --help)");
    }
  }
  if (o.allreduce == !o.workload.empty()) throw ValueError("expected either --workload NAME or --allreduce");
  if (!o.workload.empty() && o.workload != "mlp_vae" && o.workload != "conv_vae")
    throw ValueError("--workload: expected mlp_vae or conv_vae, got " + o.workload);
  if (o.steps < 1 || o.warmup < 0 || o.threads < 1 || o.batch < 1 || o.reps < 1 || !(o.bucket_mib > 0))
    throw ValueError(
        "expected --steps >= 1, --warmup >= 0, --threads >= 1, --batch >= 1, --reps >= 1, --bucket-mib > 0");
  if (o.allreduce && !o.use_mpi) throw ValueError("--allreduce needs MPI (not --comm none)");
  return o;
}

// The number of processes the launcher started (environment of Open MPI, MPICH / PMI), 1 if none.
int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* v = std::getenv(name); v && *v) return std::atoi(v);
  return 1;
}

// ----------------------------------------------------------------------------------- training steps
/// The training images as uint8 [N, 28, 28]: Fashion-MNIST, or random pixels.
Tensor<std::uint8_t> training_images(const Options& o) {
  if (!o.random_data) return data::FashionMNIST::load(data::Split::train, o.data_dir).images;
  Tensor<std::uint8_t> images(Shape{60000, 28, 28});
  Generator g(7);
  for (std::int64_t i = 0; i < images.numel(); ++i) images.data()[i] = static_cast<std::uint8_t>(g.next_u64() & 255);
  return images;
}

// Per-rank per-step timings of one replica.
struct Timings {
  std::vector<double> step, backward, wait, start;
};

template <class Model>
void run_steps(const Options& o, distributed::MpiCommunicator* mpi) {
  const int ranks = mpi ? mpi->size() : 1, rank = mpi ? mpi->rank() : 0;
  if (o.batch < ranks)
    throw ValueError("--batch " + std::to_string(o.batch) + " is smaller than the " + std::to_string(ranks) + " ranks");
  set_num_threads(o.threads);
  const Tensor<std::uint8_t> images = training_images(o);
  const std::int64_t n = images.dim(0), b = o.batch;
  // A fixed random permutation of the training set (Fisher-Yates with a genmod Generator, as bench_models).
  Generator shuffle(0);
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<std::int64_t>(i);
  for (std::size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[shuffle.uniform_int(i)]);
  // This rank's rows of every global batch: [first, first + count).
  const std::int64_t first = b * rank / ranks, count = b * (rank + 1) / ranks - first;
  const SampleWindow window{.first = first, .count = count, .total = b};

  // Both replicas start from bench_models' initialization (manual_seed(0) before each).
  manual_seed(0);
  auto plain = std::make_unique<Replica<Model>>();
  std::unique_ptr<Replica<Model>> replicated;
  std::unique_ptr<TimedCommunicator> timed;
  std::unique_ptr<distributed::DataParallel<F>> dp;
  if (mpi) {
    manual_seed(0);
    replicated = std::make_unique<Replica<Model>>();
    timed = std::make_unique<TimedCommunicator>(*mpi);
    dp = std::make_unique<distributed::DataParallel<F>>(
        replicated->model, *timed,
        distributed::DataParallelOptions{.bucket_bytes = static_cast<std::int64_t>(o.bucket_mib * (1 << 20)),
                                         .check_every = 0,
                                         .overlap = o.overlap});
  }
  std::int64_t gradient_bytes = 0;
  for (const auto& p : plain->model.named_parameters())
    if (p.parameter.requires_grad()) gradient_bytes += p.parameter.numel() * static_cast<std::int64_t>(sizeof(F));

  Tensor<std::uint8_t> u8(Shape{count, 28, 28});
  Timings dp_t, plain_t;
  float dp_loss = 0, plain_loss = 0;
  std::size_t early = 0;

  // One step of the DataParallel replica: forward on this rank's rows, dp.backward, Adam.
  auto dp_step = [&](bool record) {
    mpi->barrier();
    timed->reset();
    const auto t0 = Clock::now();
    Tape<F> tape;
    V x(data::scale_pixels(u8, data::PixelRange::unit).reshape(Model::input_shape(count)));
    replicated->noise.set_sample_window(window);
    V loss = replicated->model.loss(x, replicated->noise);
    replicated->noise.set_sample_window({});
    replicated->opt.zero_grad();
    const auto tb = Clock::now();
    dp->backward(tape, loss, count, b);
    const double backward_s = seconds_since(tb);
    replicated->opt.step();
    const double step_s = seconds_since(t0);
    dp_loss = loss.item();
    early = dp->buckets_started_early();
    if (!record) return;
    dp_t.step.push_back(step_s);
    dp_t.backward.push_back(backward_s);
    dp_t.wait.push_back(timed->wait_seconds());
    dp_t.start.push_back(timed->start_seconds());
  };
  // The same local step without a communicator.
  auto plain_step = [&](bool record) {
    if (mpi) mpi->barrier();
    const auto t0 = Clock::now();
    Tape<F> tape;
    V x(data::scale_pixels(u8, data::PixelRange::unit).reshape(Model::input_shape(count)));
    plain->noise.set_sample_window(window);
    V loss = plain->model.loss(x, plain->noise);
    plain->noise.set_sample_window({});
    plain->opt.zero_grad();
    const auto tb = Clock::now();
    tape.backward(loss);
    const double backward_s = seconds_since(tb);
    plain->opt.step();
    const double step_s = seconds_since(t0);
    plain_loss = loss.item();
    if (!record) return;
    plain_t.step.push_back(step_s);
    plain_t.backward.push_back(backward_s);
  };

  for (int i = 0; i < o.warmup + o.steps; ++i) {
    // The global batch as bench_models (perm[(i b) % (N - b):][:b]); this rank's rows of it.
    const std::int64_t start = (static_cast<std::int64_t>(i) * b) % (n - b);
    for (std::int64_t k = 0; k < count; ++k)
      std::memcpy(u8.data() + k * 784, images.data() + perm[static_cast<std::size_t>(start + first + k)] * 784, 784);
    const bool record = i >= o.warmup;
    if (!mpi) {
      plain_step(record);
    } else if (i % 2 == 0) {
      dp_step(record);
      plain_step(record);
    } else {
      plain_step(record);
      dp_step(record);
    }
  }

  // Each rank's median compute_only step, to name the slowest (a data-parallel step waits for it).
  double slowest_plain = median(plain_t.step);
  if (mpi) {
    std::vector<double> all(static_cast<std::size_t>(ranks));
    mpi->allgather(std::as_bytes(std::span<const double>(&slowest_plain, 1)),
                   std::as_writable_bytes(std::span<double>(all)));
    slowest_plain = *std::max_element(all.begin(), all.end());
  }
  if (rank != 0) return;
  const std::string common =
      "\"workload\": \"" + o.workload + "\", \"ranks\": " + std::to_string(ranks) +
      ", \"threads\": " + std::to_string(o.threads) + ", \"global_batch\": " + std::to_string(b) +
      ", \"local_batch\": " + std::to_string(count) + ", \"steps\": " + std::to_string(o.steps) +
      ", \"warmup\": " + std::to_string(o.warmup) + ", \"data\": \"" + (o.random_data ? "random" : "fashion-mnist") +
      "\"" + ", \"gradient_bytes\": " + std::to_string(gradient_bytes);
  const double plain_median = median(plain_t.step);
  std::printf(
      "{\"bench\": \"dp_step\", \"path\": \"compute_only\", %s, \"comm\": \"%s\", \"median_s\": %.6g, \"min_s\": "
      "%.6g, \"steps_per_s\": %.6g, \"samples_per_s\": %.6g, \"backward_median_s\": %.6g, "
      "\"median_s_slowest_rank\": %.6g, \"last_loss\": %.6g}\n",
      common.c_str(), mpi ? "none (MPI running)" : "none (no MPI)", plain_median, minimum(plain_t.step),
      1 / plain_median, static_cast<double>(b) / plain_median, median(plain_t.backward), slowest_plain,
      static_cast<double>(plain_loss));
  if (mpi) {
    const double dp_median = median(dp_t.step);
    std::printf(
        "{\"bench\": \"dp_step\", \"path\": \"data_parallel\", %s, \"comm\": \"mpi\", \"overlap\": %s, "
        "\"bucket_mib\": %.6g, \"buckets\": %zu, \"buckets_started_early\": %zu, \"median_s\": %.6g, \"min_s\": "
        "%.6g, \"steps_per_s\": %.6g, \"samples_per_s\": %.6g, \"backward_median_s\": %.6g, \"sync_s\": %.6g, "
        "\"step_minus_compute_only_s\": %.6g, \"comm_wait_median_s\": %.6g, \"comm_start_median_s\": %.6g, "
        "\"last_loss\": %.6g}\n",
        common.c_str(), o.overlap ? "true" : "false", o.bucket_mib, dp->num_buckets(), early, dp_median,
        minimum(dp_t.step), 1 / dp_median, static_cast<double>(b) / dp_median, median(dp_t.backward),
        median(dp_t.backward) - median(plain_t.backward), dp_median - plain_median, median(dp_t.wait),
        median(dp_t.start), static_cast<double>(dp_loss));
  }
  std::fflush(stdout);
}

// ----------------------------------------------------------------------------------- allreduce
// Arithmetic on this thread for `seconds`, without any MPI call (a stand-in for a backward pass).
void busy_compute(double seconds) {
  const auto t0 = Clock::now();
  volatile double sink = 0;
  double x = 1;
  while (seconds_since(t0) < seconds)
    for (int k = 0; k < 1000; ++k) x = x * 1.0000001 + 1e-9;
  sink = x;
  (void)sink;
}

void run_allreduce(const Options& o, distributed::MpiCommunicator& comm) {
  const int ranks = comm.size();
  const double bus_factor = 2.0 * (ranks - 1) / ranks;
  for (const std::int64_t bytes : o.sizes) {
    std::vector<F> buf(static_cast<std::size_t>(bytes) / sizeof(F));
    const double used = static_cast<double>(buf.size() * sizeof(F));
    // Per implementation: MpiCommunicator::allreduce_sum, MPI_Allreduce, MPI_Iallreduce + MPI_Wait.
    std::vector<double> times[3];
    const std::vector<double>& ours = times[0];
    bool correct = true;
    for (int i = 0; i < o.warmup + o.reps; ++i) {
      for (int which = 0; which < 3; ++which) {
        // Every element is rank + 1 before and (1 + 2 + ... + N) after.
        std::fill(buf.begin(), buf.end(), static_cast<F>(comm.rank() + 1));
        comm.barrier();
        const auto t0 = Clock::now();
        if (which == 0) {
          comm.allreduce_sum(std::span<F>(buf));
        } else if (which == 1) {
          const int code = MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(buf.size()), MPI_FLOAT, MPI_SUM,
                                         comm.native_handle());
          if (code != MPI_SUCCESS) throw distributed::DistributedError("MPI_Allreduce failed");
        } else {
          // The communicator's MPI call, completed by MPI's own (busy) wait instead of its polling.
          MPI_Request request = MPI_REQUEST_NULL;
          int code = MPI_Iallreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(buf.size()), MPI_FLOAT, MPI_SUM,
                                    comm.native_handle(), &request);
          if (code == MPI_SUCCESS) code = MPI_Wait(&request, MPI_STATUS_IGNORE);
          if (code != MPI_SUCCESS) throw distributed::DistributedError("MPI_Iallreduce failed");
        }
        const double t = seconds_since(t0);
        const F expected = static_cast<F>(ranks * (ranks + 1) / 2);
        correct = correct && buf.front() == expected && buf.back() == expected;
        if (i >= o.warmup) times[which].push_back(t);
      }
    }
    // Overlap probe: start the allreduce, compute (no MPI call) for twice rank 0's median
    // allreduce time, then wait. What is left to wait for is the part MPI did not move forward
    // while this rank computed: the most a backward pass can hide behind its allreduces.
    double compute_s = std::max(1e-3, 2 * median(ours));
    comm.broadcast(std::span<double>(&compute_s, 1), 0);
    std::vector<double> left;
    for (int i = 0; i < o.warmup + o.reps; ++i) {
      std::fill(buf.begin(), buf.end(), static_cast<F>(comm.rank() + 1));
      comm.barrier();
      const distributed::RequestId request = comm.start_allreduce_sum(std::span<F>(buf));
      busy_compute(compute_s);
      const auto t0 = Clock::now();
      comm.wait(request);
      const double t = seconds_since(t0);
      const F expected = static_cast<F>(ranks * (ranks + 1) / 2);
      correct = correct && buf.front() == expected && buf.back() == expected;
      if (i >= o.warmup) left.push_back(t);
    }
    if (comm.rank() != 0) continue;
    std::printf(
        "{\"bench\": \"allreduce_overlap\", \"impl\": \"start, compute, wait\", \"ranks\": %d, \"bytes\": %.0f, "
        "\"reps\": %d, \"compute_s\": %.6g, \"wait_after_compute_median_s\": %.6g, \"wait_after_compute_min_s\": "
        "%.6g, \"alone_median_s\": %.6g, \"hidden_fraction\": %.4g, \"correct\": %s}\n",
        ranks, used, o.reps, compute_s, median(left), minimum(left), median(ours), 1 - median(left) / median(ours),
        correct ? "true" : "false");
    const char* const names[3] = {"MpiCommunicator::allreduce_sum", "MPI_Allreduce", "MPI_Iallreduce + MPI_Wait"};
    for (int which = 0; which < 3; ++which) {
      const std::vector<double>& t = times[which];
      const double med = median(t);
      std::printf(
          "{\"bench\": \"allreduce\", \"impl\": \"%s\", \"ranks\": %d, \"bytes\": %.0f, \"reps\": %d, \"median_s\": "
          "%.6g, \"min_s\": %.6g, \"algbw_gbytes_per_s\": %.6g, \"busbw_gbytes_per_s\": %.6g, \"correct\": %s}\n",
          names[which], ranks, used, o.reps, med, minimum(t), used / med / 1e9, bus_factor * used / med / 1e9,
          correct ? "true" : "false");
    }
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  if (!o.use_mpi) {
    if (launcher_world_size() > 1)
      throw ValueError("--comm none runs one process without MPI; this one was started as one of " +
                       std::to_string(launcher_world_size()) + " ranks");
    if (o.workload == "mlp_vae")
      run_steps<MlpVae>(o, nullptr);
    else
      run_steps<ConvVae>(o, nullptr);
    return 0;
  }
  distributed::MpiSession session(&argc, &argv);
  distributed::MpiCommunicator comm;
  try {
    if (o.allreduce)
      run_allreduce(o, comm);
    else if (o.workload == "mlp_vae")
      run_steps<MlpVae>(o, &comm);
    else
      run_steps<ConvVae>(o, &comm);
  } catch (const std::exception& e) {
    if (comm.size() > 1) distributed::abort_all(std::string("bench_distributed: ") + e.what());
    throw;
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_distributed: %s\n", e.what());
  return 1;
}
