// What every optimizer shares: construction (named, unnamed, CTAD), frozen parameters, state by
// name and its round trip, hyperparameter validation, no allocation in steady state, and that each
// optimizer minimizes a convex problem through the tape.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"

namespace optim_optimizer_test {

using namespace genmod;
using Catch::Contains;

namespace {

// Fills every gradient with a deterministic pattern depending on the step.
void fake_gradients(const std::vector<nn::NamedParameter<float>>& params, int step) {
  for (std::size_t k = 0; k < params.size(); ++k) {
    Tensor<float> g = params[k].parameter.grad();
    for (std::int64_t i = 0; i < g.numel(); ++i)
      g[i] = std::sin(0.37f * static_cast<float>(i) + static_cast<float>(step) + static_cast<float>(k) + 0.5f);
  }
}

}  // namespace

TEST_CASE("Optimizers are built from named or unnamed parameters with designated options", "[optim]") {
  manual_seed(0);
  nn::Sequential net{nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2)};
  optim::Adam a{net.named_parameters(), {.lr = 1e-3}};
  optim::Adam b{net.parameters(), {.lr = 1e-3, .betas = {0.9, 0.999}}};
  optim::AdamW c{net.parameters()};
  optim::SGD d{net.named_parameters(), {.lr = 0.1, .momentum = 0.9, .nesterov = true}};
  optim::RMSprop e{net.parameters(), {.centered = true}};
  static_assert(std::is_same_v<decltype(a), optim::Adam<float>>);
  static_assert(std::is_same_v<decltype(e), optim::RMSprop<float>>);
  CHECK(a.parameters()[2].name == "2.weight");
  CHECK(b.parameters()[2].name == "2");
  CHECK(a.lr() == 1e-3);
  CHECK(c.options().weight_decay == 1e-2);
  CHECK(e.lr() == 1e-2);
  CHECK(d.name() == "SGD");
  CHECK(a.step_count() == 0);

  // The optimizer writes through to the module's weights.
  fake_gradients(a.parameters(), 0);
  const float before = net.get<0>().weight.value()[0];
  a.step();
  CHECK(net.get<0>().weight.value()[0] != before);
  CHECK(a.step_count() == 1);
  a.zero_grad();
  for (auto& p : net.parameters())
    for (float x : p.grad()) REQUIRE(x == 0.f);
}

TEST_CASE("Frozen parameters are skipped and their state does not advance", "[optim]") {
  Parameter<float> w(full<float>(Shape{3}, 1.f)), f(full<float>(Shape{3}, 1.f), false);
  std::vector<nn::NamedParameter<float>> params{{"w", w}, {"f", f}};
  optim::Adam opt{params, {.lr = 0.1}};
  fake_gradients(params, 1);
  opt.step();
  opt.step();
  CHECK(w.value()[0] != 1.f);
  for (float x : f.value()) CHECK(x == 1.f);
  auto st = opt.state();
  CHECK(st[0].first == "step");
  CHECK(st[0].second.item() == 2.f);
  CHECK(st[1].first == "w.step");
  CHECK(st[1].second.item() == 2.f);
  CHECK(st[4].first == "f.step");
  CHECK(st[4].second.item() == 0.f);
  for (float x : st[5].second) CHECK(x == 0.f);  // f.exp_avg untouched
}

TEST_CASE("Optimizer state is reachable by name, shares buffers and round-trips", "[optim][state]") {
  manual_seed(1);
  nn::Sequential net{nn::Linear(5, 4), nn::Tanh(), nn::Linear(4, 1)};
  optim::Adam opt{net.named_parameters(), {.lr = 1e-2, .weight_decay = 1e-3, .amsgrad = true}};
  for (int t = 0; t < 3; ++t) {
    fake_gradients(opt.parameters(), t);
    opt.step();
  }
  auto st = opt.state();
  REQUIRE(st.size() == 1 + 4 * 4);
  CHECK(st[0].first == "step");
  CHECK(st[1].first == "0.weight.step");
  CHECK(st[2].first == "0.weight.exp_avg");
  CHECK(st[3].first == "0.weight.exp_avg_sq");
  CHECK(st[4].first == "0.weight.max_exp_avg_sq");
  CHECK(st[2].second.shape() == (Shape{4, 5}));
  CHECK(st[0].second.item() == 3.f);

  // Handles: a second state() sees the same buffers.
  CHECK(opt.state()[2].second.shares_buffer_with(st[2].second));

  // A deep copy (what a checkpoint stores) loaded into a fresh optimizer over a copy of the net
  // makes both continue identically.
  optim::StateDict<float> saved;
  for (auto& [k, v] : st) saved.emplace_back(k, v.clone());
  nn::Sequential twin{nn::Linear(5, 4), nn::Tanh(), nn::Linear(4, 1)};
  auto src = net.named_parameters(), dst = twin.named_parameters();
  for (std::size_t i = 0; i < src.size(); ++i) dst[i].parameter.value().copy_from(src[i].parameter.value());
  optim::Adam opt2{twin.named_parameters(), {.lr = 1e-2, .weight_decay = 1e-3, .amsgrad = true}};
  opt2.load_state(saved);
  CHECK(opt2.step_count() == 3);
  CHECK_FALSE(opt2.state()[2].second.shares_buffer_with(saved[2].second));  // copied, not rebound
  fake_gradients(opt.parameters(), 7);
  fake_gradients(opt2.parameters(), 7);
  opt.step();
  opt2.step();
  for (std::size_t i = 0; i < src.size(); ++i)
    CHECK(allclose(src[i].parameter.value(), dst[i].parameter.value(), 0.0, 0.0));
}

