#include <catch2/catch.hpp>

#include <vector>

#include "genmod/train/cli.hpp"

namespace train_cli_test {

using namespace genmod;

namespace {

/// Parses a command line given as words (argv[0] first).
bool parse(train::ExampleArgs& args, std::vector<const char*> argv) {
  return args.parse(static_cast<int>(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("ExampleArgs has per-example defaults and parses every shared option", "[train]") {
  train::ExampleArgs a("vae", "Trains a VAE.", {.epochs = 20, .batch_size = 64, .seed = 7});
  CHECK(a.epochs == 20);
  CHECK(a.batch_size == 64);
  CHECK(a.seed == 7);
  CHECK(a.out == "out");
  CHECK(a.data.empty());
  CHECK(a.resume.empty());
  CHECK(a.threads == 0);
  REQUIRE(parse(a, {"vae", "--data", "/d", "--out=/o", "--epochs", "3", "--batch-size=32", "--threads", "2",
                    "--seed", "18446744073709551615", "--resume", "/o/checkpoint.npz"}));
  CHECK(a.data == "/d");
  CHECK(a.out == "/o");
  CHECK(a.epochs == 3);
  CHECK(a.batch_size == 32);
  CHECK(a.threads == 2);
  CHECK(a.seed == 18446744073709551615ULL);
  CHECK(a.resume == "/o/checkpoint.npz");
  const train::TrainerOptions o = a.trainer_options();
  CHECK(o.out_dir == "/o");
  CHECK(o.epochs == 3);
  CHECK(o.resume == "/o/checkpoint.npz");
  CHECK(o.metadata.at("args.seed") == "18446744073709551615");
}

TEST_CASE("ExampleArgs extra options and flags", "[train]") {
  train::ExampleArgs a("gan", "");
  double beta = 1.0;
  float lr = 2e-4f;
  std::string mode = "bce";
  int latent = 32;
  bool fast = false;
  a.add_option("--beta", beta, "KL weight").add_option("--lr", lr, "learning rate");
  a.add_option("--loss", mode, "bce or wasserstein").add_option("--latent", latent, "latent size", 1);
  a.add_flag("--fast", fast, "a quick run");
  REQUIRE(parse(a, {"gan", "--beta", "0.5", "--lr=1e-3", "--loss", "wasserstein", "--latent", "8", "--fast"}));
  CHECK(beta == 0.5);
  CHECK(lr == 1e-3f);
  CHECK(mode == "wasserstein");
  CHECK(latent == 8);
  CHECK(fast);
  CHECK_THROWS_WITH(parse(a, {"gan", "--latent", "0"}), Catch::Contains("'--latent'") && Catch::Contains("'0'"));
  CHECK_THROWS_WITH(parse(a, {"gan", "--fast=1"}), Catch::Contains("--fast") && Catch::Contains("no value"));
  CHECK_THROWS_AS(a.add_option("--beta", beta, "again"), ValueError);
  CHECK_THROWS_AS(a.add_flag("nodash", fast, ""), ValueError);
}

TEST_CASE("ExampleArgs::given tells a typed option from a default", "[train]") {
  train::ExampleArgs a("flow", "", {.epochs = 10});
  bool fast = false;
  a.add_flag("--fast", fast, "a quick run");
  REQUIRE(parse(a, {"flow", "--epochs=10", "--fast"}));
  CHECK(a.given("--epochs"));  // typed, even though it equals the default
  CHECK(a.given("--fast"));
  CHECK_FALSE(a.given("--seed"));
  REQUIRE(parse(a, {"flow", "--seed", "3"}));  // each parse starts afresh
  CHECK_FALSE(a.given("--epochs"));
  CHECK_FALSE(a.given("--fast"));
  CHECK(a.given("--seed"));
  CHECK_THROWS_WITH(a.given("--epoch"), Catch::Contains("no option '--epoch'"));
}

TEST_CASE("ExampleArgs help lists every option with its default", "[train]") {
  train::ExampleArgs a("vae", "Trains a VAE on Fashion-MNIST.", {.epochs = 20});
  double beta = 1.5;
  a.add_option("--beta", beta, "KL weight");
  CHECK_FALSE(parse(a, {"vae", "--epochs", "3", "--help"}));
  CHECK_FALSE(parse(a, {"vae", "-h"}));
  const std::string h = a.help();
  CHECK(h.rfind("usage: vae [options]\n", 0) == 0);
  CHECK(h.find("Trains a VAE on Fashion-MNIST.") != std::string::npos);
  for (const char* opt : {"--data DIR", "--out DIR", "--epochs N", "--batch-size N", "--threads N", "--seed S",
                          "--resume PATH", "--beta X", "--help"})
    CHECK(h.find(opt) != std::string::npos);
  CHECK(h.find("(default: 20)") != std::string::npos);
  CHECK(h.find("(default: 1.5)") != std::string::npos);
  CHECK(h.find("GENMOD_DATA_DIR") != std::string::npos);
}

TEST_CASE("ExampleArgs errors name the option and the bad value", "[train]") {
  train::ExampleArgs a("vae", "");
  CHECK_THROWS_WITH(parse(a, {"vae", "--epochs", "ten"}), Catch::Contains("'--epochs'") && Catch::Contains("'ten'"));
  CHECK_THROWS_WITH(parse(a, {"vae", "--epochs", "0"}), Catch::Contains("at least 1") && Catch::Contains("'0'"));
  CHECK_THROWS_WITH(parse(a, {"vae", "--batch-size=-4"}), Catch::Contains("'--batch-size'") && Catch::Contains("'-4'"));
  CHECK_THROWS_WITH(parse(a, {"vae", "--threads", "2x"}), Catch::Contains("'--threads'") && Catch::Contains("'2x'"));
  CHECK_THROWS_WITH(parse(a, {"vae", "--seed", "-1"}), Catch::Contains("'--seed'") && Catch::Contains("'-1'"));
  CHECK_THROWS_WITH(parse(a, {"vae", "--epochs"}), Catch::Contains("'--epochs' needs a value"));
  CHECK_THROWS_WITH(parse(a, {"vae", "--epoch", "3"}), Catch::Contains("unknown option '--epoch'"));
  CHECK_THROWS_WITH(parse(a, {"vae", "data"}), Catch::Contains("unexpected argument 'data'"));
  CHECK_THROWS_AS(parse(a, {"vae", "--epochs", "99999999999999999999999"}), train::UsageError);
  double lr = 1;
  a.add_option("--lr", lr, "");
  CHECK_THROWS_WITH(parse(a, {"vae", "--lr", "nan"}), Catch::Contains("'--lr'") && Catch::Contains("'nan'"));
}

}  // namespace train_cli_test
