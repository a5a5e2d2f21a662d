#include <catch2/catch.hpp>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "genmod/io/model_checkpoint.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"
#include "genmod/train/checkpoint.hpp"
#include "genmod/train/metrics.hpp"

namespace train_metrics_test {

using namespace genmod;
namespace fs = std::filesystem;

namespace {

std::string temp_file(const std::string& name) {
  return (fs::temp_directory_path() / ("genmod_train_" + name + "_" + std::to_string(::getpid()))).string();
}

}  // namespace

TEST_CASE("Metric numbers print in the shortest form that reads back exactly", "[train]") {
  for (double v : {0.1, 1e-8, 3.0, -2.5e300, 0.30000000000000004, 1.0 / 3.0}) {
    double back = 0;
    REQUIRE(train::parse_number(train::format_number(v), back));
    CHECK(back == v);
  }
  CHECK(train::format_number(0.1) == "0.1");
  CHECK(train::format_number(std::nan("")) == "null");
  CHECK(train::format_number(std::numeric_limits<double>::infinity()) == "null");
  double x = 0;
  CHECK_FALSE(train::parse_number("1.5x", x));
  CHECK_FALSE(train::parse_number("", x));
}

TEST_CASE("A metrics line round-trips, null reads as NaN, and bad lines name the column", "[train]") {
  const std::string line =
      train::metrics_to_json({{"epoch", 3}, {"train_loss", 0.25}, {"test \"loss\"", std::nan("")}});
  CHECK(line == R"({"epoch": 3, "train_loss": 0.25, "test \"loss\"": null})");
  const train::MetricsRecord r = train::parse_metrics_line(line);
  REQUIRE(r.values.size() == 3);
  CHECK(r.at("epoch") == 3);
  CHECK(r.at("train_loss") == 0.25);
  CHECK(std::isnan(r.at("test \"loss\"")));
  CHECK(r.find("missing") == nullptr);
  // What Python's json.dumps writes parses too (strings are skipped, booleans are 0/1).
  const auto py = train::parse_metrics_line(R"({"epoch":1,"note":"x","ok":true,"lr":1e-3})");
  CHECK(py.at("lr") == 1e-3);
  CHECK(py.at("ok") == 1);
  CHECK(py.find("note") == nullptr);
  CHECK_THROWS_WITH(train::parse_metrics_line(R"({"epoch": 1, "loss": abc})"), Catch::Contains("column 22"));
  CHECK_THROWS_AS(train::parse_metrics_line(R"({"epoch": 1} trailing)"), IOError);
  // Arrays are not metrics either; a record with strings appends and reads back its numbers.
  CHECK(train::parse_metrics_line(R"({"curve": [1, 2], "x": 2})").values.size() == 1);
}

TEST_CASE("read_metrics skips a torn last line but not a bad line in the middle", "[train]") {
  const std::string path = temp_file("metrics.jsonl");
  fs::remove(path);
  CHECK(train::read_metrics(path).empty());
  train::append_line(path, R"({"epoch": 1, "train_loss": 0.5})");
  train::append_line(path, R"({"epoch": 2, "train_loss": 0.4})");
  {
    std::ofstream out(path, std::ios::app);
    out << R"({"epoch": 3, "train_lo)";  // a run killed mid-write
  }
  auto recs = train::read_metrics(path);
  REQUIRE(recs.size() == 2);
  CHECK(recs[1].at("train_loss") == 0.4);
  {
    std::ofstream out(path, std::ios::app);
    out << "\n"
        << R"({"epoch": 4})"
        << "\n";
  }
  CHECK_THROWS_WITH(train::read_metrics(path), Catch::Contains(":3:"));
  train::write_metrics(path, recs);
  CHECK(train::read_metrics(path).size() == 2);
  // What an example appends by itself: any flat object, NaN as null.
  train::append_metrics(path, {{"task", "denoise"}, {"sigma", 0.3f}, {"psnr", std::nan("")}});
  {
    std::ifstream in(path);
    std::string line, last;
    while (std::getline(in, line)) last = line;
    CHECK(last == R"({"task": "denoise", "sigma": 0.3, "psnr": null})");
  }
  recs = train::read_metrics(path);
  REQUIRE(recs.size() == 3);
  CHECK(recs[2].find("task") == nullptr);
  CHECK(std::isnan(recs[2].at("psnr")));
  fs::remove(path);
}

