#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <numbers>
#include <type_traits>
#include <vector>

#include "genmod/optim/schedule.hpp"
#include "genmod/optim/sgd.hpp"

namespace optim_schedule_test {

using namespace genmod;

TEST_CASE("StepLR multiplies by gamma every step_size steps", "[optim][schedule]") {
  optim::StepLR s(0.1, 30, 0.5);
  CHECK(s.lr(0) == Approx(0.1));
  CHECK(s.lr(29) == Approx(0.1));
  CHECK(s.lr(30) == Approx(0.05));
  CHECK(s.lr(59) == Approx(0.05));
  CHECK(s.lr(95) == Approx(0.0125));
}

TEST_CASE("CosineAnnealing follows half a cosine to eta_min, then stays there", "[optim][schedule]") {
  optim::CosineAnnealing s(1.0, 100, 0.1);
  CHECK(s.lr(0) == Approx(1.0));
  CHECK(s.lr(50) == Approx(0.55));                                        // halfway: the mean
  CHECK(s.lr(25) == Approx(0.1 + 0.9 * (1 + std::cos(std::numbers::pi / 4)) / 2));
  CHECK(s.lr(100) == Approx(0.1));
  CHECK(s.lr(1000) == Approx(0.1));
}

TEST_CASE("LinearWarmup ramps up, then hands over to a constant or to another schedule", "[optim][schedule]") {
  optim::LinearWarmup flat{4, 1e-3};
  static_assert(std::is_same_v<decltype(flat), optim::LinearWarmup<optim::Constant>>);
  CHECK(flat.lr(0) == Approx(0.25e-3));
  CHECK(flat.lr(1) == Approx(0.5e-3));
  CHECK(flat.lr(3) == Approx(1e-3));
  CHECK(flat.lr(4) == Approx(1e-3));
  CHECK(flat.lr(1000) == Approx(1e-3));

  optim::LinearWarmup cos{10, optim::CosineAnnealing{2.0, 20}};
  static_assert(std::is_same_v<decltype(cos), optim::LinearWarmup<optim::CosineAnnealing>>);
  CHECK(cos.lr(4) == Approx(1.0));   // 2 * 5 / 10
  CHECK(cos.lr(10) == Approx(2.0));  // the cosine's step 0
  CHECK(cos.lr(20) == Approx(1.0));  // the cosine's step 10: halfway
  CHECK(cos.lr(30) == Approx(0.0).margin(1e-12));

  optim::LinearWarmup none{0, optim::StepLR{1.0, 1, 0.5}};
  CHECK(none.lr(0) == Approx(1.0));
  CHECK(none.lr(2) == Approx(0.25));
}

TEST_CASE("A schedule applied before each step sets the optimizer's rate for that step", "[optim][schedule]") {
  Parameter<float> w(zeros<float>(Shape{1}));
  optim::SGD opt{std::vector{w}, {.lr = 1.0}};
  optim::StepLR sched(1.0, 2, 0.1);
  std::vector<double> used;
  for (int i = 0; i < 5; ++i) {
    sched.apply(opt);
    used.push_back(opt.lr());
    opt.step();
  }
  CHECK(used[0] == Approx(1.0));
  CHECK(used[1] == Approx(1.0));
  CHECK(used[2] == Approx(0.1));
  CHECK(used[4] == Approx(0.01));
  sched.apply(opt, 0);  // a caller's own counter (an epoch)
  CHECK(opt.lr() == Approx(1.0));
  optim::CosineAnnealing(1.0, 3).apply(opt, 3);  // reaching zero is allowed
  CHECK(opt.lr() == 0.0);
}

TEST_CASE("Hold keeps the first rate, then hands over to the wrapped schedule", "[optim][schedule]") {
  const optim::Hold tail{6, optim::CosineAnnealing{2.0, 4}};
  static_assert(std::is_same_v<std::remove_const_t<decltype(tail)>, optim::Hold<optim::CosineAnnealing>>);
  for (std::int64_t t = 0; t <= 6; ++t) CHECK(tail.lr(t) == Approx(2.0));  // held, then the cosine's step 0
  CHECK(tail.lr(8) == Approx(1.0));                                        // the cosine's step 2: halfway
  CHECK(tail.lr(10) == Approx(0.0).margin(1e-12));
  CHECK(tail.lr(100) == Approx(0.0).margin(1e-12));

  const optim::Hold none{0, optim::StepLR{1.0, 1, 0.5}};
  CHECK(none.lr(0) == Approx(1.0));
  CHECK(none.lr(2) == Approx(0.25));

  Parameter<float> w(zeros<float>(Shape{1}));
  optim::SGD opt{std::vector{w}, {.lr = 1.0}};
  tail.apply(opt, 9);  // the cosine's step 3 of 4
  CHECK(opt.lr() == Approx(2.0 * (1 + std::cos(std::numbers::pi * 3 / 4)) / 2));
}

TEST_CASE("Schedules reject bad arguments with clear messages", "[optim][schedule]") {
  using Catch::Contains;
  CHECK_THROWS_WITH(optim::StepLR(0.1, 0), Contains("StepLR") && Contains("step_size") && Contains("> 0"));
  CHECK_THROWS_WITH(optim::StepLR(0.1, 10, -1), Contains("gamma") && Contains("-1"));
  CHECK_THROWS_WITH(optim::CosineAnnealing(0.1, 10, 0.5), Contains("eta_min") && Contains("[0, base_lr]"));
  CHECK_THROWS_AS(optim::CosineAnnealing(0.1, 0), ValueError);
  CHECK_THROWS_AS(optim::LinearWarmup(-1, 0.1), ValueError);
  CHECK_THROWS_WITH(optim::Hold(-1, optim::Constant(0.1)), Contains("Hold") && Contains("hold_steps"));
  CHECK_THROWS_WITH(optim::StepLR(0.1, 10).lr(-1), Contains("expected step >= 0"));
}

}  // namespace optim_schedule_test
