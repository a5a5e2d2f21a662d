#pragma once
/// \file cli.hpp
/// ExampleArgs: the command line every genmod example shares.
///
///     --data DIR  --out DIR  --epochs N  --batch-size N  --threads N  --seed S  --resume PATH  --help
///
/// Each example sets its own defaults and may register extra options with help text; errors name
/// the option and the bad value. `--name value` and `--name=value` are both accepted.
///
/// ```cpp
/// int main(int argc, char** argv) {
///   train::ExampleArgs args("vae", "Trains a VAE on Fashion-MNIST.", {.epochs = 20, .batch_size = 128});
///   double beta = 1.0;
///   args.add_option("--beta", beta, "weight of the KL term");
///   args.parse_or_exit(argc, argv);           // --help: prints and exits 0; bad input: exits 2
///   args.apply_threads();
///   train::Trainer trainer(args.trainer_options());
///   ...
/// }
/// ```

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/io/json.hpp"
#include "genmod/train/trainer.hpp"

namespace genmod::train {

/// A command line that cannot be parsed; the message names the option and the value.
class UsageError : public ValueError {
 public:
  using ValueError::ValueError;
};

/// Per-example defaults of the shared options.
struct ExampleDefaults {
  std::string data = {};            ///< empty: $GENMOD_DATA_DIR, else the Debian package's directory
  std::string out = "out";          ///< output directory
  std::int64_t epochs = 10;         ///< training epochs
  std::int64_t batch_size = 128;    ///< samples per batch
  int threads = 0;                  ///< 0: leave OMP_NUM_THREADS / the default
  std::uint64_t seed = 0;           ///< seed of initialization, shuffling and noise
};

/// The shared options of an example program, plus any it registers.
class ExampleArgs {
 public:
  std::string data;          ///< --data DIR
  std::string out;           ///< --out DIR
  std::int64_t epochs;       ///< --epochs N
  std::int64_t batch_size;   ///< --batch-size N
  int threads;               ///< --threads N
  std::uint64_t seed;        ///< --seed S
  std::string resume;        ///< --resume PATH (empty: start afresh)

  /// An argument set for program `program` described by `description`, with its defaults.
  ExampleArgs(std::string program, std::string description, ExampleDefaults defaults = {});

  // Options hold callbacks bound to this object's members: copying would leave them pointing at
  // the original.
  ExampleArgs(const ExampleArgs&) = delete;
  ExampleArgs& operator=(const ExampleArgs&) = delete;

  /// Registers an extra option `--name VALUE` bound to `value` (an integer, floating-point or
  /// string variable whose current value is the default). Integers must be >= `min_value`.
  template <class V>
  ExampleArgs& add_option(std::string name, V& value, std::string help, std::int64_t min_value = std::numeric_limits<std::int64_t>::min()) {
    V* p = &value;
    if constexpr (std::is_same_v<V, std::string>) {
      add(std::move(name), "TEXT", std::move(help), value, [p](std::string_view v) { *p = std::string(v); });
    } else if constexpr (std::is_same_v<V, bool>) {
      static_assert(!std::is_same_v<V, bool>, "ExampleArgs::add_option: use add_flag for a bool");
    } else if constexpr (std::is_integral_v<V>) {
      const std::string n = name;
      add(std::move(name), "N", std::move(help), std::to_string(value), [p, n, min_value](std::string_view v) {
        const std::int64_t lo = std::max<std::int64_t>(min_value, static_cast<std::int64_t>(std::numeric_limits<V>::min()));
        const std::int64_t hi = static_cast<std::int64_t>(std::min<std::uint64_t>(std::numeric_limits<V>::max(), std::numeric_limits<std::int64_t>::max()));
        *p = static_cast<V>(parse_int(n, v, lo, hi));
      });
    } else {
      static_assert(std::is_floating_point_v<V>, "ExampleArgs::add_option: supported types are integers, floating point and std::string");
      const std::string n = name;
      add(std::move(name), "X", std::move(help), io::format_number(static_cast<double>(value)),
          [p, n](std::string_view v) { *p = static_cast<V>(parse_real(n, v)); });
    }
    return *this;
  }

  /// Registers a flag `--name` (no value) that sets `value` to true.
  ExampleArgs& add_flag(std::string name, bool& value, std::string help) {
    bool* p = &value;
    check_new(name);
    opts_.push_back({std::move(name), "", std::move(help), "", true, [p](std::string_view) { *p = true; }});
    return *this;
  }

  /// Parses argv. Returns false when --help (or -h) was given (the caller prints help()); throws
  /// UsageError naming the option for an unknown option, a missing value or a bad value.
  bool parse(int argc, const char* const* argv);