TEST_CASE("load_state names the missing, mismatched or unexpected entry", "[optim][state]") {
  Parameter<float> w(zeros<float>(Shape{2, 3}));
  std::vector<nn::NamedParameter<float>> params{{"enc.weight", w}};
  optim::SGD opt{params, {.lr = 0.1, .momentum = 0.9}};
  auto good = opt.state();  // step, enc.weight.step, enc.weight.momentum_buffer

  auto missing = good;
  missing.pop_back();
  CHECK_THROWS_WITH(opt.load_state(missing),
                    Contains("SGD") && Contains("missing entry 'enc.weight.momentum_buffer'") && Contains("[2, 3]"));

  auto wrong = good;
  wrong[2].second = zeros<float>(Shape{3, 2});
  CHECK_THROWS_AS(opt.load_state(wrong), ShapeError);
  CHECK_THROWS_WITH(opt.load_state(wrong),
                    Contains("'enc.weight.momentum_buffer'") && Contains("[3, 2]") && Contains("[2, 3]"));

  auto extra = good;
  extra.emplace_back("enc.weight.exp_avg", zeros<float>(Shape{2, 3}));
  CHECK_THROWS_WITH(opt.load_state(extra), Contains("unexpected entry 'enc.weight.exp_avg'"));
  CHECK_NOTHROW(opt.load_state(extra, /*strict=*/false));

  auto bad_step = good;
  bad_step[0].second = scalar<float>(-1.f);
  CHECK_THROWS_WITH(opt.load_state(bad_step), Contains("'step'") && Contains("whole number"));

  // A failed load changes nothing.
  opt.state()[2].second.fill(5.f);
  wrong[2].second.fill(0.f);
  CHECK_THROWS(opt.load_state(wrong));
  CHECK(opt.state()[2].second[0] == 5.f);
}

TEST_CASE("Bad hyperparameters throw ValueError naming optimizer, option, range and value", "[optim][validation]") {
  Parameter<float> w(zeros<float>(Shape{2}));
  std::vector params{w};
  CHECK_THROWS_AS((optim::Adam{params, {.lr = -1}}), ValueError);
  CHECK_THROWS_WITH((optim::Adam{params, {.lr = 0}}), Contains("Adam") && Contains("'lr'") && Contains("> 0") && Contains("got 0"));
  CHECK_THROWS_WITH((optim::Adam{params, {.betas = {1.5, 0.999}}}),
                    Contains("Adam: expected option 'betas.beta1' in [0, 1), got 1.5"));
  CHECK_THROWS_WITH((optim::AdamW{params, {.betas = {0.9, 1.0}}}), Contains("AdamW") && Contains("betas.beta2"));
  CHECK_THROWS_WITH((optim::AdamW{params, {.eps = 0}}), Contains("'eps'"));
  CHECK_THROWS_WITH((optim::AdamW{params, {.weight_decay = -0.1}}), Contains("'weight_decay'") && Contains("-0.1"));
  CHECK_THROWS_WITH((optim::SGD{params, {.momentum = -0.5}}),
                    Contains("SGD: expected option 'momentum'") && Contains("-0.5"));
  CHECK_THROWS_WITH((optim::SGD{params, {.nesterov = true}}), Contains("'momentum' > 0 when nesterov"));
  CHECK_THROWS_WITH((optim::SGD{params, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}}),
                    Contains("'dampening' = 0 when nesterov"));
  CHECK_THROWS_WITH((optim::RMSprop{params, {.alpha = 1.0}}),
                    Contains("RMSprop: expected option 'alpha' in [0, 1), got 1"));
  CHECK_THROWS_WITH((optim::RMSprop{params, {.lr = std::nan("")}}), Contains("'lr'") && Contains("nan"));
  optim::SGD ok{params, {.lr = 0.1}};
  CHECK_THROWS_WITH(ok.set_lr(-1), Contains("SGD: expected lr >= 0") && Contains("-1"));

  // Parameters: names unique, each buffer once.
  CHECK_THROWS_WITH((optim::SGD{std::vector{w, w}}), Contains("share one buffer"));
  std::vector<nn::NamedParameter<float>> dup{{"a", w}, {"a", Parameter<float>(zeros<float>(Shape{1}))}};
  CHECK_THROWS_WITH((optim::SGD{dup}), Contains("two parameters are named 'a'"));
}

