// Attribute arithmetic of a ConditionalVAE with a multi-hot condition: the code-space direction of
// one attribute is the difference of the two groups' mean posterior codes (checked against the
// encoder run by hand), "add attribute X" decodes the moved codes with X switched on, and bad
// columns or one-sided groups are refused.
#include <catch2/catch.hpp>

#include <cstdint>

#include "genmod/models/conditional_vae.hpp"
#include "genmod/nn/nn.hpp"
#include "support/gradcheck.hpp"

namespace models_conditional_vae_attributes_test {

using namespace genmod;

namespace {

using Mlp = nn::Sequential<nn::Linear<double>, nn::Tanh<double>, nn::Linear<double>>;
using Cvae = models::ConditionalVAE<Mlp, Mlp, dist::Bernoulli>;

constexpr std::int64_t kN = 7, kD = 6, kC = 3, kZ = 2;

Cvae make_cvae() {
  manual_seed(11);
  return Cvae{Mlp{nn::Linear<double>(kD + kC, 7), nn::Tanh<double>(), nn::Linear<double>(7, 2 * kZ)},
              Mlp{nn::Linear<double>(kZ + kC, 7), nn::Tanh<double>(), nn::Linear<double>(7, kD)},
              dist::Bernoulli{},
              {.latent_dim = kZ},
              {.condition_dim = kC}};
}

// Multi-hot conditions: column 1 on in rows 0, 2, 3; every row has some attributes.
Tensor<double> conditions() {
  return from_data<double>({kN, kC}, {1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 1});
}

}  // namespace

TEST_CASE("ConditionalVAE attributes: direction = mean code with - mean code without", "[models][cvae]") {
  Cvae cvae = make_cvae();
  const Tensor<double> x = test::uni({kN, kD}, 3, 0.0, 1.0), c = conditions();
  const Tensor<double> codes = models::posterior_means(cvae, x, c, 3);  // batches of 3, 3, 1
  REQUIRE(codes.shape() == Shape{kN, kZ});
  {
    NoGradGuard no_grad;
    const Tensor<double> mu = cvae.encode(Var<double>(x), Var<double>(c)).first.value();
    for (std::int64_t i = 0; i < codes.numel(); ++i) CHECK(codes[i] == Approx(mu[i]).epsilon(1e-14));
  }
  const Tensor<double> dir = models::attribute_direction(cvae, x, c, 1);
  REQUIRE(dir.shape() == Shape{kZ});
  for (std::int64_t j = 0; j < kZ; ++j) {
    double with = 0, without = 0;
    for (std::int64_t i : {0, 2, 3}) with += codes(i, j) / 3;
    for (std::int64_t i : {1, 4, 5, 6}) without += codes(i, j) / 4;
    CHECK(dir[j] == Approx(with - without).epsilon(1e-12));
  }
  // Add attribute 1 at strength 0.5: the moved codes decoded with column 1 switched on.
  const Tensor<double> added = models::add_attribute(cvae, x, c, 1, dir, 0.5);
  const Tensor<double> switched = models::with_condition_column(c, 1, 1.0);
  for (std::int64_t i = 0; i < kN; ++i) {
    CHECK(switched(i, 1) == 1.0);
    CHECK(switched(i, 0) == c(i, 0));
    CHECK(switched(i, 2) == c(i, 2));
  }
  const Tensor<double> want = cvae.generate(models::apply_attribute(codes, dir, 0.5), switched);
  REQUIRE(added.shape() == want.shape());
  for (std::int64_t i = 0; i < want.numel(); ++i) CHECK(added[i] == Approx(want[i]).epsilon(1e-14));
  CHECK(models::with_condition_column(c, 2, 0.0)(6, 2) == 0.0);
}

TEST_CASE("ConditionalVAE attributes: bad columns and one-sided groups", "[models][cvae]") {
  Cvae cvae = make_cvae();
  const Tensor<double> x = test::uni({kN, kD}, 3, 0.0, 1.0), c = conditions();
  CHECK_THROWS_WITH(models::attribute_direction(cvae, x, c, 3), Catch::Contains("[0, 3)") && Catch::Contains("got 3"));
  CHECK_THROWS_AS(models::with_condition_column(c, -1, 1.0), ValueError);
  const Tensor<double> all_on = models::with_condition_column(c, 0, 1.0);
  CHECK_THROWS_WITH(models::attribute_direction(cvae, x, all_on, 0), Catch::Contains("column 0 is on in all 7 images"));
  CHECK_THROWS_AS(models::posterior_means(cvae, x, c.rows(0, 3)), ShapeError);
  CHECK_THROWS_AS(models::posterior_means(cvae, x, c, 0), ValueError);
  CHECK_THROWS_WITH(models::posterior_means(cvae, x.rows(0, 0), c.rows(0, 0)), Catch::Contains("N >= 1"));
  CHECK_THROWS_AS(models::posterior_means(cvae, Tensor<double>(), c), ShapeError);
  // Encoding runs in evaluation mode and leaves the caller's mode as it was.
  cvae.train();
  models::posterior_means(cvae, x, c);
  CHECK(cvae.is_training());
}

}  // namespace models_conditional_vae_attributes_test