  /// Parses argv; on --help prints help() to stdout and exits 0, on a bad command line prints the
  /// error and a hint to stderr and exits 2 (the usual status for usage errors).
  void parse_or_exit(int argc, const char* const* argv) {
    try {
      if (!parse(argc, argv)) {
        std::fputs(help().c_str(), stdout);
        std::exit(0);
      }
    } catch (const UsageError& e) {
      std::fprintf(stderr, "%s: %s\n", program_.c_str(), e.what());
      std::exit(2);
    }
  }
  /// Overload for main's `char**`.
  void parse_or_exit(int argc, char** argv) { parse_or_exit(argc, const_cast<const char* const*>(argv)); }
  /// Overload for main's `char**`.
  bool parse(int argc, char** argv) { return parse(argc, const_cast<const char* const*>(argv)); }

  /// The --help text: usage, description, and every option with its default.
  std::string help() const;

  /// Whether the last parse() saw option `name` on the command line (a program whose defaults
  /// depend on another option, such as epochs per model, keeps a value the user typed). Throws
  /// ValueError for a name that is not an option.
  bool given(std::string_view name) const {
    for (const auto& o : opts_)
      if (o.name == name) return o.given;
    throw ValueError("ExampleArgs::given: no option '" + std::string(name) + "' is defined");
  }

  /// Sets the worker threads when --threads was positive.
  void apply_threads() const {
    if (threads > 0) set_num_threads(threads);
  }

  /// Trainer options from the shared arguments: out_dir, epochs, resume, and the seed and batch
  /// size recorded in every checkpoint's metadata.
  TrainerOptions trainer_options() const;

 private:
  struct Option {
    std::string name, metavar, help, default_text;
    bool flag = false;
    std::function<void(std::string_view)> set;
    bool given = false;  // set by parse()
  };

  static std::string column(const Option& o) { return "  " + o.name + (o.metavar.empty() ? "" : " " + o.metavar); }

  void check_new(const std::string& name);

  void add(std::string name, std::string metavar, std::string help, std::string default_text,
           std::function<void(std::string_view)> set);

  Option* find(std::string_view name) {
    for (auto& o : opts_)
      if (o.name == name) return &o;
    return nullptr;
  }

  static std::int64_t parse_int(const std::string& name, std::string_view v, std::int64_t lo, std::int64_t hi);

  static std::uint64_t parse_u64(const std::string& name, std::string_view v);

  // A command line is not JSON: besides JSON numbers this takes what people type, ".5" and "5.";
  // "nan" and "inf" parse but are refused as not finite.
  static double parse_real(const std::string& name, std::string_view v);