TEST_CASE("Steady-state optimizer steps make no system allocation", "[optim][alloc]") {
  // One parameter large enough for the threaded path, a few small ones for the serial path.
  Parameter<float> big(zeros<float>(Shape{256, 300})), b1(zeros<float>(Shape{300})), b2(zeros<float>(Shape{7}));
  std::vector<nn::NamedParameter<float>> params{{"big", big}, {"b1", b1}, {"b2", b2}};
  std::vector<std::unique_ptr<optim::Optimizer<float>>> opts;
  opts.push_back(std::make_unique<optim::SGD<float>>(params, optim::SGDOptions{.lr = 1e-3, .momentum = 0.9, .weight_decay = 1e-4}));
  opts.push_back(std::make_unique<optim::Adam<float>>(params, optim::AdamOptions{.amsgrad = true}));
  opts.push_back(std::make_unique<optim::AdamW<float>>(params));
  opts.push_back(std::make_unique<optim::RMSprop<float>>(params, optim::RMSpropOptions{.momentum = 0.9, .centered = true}));
  optim::LinearWarmup sched{2, optim::CosineAnnealing{1e-3, 10}};
  fake_gradients(params, 0);
  for (auto& o : opts) o->step();  // warm-up (nothing should be lazy, but be fair to the pool)
  const auto before = memory_stats().system_allocations;
  for (int t = 0; t < 5; ++t)
    for (auto& o : opts) {
      sched.apply(*o);
      optim::clip_grad_norm(*o, 10.0);
      o->step();
    }
  CHECK(memory_stats().system_allocations == before);
}

TEST_CASE("Each optimizer minimizes a convex quadratic through the tape", "[optim][train]") {
  // f(x) = sum_i w_i (x_i - c_i)^2, minimum 0 at x = c; conditioning 1:8.
  const auto c = from_data<float>(Shape{4}, {1.f, -2.f, 0.5f, 3.f});
  const auto w = from_data<float>(Shape{4}, {1.f, 2.f, 4.f, 8.f});
  auto loss_of = [&](const Parameter<float>& x) { return sum(mul(Var<float>(w), square(sub(x.var(), Var<float>(c))))); };

  auto train = [&](auto make_optimizer, int steps) {
    Parameter<float> x(zeros<float>(Shape{4}));
    auto opt = make_optimizer(std::vector{x});
    float first = 0, last = 0;
    for (int t = 0; t < steps; ++t) {
      opt.zero_grad();
      Tape<float> tape;
      Var<float> loss = loss_of(x);
      tape.backward(loss);
      if (t == 0) first = loss.item();
      last = loss.item();
      opt.step();
    }
    INFO("loss " << first << " -> " << last);
    CHECK(last < 1e-4f * first);
  };
  train([](auto p) { return optim::SGD{p, {.lr = 0.05}}; }, 100);
  train([](auto p) { return optim::SGD{p, {.lr = 0.02, .momentum = 0.9}}; }, 150);
  train([](auto p) { return optim::SGD{p, {.lr = 0.02, .momentum = 0.9, .nesterov = true}}; }, 150);
  train([](auto p) { return optim::Adam{p, {.lr = 0.1}}; }, 300);
  train([](auto p) { return optim::AdamW{p, {.lr = 0.1, .weight_decay = 1e-4}}; }, 300);
  train([](auto p) { return optim::RMSprop{p, {.lr = 0.01}}; }, 400);
  train([](auto p) { return optim::RMSprop{p, {.lr = 0.01, .momentum = 0.5, .centered = true}}; }, 400);
}

}  // namespace optim_optimizer_test
