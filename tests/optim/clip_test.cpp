#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "genmod/optim/clip.hpp"
#include "genmod/optim/sgd.hpp"

namespace optim_clip_test {

using namespace genmod;

TEST_CASE("clip_grad_norm returns the joint L2 norm and scales by max_norm / (norm + 1e-6)", "[optim][clip]") {
  Parameter<float> a(zeros<float>(Shape{2})), b(zeros<float>(Shape{1}));
  a.grad()[0] = 3.f;
  a.grad()[1] = 4.f;
  b.grad()[0] = 12.f;  // norm sqrt(9 + 16 + 144) = 13
  std::vector params{a, b};

  CHECK(optim::clip_grad_norm(params, 20.0) == Approx(13.0));  // below the bound: untouched
  CHECK(a.grad()[0] == 3.f);

  const double norm = optim::clip_grad_norm(params, 6.5);
  CHECK(norm == Approx(13.0));
  const double scale = 6.5 / (13.0 + 1e-6);
  CHECK(a.grad()[0] == Approx(3 * scale));
  CHECK(a.grad()[1] == Approx(4 * scale));
  CHECK(b.grad()[0] == Approx(12 * scale));
  CHECK(optim::clip_grad_norm(params, 100.0) == Approx(6.5).epsilon(1e-6));
}

TEST_CASE("clip_grad_norm skips frozen parameters and takes named lists and optimizers", "[optim][clip]") {
  Parameter<float> a(zeros<float>(Shape{1})), frozen(zeros<float>(Shape{1}), false);
  a.grad()[0] = -2.f;
  frozen.grad()[0] = 100.f;
  std::vector<nn::NamedParameter<float>> named{{"a", a}, {"frozen", frozen}};
  CHECK(optim::clip_grad_norm(named, 1.0) == Approx(2.0));
  CHECK(a.grad()[0] == Approx(-1.0).epsilon(1e-5));
  CHECK(frozen.grad()[0] == 100.f);

  optim::SGD opt{named, {.lr = 0.1}};
  a.grad()[0] = 10.f;
  CHECK(optim::clip_grad_norm(opt, 5.0) == Approx(10.0));
  CHECK(a.grad()[0] == Approx(5.0).epsilon(1e-5));
  optim::clip_grad_value(opt, 1.0);
  CHECK(a.grad()[0] == 1.f);
  CHECK(frozen.grad()[0] == 100.f);
}

TEST_CASE("clip_grad_norm over large gradients matches a double-precision sum", "[optim][clip]") {
  // Above the threaded-reduction size (64 blocks of 1024), with a ragged end.
  Generator g(3);
  Parameter<float> w(zeros<float>(Shape{70001})), v(zeros<float>(Shape{33}));
  fill_normal(w.grad(), g);
  fill_normal(v.grad(), g);
  double sq = 0;
  for (float x : w.grad()) sq += double(x) * x;
  for (float x : v.grad()) sq += double(x) * x;
  std::vector params{w, v};
  const double norm = optim::clip_grad_norm(params, 1.0);
  CHECK(norm == Approx(std::sqrt(sq)).epsilon(1e-6));
  double after = 0;
  for (float x : w.grad()) after += double(x) * x;
  for (float x : v.grad()) after += double(x) * x;
  CHECK(std::sqrt(after) == Approx(1.0).epsilon(1e-5));
}

TEST_CASE("clip_grad_value clamps every element into the interval from -v to v", "[optim][clip]") {
  Parameter<double> w(zeros<double>(Shape{19}));
  for (std::int64_t i = 0; i < 19; ++i) w.grad()[i] = static_cast<double>(i - 9) * 0.25;  // -2.25 .. 2.25
  optim::clip_grad_value(std::vector{w}, 1.0);
  for (std::int64_t i = 0; i < 19; ++i) {
    const double x = static_cast<double>(i - 9) * 0.25;
    CHECK(w.grad()[i] == std::clamp(x, -1.0, 1.0));
  }
}

TEST_CASE("Clipping rejects negative bounds", "[optim][clip]") {
  std::vector<Parameter<float>> none;
  CHECK_THROWS_AS(optim::clip_grad_norm(none, -1.0), ValueError);
  CHECK_THROWS_WITH(optim::clip_grad_value(none, std::nan("")), Catch::Contains("clip_value") && Catch::Contains("nan"));
}

}  // namespace optim_clip_test