  std::string program_, description_;
  std::vector<Option> opts_;
};

#if GENMOD_DETAIL_NONTEMPLATE_BODIES
// ExampleArgs's larger members: compiled where used in a header-only build, once in
// genmod/instantiate.cpp under GENMOD_EXTERN_TEMPLATES (genmod/detail/explicit_instantiation.hpp).

GENMOD_DETAIL_NONTEMPLATE void ExampleArgs::add(std::string name, std::string metavar, std::string help,
                                                std::string default_text, std::function<void(std::string_view)> set) {
  check_new(name);
  opts_.push_back(
      {std::move(name), std::move(metavar), std::move(help), std::move(default_text), false, std::move(set)});
}

GENMOD_DETAIL_NONTEMPLATE void ExampleArgs::check_new(const std::string& name) {
  if (name.size() < 3 || name.substr(0, 2) != "--" || name.find('=') != std::string::npos)
    throw ValueError("ExampleArgs: option name '" + name + "' must look like --name");
  if (name == "--help" || find(name)) throw ValueError("ExampleArgs: option '" + name + "' is already defined");
}
#endif  // GENMOD_DETAIL_NONTEMPLATE_BODIES

#if GENMOD_DETAIL_NONTEMPLATE_BODIES
// ExampleArgs's larger members: compiled where used in a header-only build, once in
// genmod/instantiate.cpp under GENMOD_EXTERN_TEMPLATES (genmod/detail/explicit_instantiation.hpp).

GENMOD_DETAIL_NONTEMPLATE ExampleArgs::ExampleArgs(std::string program, std::string description,
                                                   ExampleDefaults defaults)
    : data(defaults.data),
      out(defaults.out),
      epochs(defaults.epochs),
      batch_size(defaults.batch_size),
      threads(defaults.threads),
      seed(defaults.seed),
      program_(std::move(program)),
      description_(std::move(description)) {
  add("--data", "DIR", "directory of the dataset files",
      data.empty() ? "$GENMOD_DATA_DIR or /usr/share/datasets/fashion-mnist" : data,
      [this](std::string_view v) { data = std::string(v); });
  add("--out", "DIR", "directory for metrics.jsonl, pictures and checkpoint.npz", out,
      [this](std::string_view v) { out = std::string(v); });
  add_option("--epochs", epochs, "number of training epochs", 1);
  add_option("--batch-size", batch_size, "samples per mini-batch", 1);
  add("--threads", "N", "worker threads (0: OMP_NUM_THREADS or all cores)", std::to_string(threads),
      [this](std::string_view v) { threads = static_cast<int>(parse_int("--threads", v, 0, 4096)); });
  add("--seed", "S", "random seed (initialization, shuffling, noise)", std::to_string(seed),
      [this](std::string_view v) { seed = parse_u64("--seed", v); });
  add("--resume", "PATH", "checkpoint to resume from (e.g. OUT/checkpoint.npz)", "",
      [this](std::string_view v) { resume = std::string(v); });
}

GENMOD_DETAIL_NONTEMPLATE bool ExampleArgs::parse(int argc, const char* const* argv) {
  for (auto& o : opts_) o.given = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") return false;
    if (a.substr(0, 2) != "--")
      throw UsageError("unexpected argument '" + std::string(a) + "' (options start with --; see --help)");
    std::string_view name = a, value;
    bool has_value = false;
    if (const auto eq = a.find('='); eq != std::string_view::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    Option* o = find(name);
    if (!o) throw UsageError("unknown option '" + std::string(name) + "' (see --help)");
    o->given = true;
    if (o->flag) {
      if (has_value) throw UsageError("option '" + o->name + "' takes no value, got '" + std::string(value) + "'");
      o->set({});
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) throw UsageError("option '" + o->name + "' needs a value (" + o->metavar + ")");
      value = argv[++i];
    }
    o->set(value);
  }
  return true;
}

GENMOD_DETAIL_NONTEMPLATE std::string ExampleArgs::help() const {
  std::string s = "usage: " + program_ + " [options]\n";
  if (!description_.empty()) s += "\n" + description_ + "\n";
  s += "\noptions:\n";
  std::size_t w = 0;
  for (const auto& o : opts_) w = std::max(w, column(o).size());
  w = std::max<std::size_t>(w, std::string_view("  -h, --help").size());
  auto pad = [w](std::string c) { return c + std::string(w + 2 - c.size(), ' '); };
  for (const auto& o : opts_) {
    s += pad(column(o)) + o.help;
    if (!o.flag && !o.default_text.empty()) s += " (default: " + o.default_text + ")";
    s += "\n";
  }
  s += pad("  -h, --help") + "print this help and exit\n";
  return s;
}

GENMOD_DETAIL_NONTEMPLATE TrainerOptions ExampleArgs::trainer_options() const {
  TrainerOptions o;
  o.out_dir = out;
  o.epochs = epochs;
  o.resume = resume;
  o.metadata["args.seed"] = std::to_string(seed);
  o.metadata["args.batch_size"] = std::to_string(batch_size);
  return o;
}

GENMOD_DETAIL_NONTEMPLATE std::int64_t ExampleArgs::parse_int(const std::string& name, std::string_view v,
                                                              std::int64_t lo, std::int64_t hi) {
  std::int64_t x = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || r.ec == std::errc::invalid_argument || r.ptr != v.data() + v.size())
    throw UsageError("option '" + name + "' expects an integer, got '" + std::string(v) + "'");
  if (r.ec == std::errc::result_out_of_range || x < lo || x > hi)
    throw UsageError("option '" + name + "' must be " +
                     (hi == std::numeric_limits<std::int64_t>::max()
                          ? "at least " + std::to_string(lo)
                          : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]") +
                     ", got '" + std::string(v) + "'");
  return x;
}

GENMOD_DETAIL_NONTEMPLATE std::uint64_t ExampleArgs::parse_u64(const std::string& name, std::string_view v) {
  std::uint64_t x = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size())
    throw UsageError("option '" + name + "' expects a non-negative integer below 2^64, got '" + std::string(v) + "'");
  return x;
}

GENMOD_DETAIL_NONTEMPLATE double ExampleArgs::parse_real(const std::string& name, std::string_view v) {
  double x = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size() || !std::isfinite(x))
    throw UsageError("option '" + name + "' expects a finite number, got '" + std::string(v) + "'");
  return x;
}
#endif  // GENMOD_DETAIL_NONTEMPLATE_BODIES

}  // namespace genmod::train
