#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "genmod/io/model_checkpoint.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"
#include "genmod/train/checkpoint.hpp"

namespace io_model_checkpoint_test {

using namespace genmod;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("genmod_model_ckpt_" + name + ".npz")).string();
}

template <class Net>
float train_steps(Net& net, optim::Optimizer<float>& opt, int steps, Generator& g) {
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
  io::save_checkpoint(path, a, &opt_a,
                      {.step = 3, .epoch = 1, .has_rng = true, .rng = ga.state(), .extra = {{"note", "x"}}});
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

TEST_CASE("io::save_checkpoint and train::CheckpointSet read each other's files", "[io][checkpoint]") {
  const std::string path = temp_path("cross");
  manual_seed(21);
  nn::Sequential a{nn::Linear(4, 5), nn::BatchNorm1d(5), nn::Linear(5, 2)};
  optim::Adam opt_a{a.named_parameters(), {.lr = 1e-2}};
  Generator ga(7, 3);
  train_steps(a, opt_a, 2, ga);

  // Written by io::save_checkpoint, read by the Trainer's CheckpointSet (module "model", generator "rng").
  io::save_checkpoint(path, a, &opt_a,
                      {.step = 2, .epoch = 1, .has_rng = true, .rng = ga.state(), .extra = {{"k", "v"}}});
  manual_seed(22);
  nn::Sequential b{nn::Linear(4, 5), nn::BatchNorm1d(5), nn::Linear(5, 2)};
  optim::Adam opt_b{b.named_parameters(), {.lr = 1e-2}};
  Generator gb(0);
  train::CheckpointSet set_b;
  set_b.add("model", b, &opt_b).add_generator(gb);
  const train::LoadedState ls = set_b.load(path);
  CHECK(ls.step == 2);
  CHECK(ls.epoch == 1);
  CHECK(ls.extra == io::Metadata{{"k", "v"}});
  CHECK(gb.state().offset == ga.state().offset);
  CHECK(gb.state().stream == 3);
  CHECK(opt_b.step_count() == 2);
  CHECK(train_steps(b, opt_b, 1, gb) == train_steps(a, opt_a, 1, ga));

  // Written by the CheckpointSet, read by io::load_checkpoint.
  set_b.save(path, 3, 2, {{"note", "from the trainer"}});
  manual_seed(23);
  nn::Sequential c{nn::Linear(4, 5), nn::BatchNorm1d(5), nn::Linear(5, 2)};
  optim::Adam opt_c{c.named_parameters(), {.lr = 1e-2}};
  const io::TrainingState st = io::load_checkpoint(path, c, &opt_c);
  CHECK(st.step == 3);
  CHECK(st.epoch == 2);
  REQUIRE(st.has_rng);
  CHECK(st.rng.offset == gb.state().offset);
  CHECK(st.extra == io::Metadata{{"note", "from the trainer"}});
  Generator gc(0);
  gc.set_state(st.rng);
  CHECK(train_steps(c, opt_c, 1, gc) == train_steps(b, opt_b, 1, gb));
  // The model alone: the optimizer state in the file is ignored, the layout is the same.
  nn::Sequential d{nn::Linear(4, 5), nn::BatchNorm1d(5), nn::Linear(5, 2)};
  CHECK(io::load_checkpoint(path, d).has_rng);
  // A model of doubles is stored as float32 under the same keys.
  nn::Linear<double> e(3, 5), f(3, 5);
  io::save_checkpoint(path, e);
  io::load_checkpoint(path, f);
  CHECK(f.weight.value()[4] == static_cast<double>(static_cast<float>(e.weight.value()[4])));
  std::filesystem::remove(path);
}

TEST_CASE("Checkpoint saves refuse reserved metadata and non-finite state", "[io][checkpoint]") {
  const std::string path = temp_path("refuse");
  std::filesystem::remove(path);
  nn::Linear<float> lin(2, 2);
  CHECK_THROWS_WITH(
      io::save_checkpoint(path, lin, static_cast<optim::Optimizer<float>*>(nullptr), {.extra = {{"step", "9"}}}),
      Catch::Contains("'step' is reserved"));
  lin.weight.value()[3] = std::nanf("");
  CHECK_THROWS_AS(io::save_checkpoint(path, lin), NumericError);
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("Truncated or corrupt checkpoints throw IOError and leave the model untouched",
          "[io][checkpoint][robustness]") {
  const std::string path = temp_path("corrupt"), bad = temp_path("corrupt_bad");
  manual_seed(31);
  nn::Sequential a{nn::Linear(4, 6), nn::Linear(6, 2)};
  optim::Adam opt_a{a.named_parameters(), {.lr = 1e-2}};
  io::save_checkpoint(path, a, &opt_a, {.step = 5, .epoch = 1});
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  REQUIRE(bytes.size() > 200);
  const auto write_bad = [&](const std::string& b) {
    std::ofstream out(bad, std::ios::binary | std::ios::trunc);
    out.write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  nn::Sequential b{nn::Linear(4, 6), nn::Linear(6, 2)};
  optim::Adam opt_b{b.named_parameters(), {.lr = 1e-2}};
  const float before = b.get<0>().weight.value()[0];
  // Every truncation is an IOError naming the file, through either entry point.
  for (std::size_t n = 0; n < bytes.size(); n += 1 + n / 8) {
    write_bad(bytes.substr(0, n));
    INFO("truncated to " << n << " of " << bytes.size() << " bytes");
    CHECK_THROWS_WITH(io::load_checkpoint(bad, b, &opt_b), Catch::Contains(bad));
    CHECK_THROWS_AS(train::CheckpointSet().add("model", b, &opt_b).load(bad), IOError);
  }
  CHECK(b.get<0>().weight.value()[0] == before);
  CHECK(opt_b.step_count() == 0);
  // Every flipped byte either is caught (CRC, header and JSON checks: IOError) or changes nothing
  // that matters (a zip field no reader uses): the load then gives the saved values.
  int caught = 0;
  float expected = before;  // what b holds: its own weights until a load succeeds
  for (std::size_t i = 0; i < bytes.size(); i += 7) {
    std::string b2 = bytes;
    b2[i] = static_cast<char>(b2[i] ^ 0x5A);
    write_bad(b2);
    try {
      io::load_checkpoint(bad, b, &opt_b);
      expected = a.get<0>().weight.value()[0];
      CHECK(b.get<0>().weight.value()[0] == expected);
      CHECK(b.get<1>().bias.value()[1] == a.get<1>().bias.value()[1]);
      CHECK(opt_b.step_count() == opt_a.step_count());
    } catch (const IOError&) {
      ++caught;
      CHECK(b.get<0>().weight.value()[0] == expected);
    }
  }
  CHECK(caught > 0);
  // Well-formed files with bad contents: a negative optimizer step, a malformed position.
  io::save_tensors(bad, {{"model.0.weight", a.get<0>().weight.value()}}, {{"step", "-1"}, {"epoch", "0"}});
  nn::Linear<float> one(4, 6);
  CHECK_THROWS_WITH(
      io::load_checkpoint(bad, one),
      Catch::Contains("metadata 'step' is not a non-negative integer: '-1'") && Catch::Contains("model.weight"));
  std::filesystem::remove(path);
  std::filesystem::remove(bad);
}

}  // namespace io_model_checkpoint_test
