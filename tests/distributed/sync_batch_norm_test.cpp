// allreduce_sum as a differentiable op and SyncBatchNorm: gradient checks (first and second order)
// with a one-rank communicator, and agreement with BatchNorm on the whole batch when the batch is
// split over 2 and 3 thread ranks (even, uneven and empty slices), first and second order.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "genmod/distributed/allreduce_op.hpp"
#include "genmod/distributed/thread_communicator.hpp"
#include "genmod/nn/layers/norm.hpp"
#include "genmod/nn/layers/sync_batch_norm.hpp"
#include "support/gradcheck.hpp"

namespace distributed_sync_batch_norm_test {

using namespace genmod;
using genmod::test::rnd;
using V = Var<double>;
using Xs = std::span<const V>;

namespace {

/// A group of one rank: every collective leaves the buffers as they are. Counts the allreduce
/// calls, so that tests can see how many collectives an op makes.
class SoloCommunicator final : public distributed::Communicator {
 public:
  int rank() const noexcept override { return 0; }
  int size() const noexcept override { return 1; }
  void allreduce_sum(std::span<float>) override { ++allreduces; }
  void allreduce_sum(std::span<double>) override { ++allreduces; }
  distributed::RequestId start_allreduce_sum(std::span<float>) override { return next_request++; }
  distributed::RequestId start_allreduce_sum(std::span<double>) override { return next_request++; }
  void wait(distributed::RequestId request) override {
    if (request < 0 || request >= next_request)
      throw distributed::DistributedError("SoloCommunicator::wait: unknown request " + std::to_string(request));
  }
  void broadcast(std::span<float>, int) override {}
  void broadcast(std::span<double>, int) override {}
  void broadcast(std::span<std::byte>, int) override {}
  void allgather(std::span<const std::byte> mine, std::span<std::byte> all) override {
    if (all.size() != mine.size())
      throw ValueError("SoloCommunicator::allgather: expected room for " + std::to_string(mine.size()) +
                       " bytes, got " + std::to_string(all.size()));
    if (!mine.empty()) std::memcpy(all.data(), mine.data(), mine.size());
  }
  void barrier() override {}
  std::string describe() const override { return "solo rank 0 of 1"; }

