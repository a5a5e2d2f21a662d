#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include "genmod/io/checkpoint.hpp"
#include "support/temp_dir.hpp"

namespace io_checkpoint_test {

using namespace genmod;

namespace {

using test::TempDir;

Tensor<float> iota(const Shape& s, float start = 0.f) {
  Tensor<float> t(s);
  for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = start + static_cast<float>(i);
  return t;
}

}  // namespace

TEST_CASE("save_tensors and load_tensors round-trip tensors and metadata", "[io][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("model.npz");
  const io::NamedTensors tensors = {{"encoder.0.weight", iota({3, 4})}, {"encoder.0.bias", iota({4}, 10.f)},
                                    {"scale", scalar<float>(2.5f)}};
  io::save_tensors(path, tensors, {{"step", "1200"}, {"note", "quote \" backslash \\ newline \n tab \t é"}});
  const auto loaded = io::load_tensors(path);
  REQUIRE(loaded.tensors.size() == 3);
  CHECK(loaded.tensors[0].first == "encoder.0.weight");  // file order is save order
  CHECK(allclose(*loaded.find("encoder.0.weight"), tensors[0].second, 0, 0));
  CHECK(loaded.find("scale")->item() == 2.5f);
  CHECK(loaded.find("missing") == nullptr);
  CHECK(loaded.metadata.at("step") == "1200");
  CHECK(loaded.metadata.at("note") == "quote \" backslash \\ newline \n tab \t é");
  // The layout numpy.load sees: one float32 member per tensor, metadata as uint8 JSON.
  const auto archive = data::read_npz(path);
  CHECK(archive.at("encoder.0.bias").holds<float>());
  const auto& meta = archive.at("__metadata__").get<std::uint8_t>();
  const std::string json(reinterpret_cast<const char*>(meta.data()), static_cast<std::size_t>(meta.numel()));
  CHECK(json.rfind("{\"note\": ", 0) == 0);
  // Compressed checkpoints, and a std::map as input.
  std::map<std::string, Tensor<float>> m = {{"a", iota({2})}, {"b", iota({1, 2, 3, 4})}};
  io::save_tensors(dir.file("m.npz"), m, {}, {.compress = true});
  CHECK(io::load_tensors(dir.file("m.npz")).find("b")->shape() == (Shape{1, 2, 3, 4}));
  CHECK(io::load_tensors(dir.file("m.npz")).metadata.empty());
}

TEST_CASE("load_into copies into the caller's tensors after checking every name and shape", "[io][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("ck.npz");
  io::save_tensors(path, {{"w", iota({2, 3}, 1.f)}, {"b", iota({3}, 7.f)}}, {{"epoch", "4"}});
  Tensor<float> w = zeros<float>({2, 3}), b = zeros<float>({3});
  const Tensor<float> view = w.reshape({6});  // shares w's buffer: must see the loaded values
  const auto meta = io::load_into(path, {{"w", w}, {"b", b}});
  CHECK(meta.at("epoch") == "4");
  CHECK(w(1, 2) == 6.f);
  CHECK(view[5] == 6.f);
  CHECK(b[0] == 7.f);

  Tensor<float> w2 = zeros<float>({3, 2}), c = zeros<float>({5});
  CHECK_THROWS_WITH(io::load_into(path, {{"w", w2}, {"b", b}}),
                    Catch::Contains(path) && Catch::Contains("'w' is [2, 3] in the checkpoint, expected [3, 2]"));
  CHECK_THROWS_WITH(io::load_into(path, {{"w", w}, {"b", b}, {"c", c}}),
                    Catch::Contains("missing: 'c' (expected shape [5])"));
  CHECK_THROWS_WITH(io::load_into(path, {{"w", w}}), Catch::Contains("unexpected: 'b' [3]"));
  b.fill(-1.f);
  CHECK_NOTHROW(io::load_into(path, {{"b", b}}, {.strict = false}));
  CHECK(b[0] == 7.f);
  // A failed load changes nothing, even the tensors that did match.
  w.fill(-1.f);
  CHECK_THROWS_AS(io::load_into(path, {{"w", w}, {"b", b}, {"c", c}}), IOError);
  CHECK(w[0] == -1.f);
}

TEST_CASE("save_tensors refuses bad names before touching the file", "[io][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("bad.npz");
  CHECK_THROWS_WITH(io::save_tensors(path, {{"__metadata__", iota({1})}}), Catch::Contains("reserved"));
  CHECK_THROWS_AS(io::save_tensors(path, {{"", iota({1})}}), ValueError);
  CHECK_THROWS_WITH(io::save_tensors(path, {{"w", iota({1})}, {"w", iota({2})}}), Catch::Contains("'w' appears twice"));
  CHECK_THROWS_AS(io::save_tensors(path, {{"w", Tensor<float>{}}}), ValueError);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_THROWS_WITH(io::save_tensors(dir.file("no/such/dir/x.npz"), {{"w", iota({1})}}),
                    Catch::Contains("no/such/dir/x.npz") && Catch::Contains("No such file"));
}

TEST_CASE("load_tensors checks dtypes and the metadata JSON", "[io][checkpoint][robustness]") {
  TempDir dir;
  data::write_npz(dir.file("f64.npz"), {{"w", from_data<double>({1}, {1.0})}});
  CHECK_THROWS_WITH(io::load_tensors(dir.file("f64.npz")),
                    Catch::Contains("f64.npz") && Catch::Contains("'w' is float64, expected float32"));
  const auto with_meta = [&](const std::string& json) {
    Tensor<std::uint8_t> m(Shape{static_cast<std::int64_t>(json.size())});
    std::copy(json.begin(), json.end(), reinterpret_cast<char*>(m.data()));
    data::write_npz(dir.file("m.npz"), {{"__metadata__", m}});
    return io::load_tensors(dir.file("m.npz")).metadata;
  };
  // What Python's json.dumps writes for non-ASCII text: \u escapes, surrogate pairs for emoji.
  const auto py = with_meta(R"({"name": "caf\u00e9 \ud83d\ude00", "lr": "0.001"})");
  CHECK(py.at("name") == "caf\xC3\xA9 \xF0\x9F\x98\x80");
  CHECK(py.at("lr") == "0.001");
  CHECK(with_meta("{}").empty());
  for (const char* bad : {"", "{", "{\"a\": 1}", "{\"a\": \"b\",}", "{\"a\" \"b\"}", "{\"a\": \"\\ud800\"}",
                          "{\"a\": \"b\"} x", "[\"a\"]", "{\"a\": \"\\q\"}", "{\"a\": \"\\u12\"}"}) {
    INFO(bad);
    CHECK_THROWS_WITH(with_meta(bad), Catch::Contains("m.npz") && Catch::Contains("metadata JSON"));
  }
  data::write_npz(dir.file("mf.npz"), {{"__metadata__", zeros<float>({2})}});
  CHECK_THROWS_WITH(io::load_tensors(dir.file("mf.npz")), Catch::Contains("1-D uint8"));
}

TEST_CASE("A crash during a checkpoint save leaves the previous checkpoint intact", "[io][checkpoint][robustness]") {
  TempDir dir;
  const std::string path = dir.file("ck.npz");
  io::save_tensors(path, {{"w", full<float>({16}, 1.f)}}, {{"step", "1"}});
  bool killed_mid_save = false;
  for (int attempt = 0; attempt < 5 && !killed_mid_save; ++attempt) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Child: save a 64 MiB checkpoint over the old one. Never returns into the test framework.
      try {
        io::save_tensors(path, {{"w", full<float>({16 << 20}, 2.f)}}, {{"step", "2"}});
      } catch (...) {
        ::_exit(2);
      }
      ::_exit(0);
    }
    // Parent: SIGKILL the child as soon as its temporary file has data in it.
    const std::string tmp = path + ".tmp." + std::to_string(pid);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    int status = 0;
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      struct stat st {};
      if (::stat(tmp.c_str(), &st) == 0 && st.st_size > 0) {
        ::kill(pid, SIGKILL);
        break;
      }
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    if (!exited) ::waitpid(pid, &status, 0);
    killed_mid_save = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && std::filesystem::exists(tmp);
    // Whatever the timing, the checkpoint is complete: the old one, or (if the child won) the new one.
    const auto loaded = io::load_tensors(path);
    const std::string step = loaded.metadata.at("step");
    CHECK((step == "1" || step == "2"));
    if (killed_mid_save) {
      CHECK(step == "1");
      REQUIRE(loaded.find("w")->numel() == 16);
      CHECK((*loaded.find("w"))[15] == 1.f);
      // The torn temporary file is what the crash left behind; it is not the checkpoint.
      CHECK_THROWS_AS(io::load_tensors(tmp), IOError);
    }
    std::filesystem::remove(tmp);
    if (step == "2") io::save_tensors(path, {{"w", full<float>({16}, 1.f)}}, {{"step", "1"}});
  }
  REQUIRE(killed_mid_save);
}

}  // namespace io_checkpoint_test