TEST_CASE("CheckpointSet saves a GAN's two networks and optimizers under their own prefixes", "[train]") {
  const std::string path = temp_file("gan.npz");
  manual_seed(1);
  nn::Sequential g{nn::Linear(2, 4), nn::ReLU(), nn::Linear(4, 3)};
  nn::Sequential d{nn::Linear(3, 4), nn::BatchNorm1d(4), nn::Linear(4, 1)};
  optim::Adam opt_g{g.named_parameters(), {.lr = 1e-3}};
  optim::Adam opt_d{d.named_parameters(), {.lr = 2e-3}};
  Generator noise(9);
  noise.next_u64();
  {
    Tape<float> tape;
    Var<float> loss = mean(square(d(g(Var<float>(randn<float>({5, 2}, noise))))));
    tape.backward(loss);
    opt_g.step();
    opt_d.step();
  }
  train::CheckpointSet set;
  set.add("generator", g, &opt_g).add("discriminator", d, &opt_d).add_generator(noise, "noise");
  set.save(path, 1, 0, {{"note", "gan"}});

  const io::TensorFile f = io::load_tensors(path);
  CHECK(f.find("generator.0.weight") != nullptr);
  CHECK(f.find("discriminator.1.running_mean") != nullptr);
  CHECK(f.find("optim.generator.step") != nullptr);
  CHECK(f.find("optim.discriminator.0.weight.exp_avg") != nullptr);
  CHECK(f.metadata.at("noise.offset") == std::to_string(noise.state().offset));
  CHECK(f.metadata.at("format") == "genmod-checkpoint-1");

  manual_seed(2);
  nn::Sequential g2{nn::Linear(2, 4), nn::ReLU(), nn::Linear(4, 3)};
  nn::Sequential d2{nn::Linear(3, 4), nn::BatchNorm1d(4), nn::Linear(4, 1)};
  optim::Adam opt_g2{g2.named_parameters(), {.lr = 1e-3}};
  optim::Adam opt_d2{d2.named_parameters(), {.lr = 2e-3}};
  Generator noise2(0);
  train::CheckpointSet set2;
  set2.add("generator", g2, &opt_g2).add("discriminator", d2, &opt_d2).add_generator(noise2, "noise");
  const auto st = set2.load(path);
  CHECK(st.step == 1);
  CHECK(st.extra.at("note") == "gan");
  CHECK(st.extra.count("noise.seed") == 0);
  CHECK(noise2.state().offset == noise.state().offset);
  CHECK(noise2.state().seed == 9);
  CHECK(opt_d2.step_count() == 1);
  CHECK(g2.get<2>().weight.value()[3] == g.get<2>().weight.value()[3]);
  CHECK(d2.get<1>().running_mean[2] == d.get<1>().running_mean[2]);

  // A set that lacks a component: IOError naming the unexpected entries, nothing modified.
  manual_seed(3);
  nn::Sequential g3{nn::Linear(2, 4), nn::ReLU(), nn::Linear(4, 3)};
  const float before = g3.get<0>().weight.value()[0];
  train::CheckpointSet set3;
  set3.add("generator", g3);
  CHECK_THROWS_WITH(set3.load(path), Catch::Contains("unexpected: 'discriminator.0.weight'"));
  CHECK(g3.get<0>().weight.value()[0] == before);

  CHECK_THROWS_AS(set3.add("generator", g2), ValueError);
  CHECK_THROWS_AS(set3.add("optim", g2), ValueError);
  CHECK_THROWS_AS(set3.add("a.b", g2), ValueError);
  CHECK_THROWS_AS(set3.add_generator(noise, "step"), ValueError);
  fs::remove(path);
}

TEST_CASE("CheckpointSet refuses to save a non-finite state and keeps the previous file", "[train]") {
  const std::string path = temp_file("nonfinite.npz");
  nn::Linear<float> lin(2, 2);
  train::CheckpointSet set;
  set.add("model", lin);
  set.save(path, 0, 1);
  lin.bias.value()[1] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(set.save(path, 0, 2), Catch::Contains("'model.bias'") && Catch::Contains("element 1") &&
                                              Catch::Contains("previous checkpoint is kept"));
  lin.bias.value()[1] = 0;
  CHECK(set.load(path).epoch == 1);
  fs::remove(path);
}

}  // namespace train_metrics_test