  int allreduces = 0;  ///< allreduce_sum calls so far
  distributed::RequestId next_request = 0;
};

/// max |a - b| / max |b|: the error of a relative to the scale of the reference b.
double relative_error(const Tensor<double>& a, const Tensor<double>& b) {
  REQUIRE(a.shape() == b.shape());
  double diff = 0, scale = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

}  // namespace

TEST_CASE("allreduce_sum with one rank: the identity, one collective each way, exact gradients",
          "[distributed][gradcheck]") {
  SoloCommunicator solo;
  auto x = rnd({2, 3}, 1), y = rnd({2, 3}, 2);
  {
    Tape<double> tape;
    V a = tape.leaf(x);
    V s = distributed::allreduce_sum(a, solo);
    CHECK(solo.allreduces == 1);
    CHECK(relative_error(s.value(), x) == 0);
    CHECK(std::string(tape.producer_name(s)) == "allreduce_sum");
    CHECK(!s.value().shares_buffer_with(x));  // a copy: reducing in place must not touch x
    auto g = tape.grad(sum(mul(s, V(y))), {a});
    CHECK(solo.allreduces == 2);  // the backward is a collective too
    CHECK(relative_error(g[0].value(), y) == 0);
  }
  // Nonlinear around the op, so that the second-order check runs through the recorded backward.
  GENMOD_CHECK_GRADIENTS([&](Xs v) { return distributed::allreduce_sum(v[0], solo); }, x);
  GENMOD_CHECK_GRADIENTS(
      [&](Xs v) { return mul(distributed::allreduce_sum(mul(v[0], v[1]), solo), exp(scale(v[0], 0.5))); }, x, y);
  // Without a tape the collective still happens (every rank must take part) and nothing is recorded.
  const int before = solo.allreduces;
  V c = distributed::allreduce_sum(V(x), solo);
  CHECK(solo.allreduces == before + 1);
  CHECK(!c.requires_grad());
}

TEST_CASE("sync_batch_norm with one rank: gradients of first and second order", "[distributed][gradcheck]") {
  SoloCommunicator solo;
  // A channel mean far from 0 exercises the merge of the statistics, not just the centring.
  auto x2 = rnd({5, 3}, 3);
  auto x4 = rnd({3, 2, 2, 3}, 4);
  for (auto& v : x4) v += 2.0;
  auto gamma = rnd({3}, 5), beta = rnd({3}, 6), gamma2 = rnd({2}, 7), beta2 = rnd({2}, 8);
  auto bn = [&solo](const V& x, const V& g, const V& b) {
    Tensor<double> mean = zeros<double>({x.dim(1)}), var = ones<double>({x.dim(1)});
    return distributed::sync_batch_norm(x, g, b, mean, var, solo, {.eps = 1e-3});
  };
  GENMOD_CHECK_GRADIENTS([&](Xs v) { return bn(v[0], v[1], v[2]); }, x2, gamma, beta);
  GENMOD_CHECK_GRADIENTS([&](Xs v) { return bn(v[0], v[1], v[2]); }, x4, gamma2, beta2);
  GENMOD_CHECK_GRADIENTS([&](Xs v) { return bn(v[0], V(), V()); }, x4);
  // A nonlinear loss of the output, so that the second derivatives are not only those of the op.
  GENMOD_CHECK_GRADIENTS([&](Xs v) { return square(bn(v[0], v[1], v[2])); }, x4, gamma2, beta2);
}

TEST_CASE("SyncBatchNorm with one rank equals BatchNorm, makes one collective per pass and none in evaluation",
          "[distributed]") {
  SoloCommunicator solo;
  auto x = rnd({4, 3, 2, 2}, 9);
  for (auto& v : x) v = 3 * v + 1;
  nn::SyncBatchNorm<double> sync(3, &solo, {.momentum = 0.3});
  nn::BatchNorm2d<double> ref(3, {.momentum = 0.3});
  for (int i = 0; i < 3; ++i) {
    sync.weight.value()[i] = ref.weight.value()[i] = 0.5 + i;
    sync.bias.value()[i] = ref.bias.value()[i] = 0.1 * i - 0.2;
  }
  // Weighted, as a plain sum of squares of a normalized output barely depends on x.
  const V w(rnd(x.shape(), 11));
  Tensor<double> y, gx, y_ref, gx_ref;
  {
    Tape<double> tape;
    V xv = tape.leaf(x);
    y = sync(xv).value();
    CHECK(solo.allreduces == 1);
    tape.backward(sum(mul(square(sync(xv)), w)));
    CHECK(solo.allreduces == 3);  // the second forward's collective, and its backward's
    gx = tape.gradient(xv);       // (read while this tape is the current one)
  }
  {
    Tape<double> tape;
    V xv = tape.leaf(x);
    y_ref = ref(xv).value();
    tape.backward(sum(mul(square(ref(xv)), w)));
    gx_ref = tape.gradient(xv);
  }
  CHECK(relative_error(y, y_ref) < 1e-13);
  CHECK(relative_error(gx, gx_ref) < 1e-12);
  CHECK(relative_error(sync.weight.grad(), ref.weight.grad()) < 1e-12);
  CHECK(relative_error(sync.bias.grad(), ref.bias.grad()) < 1e-12);
  CHECK(relative_error(sync.running_mean, ref.running_mean) < 1e-14);
  CHECK(relative_error(sync.running_var, ref.running_var) < 1e-14);
  {
    // An input that needs no gradient (a network's first layer) makes constant statistics: the
    // backward then makes no collective (on every rank alike, the inputs being alike).
    Tape<double> tape;
    V out = sync(V(x));
    ref(V(x));
    CHECK(solo.allreduces == 4);
    tape.backward(sum(out));
    CHECK(solo.allreduces == 4);
  }
  CHECK(relative_error(sync.running_mean, ref.running_mean) < 1e-14);
  CHECK(relative_error(sync.running_var, ref.running_var) < 1e-14);
  // Parameter gradients of the layer, against finite differences.
  sync.weight.value()[1] = -1.5;
  test::expect_module_gradients(sync, [&] { return sync(V(x)); });
  // Evaluation: the running statistics, no collective.
  sync.eval();
  ref.eval();
  ref.running_mean.copy_from(sync.running_mean);
  ref.running_var.copy_from(sync.running_var);
  ref.weight.value().copy_from(sync.weight.value());
  const int before = solo.allreduces;
  auto e = sync(V(x)).value();
  CHECK(solo.allreduces == before);
  CHECK(relative_error(e, ref(V(x)).value()) == 0);
  // Without a communicator: BatchNorm itself.
  sync.train();
  sync.set_communicator(nullptr);
  CHECK(sync.communicator() == nullptr);
  ref.train();
  CHECK(relative_error(sync(V(x)).value(), ref(V(x)).value()) == 0);
  CHECK(solo.allreduces == before);
}

TEST_CASE("SyncBatchNorm: names, [N, C] inputs, and bad input", "[distributed]") {
  SoloCommunicator solo;
  nn::SyncBatchNorm<double> bn(2, &solo);
  auto params = bn.named_parameters();
  auto buffers = bn.named_buffers();
  REQUIRE(params.size() == 2);
  REQUIRE(buffers.size() == 2);
  CHECK(params[0].name == "weight");
  CHECK(params[1].name == "bias");
  CHECK(buffers[0].name == "running_mean");
  CHECK(buffers[1].name == "running_var");
  nn::SyncBatchNorm float_bn(3, &solo);  // float by default, as BatchNorm2d
  STATIC_REQUIRE(std::is_same_v<decltype(float_bn), nn::SyncBatchNorm<float>>);
  CHECK(float_bn.communicator() == &solo);
  nn::SyncBatchNorm<double> plain(2, &solo, {.affine = false});
  CHECK(plain.named_parameters().empty());
  // [N, C], with BatchNorm1d as the reference.
  nn::BatchNorm1d<double> ref(2);
  auto x = rnd({4, 2}, 10);
  CHECK(relative_error(bn(V(x)).value(), ref(V(x)).value()) < 1e-13);
  CHECK(relative_error(bn.running_var, ref.running_var) < 1e-14);
  // Bad input: shapes (ShapeError naming the layer and the input), too few values (ValueError).
  CHECK_THROWS_WITH(bn(V(zeros<double>({3, 5}))), Catch::Contains("SyncBatchNorm(2)") && Catch::Contains("[3, 5]"));
  CHECK_THROWS_AS(bn(V(zeros<double>({3, 2, 4}))), ShapeError);
  CHECK_THROWS_AS(bn(V(zeros<double>({6}))), ShapeError);
  CHECK_THROWS_AS(bn(V(zeros<double>({1, 2}))), ValueError);  // one value per channel over all ranks
  CHECK_THROWS_AS(nn::SyncBatchNorm<double>(0, &solo), ValueError);
  CHECK_THROWS_AS(nn::SyncBatchNorm<double>(2, &solo, {.momentum = 1.5}), ValueError);
  Tensor<double> mean = zeros<double>({2}), var = ones<double>({2});
  CHECK_THROWS_AS(distributed::sync_batch_norm(V(x), V(zeros<double>({3})), V(), mean, var, solo), ShapeError);
  Tensor<double> short_mean = zeros<double>({1});
  CHECK_THROWS_AS(distributed::sync_batch_norm(V(x), V(), V(), short_mean, var, solo), ShapeError);
}

namespace {

/// A batch split over ranks, with the weights of a per-row loss and of a second-order objective.
struct SplitProblem {
  Tensor<double> x;            // the whole batch [N, C] or [N, C, H, W]
  Tensor<double> a, b;         // loss: sum of a y + b y^2, a per-row (per-sample) loss summed
  Tensor<double> p;            // second order: H = sum(p dL/dx) + sum(q_gamma dL/dgamma) + ...
  Tensor<double> gamma, beta;  // the layer's affine parameters [C]
  Tensor<double> q_gamma, q_beta;
};

SplitProblem make_problem(const Shape& shape, std::uint64_t seed) {
  const Shape channel{shape[1]};
  SplitProblem pb{rnd(shape, seed, 1.5),  rnd(shape, seed + 1),   rnd(shape, seed + 2),   rnd(shape, seed + 3),
                  rnd(channel, seed + 4), rnd(channel, seed + 5), rnd(channel, seed + 6), rnd(channel, seed + 7)};
  for (auto& v : pb.x) v += 2.0;  // a channel mean away from 0
  for (auto& v : pb.gamma) v += 1.0;
  return pb;
}

/// What one rank (or the whole batch) computes.
struct Outcome {
  Tensor<double> y, running_mean, running_var;
  Tensor<double> gx, g_gamma, g_beta;  // first order: dL/dx (this rank's rows), dL/dgamma, dL/dbeta
  Tensor<double> hx, h_gamma, h_beta;  // second order: dH/dx (this rank's rows), dH/dgamma, dH/dbeta
};

void allreduce(distributed::Communicator& comm, Tensor<double>& t) {
  comm.allreduce_sum(std::span<double>(t.data(), static_cast<std::size_t>(t.numel())));
}

/// Rows [start, start + count) of the problem through `bn`. With a communicator (a rank's slice)
/// the parameter gradients are summed over the ranks, so that they are the whole batch's; the
/// objectives are split so that their sums over the ranks are the whole batch's:
///   L = sum_r L_r, L_r = sum over the rank's rows of a y + b y^2;
///   H = sum_r H_r, H_r = sum(p_r dL/dx_r) + (sum(q_gamma dL/dgamma) + sum(q_beta dL/dbeta)) / ranks,
/// dL/dgamma being the allreduce_sum op of the ranks' parts (so that H_r depends on every rank).
template <class Layer>
Outcome run_rows(Layer& bn, const SplitProblem& pb, std::int64_t start, std::int64_t count,
                 distributed::Communicator* comm) {
  bn.weight.value().copy_from(pb.gamma);
  bn.bias.value().copy_from(pb.beta);
  const Tensor<double> x = pb.x.rows(start, count).clone(), a = pb.a.rows(start, count).clone(),
                       b = pb.b.rows(start, count).clone(), p = pb.p.rows(start, count).clone();
  const auto loss = [&](const V& y) { return sum(add(mul(y, V(a)), mul(square(y), V(b)))); };
  Outcome o;
  {
    Tape<double> tape;
    V xv = tape.leaf(x);
    V y = bn(xv);
    o.y = y.value();
    bn.zero_grad();
    tape.backward(loss(y));
    o.gx = tape.gradient(xv);
    o.g_gamma = bn.weight.grad().clone();
    o.g_beta = bn.bias.grad().clone();
    if (comm) {
      allreduce(*comm, o.g_gamma);
      allreduce(*comm, o.g_beta);
    }
    o.running_mean = bn.running_mean.clone();
    o.running_var = bn.running_var.clone();
  }
  {
    Tape<double> tape;
    V xv = tape.leaf(x), w = bn.weight.var(), c = bn.bias.var();
    auto g = tape.grad(loss(bn(xv)), {xv, w, c}, {.create_graph = true});
    V g_gamma = g[1], g_beta = g[2];
    if (comm) {
      const double share = 1.0 / comm->size();
      g_gamma = scale(distributed::allreduce_sum(g_gamma, *comm), share);
      g_beta = scale(distributed::allreduce_sum(g_beta, *comm), share);
    }
    V H = sum(mul(g[0], V(p))) + sum(mul(g_gamma, V(pb.q_gamma))) + sum(mul(g_beta, V(pb.q_beta)));
    auto h = tape.grad(H, {xv, w, c});
    o.hx = h[0].value();
    o.h_gamma = h[1].value().clone();
    o.h_beta = h[2].value().clone();
    if (comm) {
      allreduce(*comm, o.h_gamma);
      allreduce(*comm, o.h_beta);
    }
  }
  return o;
}

/// The ranks' row blocks of one member, joined in rank order.
Tensor<double> joined(const std::vector<Outcome>& parts, Tensor<double> Outcome::*member, const Shape& whole) {
  Tensor<double> out(whole);
  std::int64_t at = 0;
  for (const Outcome& o : parts) {
    const Tensor<double>& t = o.*member;
    if (t.numel() > 0) std::memcpy(out.data() + at, t.data(), static_cast<std::size_t>(t.numel()) * sizeof(double));
    at += t.numel();
  }
  REQUIRE(at == whole.numel());
  return out;
}

/// Splits the batch as `sizes` over sizes.size() thread ranks running SyncBatchNorm and compares
/// with Reference (BatchNorm1d or BatchNorm2d) on the whole batch.
template <class Reference>
void expect_split_equals_whole(const Shape& shape, const std::vector<std::int64_t>& sizes) {
  INFO("batch " << shape.to_string() << " over " << sizes.size() << " ranks");
  REQUIRE(std::accumulate(sizes.begin(), sizes.end(), std::int64_t{0}) == shape[0]);
  const SplitProblem pb = make_problem(shape, 40 + sizes.size());
  const nn::BatchNormLayerOptions options{.momentum = 0.3, .eps = 1e-4};
  Reference ref(shape[1], options);
  const Outcome whole = run_rows(ref, pb, 0, shape[0], nullptr);

  const int ranks = static_cast<int>(sizes.size());
  std::vector<Outcome> parts(sizes.size());
  // Catch's assertions are not thread-safe: the ranks only compute, the checks come after.
  distributed::run_ranks(ranks, [&](distributed::Communicator& comm) {
    const int r = comm.rank();
    const std::int64_t start = std::accumulate(sizes.begin(), sizes.begin() + r, std::int64_t{0});
    nn::SyncBatchNorm<double> bn(shape[1], &comm, options);
    parts[static_cast<std::size_t>(r)] = run_rows(bn, pb, start, sizes[static_cast<std::size_t>(r)], &comm);
  });

  CHECK(relative_error(joined(parts, &Outcome::y, shape), whole.y) < 1e-12);
  CHECK(relative_error(joined(parts, &Outcome::gx, shape), whole.gx) < 1e-10);
  CHECK(relative_error(joined(parts, &Outcome::hx, shape), whole.hx) < 1e-10);
  for (const Outcome& o : parts) {
    CHECK(relative_error(o.running_mean, whole.running_mean) < 1e-12);
    CHECK(relative_error(o.running_var, whole.running_var) < 1e-12);
    CHECK(relative_error(o.g_gamma, whole.g_gamma) < 1e-10);
    CHECK(relative_error(o.g_beta, whole.g_beta) < 1e-10);
    CHECK(relative_error(o.h_gamma, whole.h_gamma) < 1e-10);
    CHECK(relative_error(o.h_beta, whole.h_beta) < 1e-10);
    // The statistics come from the exchanged rows only: the same bits on every rank.
    CHECK(relative_error(o.running_mean, parts[0].running_mean) == 0);
    CHECK(relative_error(o.running_var, parts[0].running_var) == 0);
  }
}

}  // namespace

TEST_CASE("SyncBatchNorm over 2 and 3 ranks equals BatchNorm on the whole batch, first and second order",
          "[distributed]") {
  using BN2 = nn::BatchNorm2d<double>;
  expect_split_equals_whole<BN2>({6, 3, 2, 3}, {3, 3});
  expect_split_equals_whole<BN2>({5, 3, 2, 3}, {3, 2});
  expect_split_equals_whole<BN2>({6, 3, 2, 3}, {2, 2, 2});
  expect_split_equals_whole<BN2>({5, 3, 2, 3}, {2, 2, 1});
  expect_split_equals_whole<BN2>({4, 2, 3, 2}, {3, 1, 0});  // an empty slice: count 0, output empty
  expect_split_equals_whole<BN2>({4, 2, 3, 2}, {0, 4});
  // [N, C]: a rank with one row has one value per channel (its M2 is 0).
  expect_split_equals_whole<nn::BatchNorm1d<double>>({7, 4}, {3, 3, 1});
  expect_split_equals_whole<nn::BatchNorm1d<double>>({5, 4}, {4, 1});
}

TEST_CASE("SyncBatchNorm over ranks: too few values in all, and ranks that disagree on the channels", "[distributed]") {
  // One value per channel over all ranks: every rank throws ValueError (they all see the same count).
  CHECK_THROWS_AS(distributed::run_ranks(2,
                                         [](distributed::Communicator& comm) {
                                           nn::SyncBatchNorm<double> bn(3, &comm);
                                           bn(V(zeros<double>({comm.rank() == 0 ? 1 : 0, 3})));
                                         }),
                  ValueError);
  // Channels that differ between ranks: the collective's lengths disagree.
  CHECK_THROWS_AS(distributed::run_ranks(2,
                                         [](distributed::Communicator& comm) {
                                           const std::int64_t c = 2 + comm.rank();
                                           nn::SyncBatchNorm<double> bn(c, &comm);
                                           bn(V(rnd({4, c}, 50)));
                                         }),
                  distributed::DistributedError);
}

TEST_CASE("SyncBatchNorm in float keeps the variance accurate when |mean| >> std", "[distributed]") {
  // x = 1000 + N(0, 1) in float, split over 2 ranks. E[x^2] - mean^2 would cancel about 6 digits;
  // the merge of centered partial sums keeps the variance to float's precision.
  const Shape shape{64, 2, 4, 4};
  Tensor<double> xd = rnd(shape, 60);
  for (auto& v : xd) v += 1000.0;
  const Tensor<float> xf = xd.cast<float>();
  // The reference, in double from the same float values: unbiased variance per channel.
  std::vector<double> var_ref(2);
  const std::int64_t hw = 16, n = 64 * hw;
  for (int c = 0; c < 2; ++c) {
    double s = 0, s2 = 0;
    for (std::int64_t i = 0; i < 64; ++i)
      for (std::int64_t k = 0; k < hw; ++k) s += xf[(i * 2 + c) * hw + k];
    const double mean = s / static_cast<double>(n);
    for (std::int64_t i = 0; i < 64; ++i)
      for (std::int64_t k = 0; k < hw; ++k) s2 += (xf[(i * 2 + c) * hw + k] - mean) * (xf[(i * 2 + c) * hw + k] - mean);
    var_ref[static_cast<std::size_t>(c)] = s2 / static_cast<double>(n - 1);
  }
  std::vector<Tensor<float>> running_var(2);
  distributed::run_ranks(2, [&](distributed::Communicator& comm) {
    nn::SyncBatchNorm<float> bn(2, &comm, {.momentum = 1.0});  // running_var = the batch's unbiased variance
    bn(Var<float>(xf.rows(32 * comm.rank(), 32).clone()));
    running_var[static_cast<std::size_t>(comm.rank())] = bn.running_var.clone();
  });
  for (int c = 0; c < 2; ++c) {
    INFO("channel " << c << ": variance " << running_var[0][c] << ", reference "
                    << var_ref[static_cast<std::size_t>(c)]);
    CHECK(std::abs(running_var[0][c] - var_ref[static_cast<std::size_t>(c)]) <
          1e-4 * var_ref[static_cast<std::size_t>(c)]);
    CHECK(running_var[1][c] == running_var[0][c]);
  }
}

}  // namespace distributed_sync_batch_norm_test
