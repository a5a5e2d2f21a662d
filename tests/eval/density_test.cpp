// eval::log_probs / mean_negative_log_prob / bits_per_dim: batch by batch equal to one log_prob
// call, the bits/dim conversion, and bad arguments.
#include <catch2/catch.hpp>

#include <cmath>

#include "genmod/eval/density.hpp"
#include "genmod/models/pixel_cnn.hpp"
#include "support/autoregressive_checks.hpp"

namespace eval_density_test {

using namespace genmod;

TEST_CASE("eval::log_probs batches a DensityModel's log_prob without changing it", "[eval]") {
  manual_seed(2);
  models::PixelCNN<double> model({.height = 5, .width = 4, .channels = 4, .residual_blocks = 1, .input_kernel = 3,
                                  .head_channels = 4});
  const Tensor<double> x = test::random_pixels<double>(7, 5, 4, models::PixelOutput::categorical, 3);
  const Tensor<double> whole = [&] {
    NoGradGuard no_grad;
    return model.log_prob(Var<double>(x)).value();
  }();
  for (std::int64_t batch : {1, 3, 7, 100}) {
    const Tensor<double> lp = eval::log_probs(model, x, batch);
    REQUIRE(lp.shape() == Shape{7});
    for (std::int64_t i = 0; i < 7; ++i) CHECK(lp[i] == Approx(whole[i]).epsilon(1e-12));
  }
  double mean = 0;
  for (std::int64_t i = 0; i < 7; ++i) mean -= whole[i] / 7;
  CHECK(eval::mean_negative_log_prob(model, x, 2) == Approx(mean).epsilon(1e-12));
  CHECK(eval::bits_per_dim(model, x, 2) == Approx(mean / (20 * std::log(2.0))).epsilon(1e-12));
  CHECK_THROWS_AS(eval::log_probs(model, x, 0), ValueError);
  CHECK_THROWS_AS(eval::bits_per_dim(model, Tensor<double>(Shape{0, 1, 5, 4})), ShapeError);
}

}  // namespace eval_density_test
