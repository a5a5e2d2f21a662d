#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

#include "genmod/io/model_checkpoint.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"

using namespace genmod;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("genmod_model_ckpt_" + name + ".npz")).string();
}

float train_steps(nn::Module<float>& net, optim::Optimizer<float>& opt, int steps, Generator& g) {
  float last = 0;
  for (int i = 0; i < steps; ++i) {
    Tensor<float> x = randn<float>({16, 4}, g);
    Tape<float> tape;
    Var<float> loss = mean(square(net(Var<float>(x)) - 1.0f));
    tape.backward(loss);
    opt.step();
    opt.zero_grad();
    last = loss.item();
  }
  return last;
}

}  // namespace

TEST_CASE("A model and its optimizer resume bit for bit from a checkpoint", "[io][checkpoint]") {
  const std::string path = temp_path("resume");
  manual_seed(11);
  nn::Sequential a{nn::Linear(4, 8), nn::Tanh(), nn::BatchNorm1d(8), nn::Linear(8, 1)};
  optim::Adam opt_a{a.named_parameters(), {.lr = 1e-2}};
  Generator ga(5);
  train_steps(a, opt_a, 3, ga);
  io::save_checkpoint(path, a, &opt_a, {.step = 3, .epoch = 1, .has_rng = true, .rng = ga.state(), .extra = {{"note", "x"}}});
  const float continued = train_steps(a, opt_a, 2, ga);

  manual_seed(99);  // different initial weights, overwritten by the load
  nn::Sequential b{nn::Linear(4, 8), nn::Tanh(), nn::BatchNorm1d(8), nn::Linear(8, 1)};
  optim::Adam opt_b{b.named_parameters(), {.lr = 1e-2}};
  const io::TrainingState st = io::load_checkpoint(path, b, &opt_b);
  CHECK(st.step == 3);
  CHECK(st.epoch == 1);
  CHECK(st.extra.at("note") == "x");
  REQUIRE(st.has_rng);
  Generator gb(0);
  gb.set_state(st.rng);
  const float resumed = train_steps(b, opt_b, 2, gb);
  CHECK(resumed == continued);
  auto pa = a.parameters(), pb = b.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i)
    for (std::int64_t k = 0; k < pa[i].numel(); ++k) CHECK(pa[i].value()[k] == pb[i].value()[k]);
  CHECK(b.get<2>().running_mean[0] == a.get<2>().running_mean[0]);
  std::filesystem::remove(path);
}

TEST_CASE("Loading a checkpoint into a different model names the mismatch", "[io][checkpoint]") {
  const std::string path = temp_path("mismatch");
  nn::Sequential a{nn::Linear(4, 8), nn::Linear(8, 2)};
  io::save_checkpoint(path, a);
  nn::Sequential b{nn::Linear(4, 8), nn::Linear(8, 3)};
  const float before = b.get<0>().weight.value()[0];
  CHECK_THROWS_WITH(io::load_checkpoint(path, b),
                    Catch::Contains("model.1.weight") && Catch::Contains("[3, 8]") && Catch::Contains("[2, 8]"));
  CHECK(b.get<0>().weight.value()[0] == before);  // nothing was modified
  nn::Sequential c{nn::Linear(4, 8), nn::Linear(8, 2), nn::Linear(2, 2)};
  CHECK_THROWS_WITH(io::load_checkpoint(path, c), Catch::Contains("model.2.weight"));
  std::filesystem::remove(path);
}
