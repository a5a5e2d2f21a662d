#pragma once
/// \file model_checkpoint.hpp
/// Checkpoints of modules, their optimizers and random generators: what a run needs to resume
/// exactly. One class, CheckpointSet, owns the key layout and is the only code that writes or reads
/// it; save_checkpoint / load_checkpoint (one module named "model", an optional generator named
/// "rng") and train::CheckpointSet (the Trainer's) are that class, so a file written by any entry
/// point is read by every other. The file is an .npz numpy opens (save_tensors, checkpoint.hpp).
///
/// Key layout (docs/checkpoints.md):
///
/// | entry                                  | what                                                 |
/// |----------------------------------------|------------------------------------------------------|
/// | `<module>.<param or buffer>`           | a module's tensors, e.g. `model.encoder.0.weight`    |
/// | `optim.<state>`                        | optimizer state of the module named `model`          |
/// | `optim.<module>.<state>`               | optimizer state of any other module                  |
/// | metadata `step`, `epoch`               | training position (decimal)                          |
/// | metadata `<gen>.seed/.stream/.offset`  | each generator's state (decimal), e.g. `rng.seed`    |
/// | metadata `format`                      | `genmod-checkpoint-1`                                |
/// | any other metadata                     | the caller's own (hyperparameters, trainer position) |
///
/// Guarantees: a save is atomic (temporary file, fsync, rename: a crash mid-save leaves the
/// previous checkpoint) and refuses a non-finite tensor (NumericError) so a diverged run never
/// replaces its last good checkpoint. A load reads the whole file, checks every name, shape and
/// metadata entry, and only then copies: a failed load changes nothing. A missing, truncated or
/// corrupt file, or one that does not fit, throws IOError naming the file and every problem.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/random.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/io/checkpoint.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/optim/optimizer.hpp"

namespace genmod::io {

/// Value of the `format` metadata entry of every checkpoint CheckpointSet writes.
inline constexpr std::string_view kCheckpointFormat = "genmod-checkpoint-1";

/// The training position read back from a checkpoint.
struct LoadedState {
  std::int64_t step = 0;   ///< the "step" entry
  std::int64_t epoch = 0;  ///< the "epoch" entry (epochs completed)
  Metadata extra{};        ///< every other metadata entry but `format` and the registered generators'
};

namespace detail {

/// Parses a metadata entry as a finite double (as check_number writes it, read back exactly) into
/// `out`; otherwise appends the problem to `problems` and returns false.
inline bool read_double(const Metadata& m, const std::string& key, double& out, std::string& problems) {
  const auto it = m.find(key);
  if (it == m.end()) {
    problems += "\n  missing metadata: '" + key + "'";
    return false;
  }
  const std::string& s = it->second;
  double v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(v)) {
    problems += "\n  metadata '" + key + "' is not a finite number: '" + s + "'";
    return false;
  }
  out = v;
  return true;
}

/// Parses a metadata entry as a decimal uint64 (digits only, no sign, no overflow) into `out`;
/// otherwise appends the problem to `problems` and returns false.
inline bool read_u64(const Metadata& m, const std::string& key, std::uint64_t& out, std::string& problems) {
  const auto it = m.find(key);
  if (it == m.end()) {
    problems += "\n  missing metadata: '" + key + "'";
    return false;
  }
  const std::string& s = it->second;
  std::uint64_t v = 0;
  bool ok = !s.empty() && s.size() <= 20;
  for (const char c : s) {
    if (!ok) break;
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (~std::uint64_t{0} - d) / 10) ok = false;  // v * 10 + d would wrap
    v = v * 10 + d;
  }
  if (!ok) {
    problems += "\n  metadata '" + key + "' is not a non-negative integer: '" + s + "'";
    return false;
  }
  out = v;
  return true;
}

/// A module's or optimizer's tensor as the float tensor a checkpoint holds: the same buffer for
/// T = float, a converted copy otherwise.
template <class T>
Tensor<float> as_float(const Tensor<T>& t) {
  if constexpr (std::is_same_v<T, float>)
    return t;
  else
    return t.template cast<float>();
}

/// The inverse of as_float: the checkpoint's tensor as a Tensor<T>.
template <class T>
Tensor<T> from_float(const Tensor<float>& t) {
  if constexpr (std::is_same_v<T, float>)
    return t;
  else
    return t.template cast<T>();
}

}  // namespace detail

/// The modules, optimizers and random generators of a run, saved and loaded together under the
/// key layout above. Modules of element type T are stored as float32 (exact for T = float).
template <class T = float>
class CheckpointSet {
 public:
  /// Adds a module (and optionally its optimizer) whose tensors are saved under `name` + '.'. Names are
  /// non-empty, unique, without '.', not starting with "__", and not "optim" (optimizer state).
  CheckpointSet& add(std::string name, nn::Module<T>& module, optim::Optimizer<T>* optimizer = nullptr) {
    check_name(name, "module");
    if (name == "optim")
      throw ValueError("CheckpointSet: 'optim' is reserved for optimizer state; name the module otherwise");
    for (const auto& c : components_)
      if (c.name == name) throw ValueError("CheckpointSet: a module named '" + name + "' was already added");
    components_.push_back({std::move(name), &module, optimizer});
    return *this;
  }

  /// Adds a generator whose state is saved as metadata `name.seed`, `name.stream`, `name.offset`.
  CheckpointSet& add_generator(Generator& generator, std::string name = "rng") {
    check_name(name, "generator");
    if (name == "step" || name == "epoch" || name == "format" || name == "trainer")
      throw ValueError("CheckpointSet: generator name '" + name + "' is reserved");
    for (const auto& g : generators_)
      if (g.first == name) throw ValueError("CheckpointSet: a generator named '" + name + "' was already added");
    generators_.emplace_back(std::move(name), &generator);
    return *this;
  }

  /// True when nothing was added.
  bool empty() const noexcept { return components_.empty() && generators_.empty(); }

  /// Calls f(module) for every module added (e.g. to switch them to evaluation mode).
  template <class F>
  void for_each_module(F&& f) const {
    for (const auto& c : components_) f(*c.module);
  }

  /// Every tensor to save, under its checkpoint key, in a fixed order (per module: parameters,
  /// buffers, optimizer state). For T = float they share the live buffers: no copy.
  NamedTensors entries() const {
    NamedTensors out;
    for (const auto& c : components_) {
      for (auto& p : c.module->named_parameters())
        out.emplace_back(c.name + "." + p.name, detail::as_float(p.parameter.value()));
      for (auto& b : c.module->named_buffers()) out.emplace_back(c.name + "." + b.name, detail::as_float(b.tensor));
      if (c.optimizer)
        for (auto& [n, t] : c.optimizer->state()) out.emplace_back(optim_prefix(c.name) + n, detail::as_float(t));
    }
    return out;
  }

  /// The name and first offending element of a tensor holding NaN or Inf, or an empty string.
  std::string first_non_finite() const {
    for (const auto& [name, t] : entries())
      for (std::int64_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(t.data()[i]))
          return "'" + name + "' holds " + std::to_string(t.data()[i]) + " at element " + std::to_string(i);
    return {};
  }

  /// Saves every module, optimizer and generator plus `step`, `epoch` and `extra` to `path`,
  /// atomically. Throws NumericError (and leaves `path` untouched) when a tensor is not finite,
  /// ValueError when `extra` uses a key the layout reserves (`step`, `epoch`, `format`, a
  /// registered generator's), and IOError when the file cannot be written.
  void save(const std::string& path, std::int64_t step, std::int64_t epoch, const Metadata& extra = {},
            SaveOptions options = {}) const {
    if (step < 0 || epoch < 0)
      throw ValueError("CheckpointSet::save('" + path + "'): step and epoch must be >= 0, got step " +
                       std::to_string(step) + ", epoch " + std::to_string(epoch));
    if (const std::string bad = first_non_finite(); !bad.empty())
      throw NumericError("not saving checkpoint '" + path + "': " + bad + "; the previous checkpoint is kept");
    for (const auto& [k, v] : extra)
      if (is_reserved_key(k))
        throw ValueError("CheckpointSet::save('" + path + "'): metadata key '" + k +
                         "' is reserved for the checkpoint layout; rename it");
    Metadata meta = extra;
    meta["step"] = std::to_string(step);
    meta["epoch"] = std::to_string(epoch);
    meta["format"] = std::string(kCheckpointFormat);
    for (const auto& [name, g] : generators_) {
      const GeneratorState s = g->state();
      meta[name + ".seed"] = std::to_string(s.seed);
      meta[name + ".stream"] = std::to_string(s.stream);
      meta[name + ".offset"] = std::to_string(s.offset);
    }
    save_tensors(path, entries(), meta, options);
  }

  /// Loads `path` into every module, optimizer and generator and returns the training position.
  /// With `strict` (the default) a tensor that belongs to no registered module is an error; without,
  /// it is ignored (e.g. loading only the model of a checkpoint that also holds optimizer state).
  LoadedState load(const std::string& path, LoadOptions options = {}) const {
    return load(load_tensors(path), path, options);
  }

  /// Loads an already-read checkpoint (load_tensors(path)) into everything registered. Checks
  /// everything first: every expected tensor with its shape, every generator's and the position's
  /// metadata, the format, the optimizers' own checks; on any problem throws IOError naming `path`
  /// and listing each problem, and changes nothing.
  LoadedState load(const TensorFile& file, const std::string& path, LoadOptions options = {}) const {
    std::string problems;
    const NamedTensors expected = entries();
    const std::vector<const Tensor<float>*> found = detail::match_tensors(file, expected, options.strict, problems);
    if (const auto it = file.metadata.find("format"); it != file.metadata.end() && it->second != kCheckpointFormat)
      problems += "\n  metadata 'format' is '" + it->second + "', expected '" + std::string(kCheckpointFormat) +
                  "' (written by a newer genmod?)";
    std::vector<GeneratorState> gen_states;
    for (const auto& [name, g] : generators_) {
      GeneratorState s{};
      detail::read_u64(file.metadata, name + ".seed", s.seed, problems);
      detail::read_u64(file.metadata, name + ".stream", s.stream, problems);
      detail::read_u64(file.metadata, name + ".offset", s.offset, problems);
      gen_states.push_back(s);
    }
    std::uint64_t step = 0, epoch = 0;
    detail::read_u64(file.metadata, "step", step, problems);
    detail::read_u64(file.metadata, "epoch", epoch, problems);
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (step > kMax || epoch > kMax) problems += "\n  metadata 'step' or 'epoch' is beyond 2^63 - 1";
    if (!problems.empty()) throw IOError(path + ": checkpoint does not match what it is loaded into:" + problems);

    // Everything matches: copy. Optimizer state goes first, through load_state, which validates
    // its values (e.g. a negative step count) before writing anything. Should a later optimizer
    // refuse, the earlier ones are put back from a copy, so the run is untouched either way.
    std::vector<std::pair<optim::Optimizer<T>*, optim::StateDict<T>>> loaded;
    std::size_t i = 0;
    std::vector<std::size_t> module_start;
    try {
      for (const auto& c : components_) {
        module_start.push_back(i);
        i += c.module->named_parameters().size() + c.module->named_buffers().size();
        if (!c.optimizer) continue;
        optim::StateDict<T> backup = c.optimizer->state();
        for (auto& e : backup) e.second = e.second.clone();
        optim::StateDict<T> st = c.optimizer->state();
        for (auto& e : st) e.second = detail::from_float<T>(*found[i++]);
        c.optimizer->load_state(st);
        loaded.emplace_back(c.optimizer, std::move(backup));
      }
    } catch (const Error& e) {
      for (auto& [opt, backup] : loaded) opt->load_state(backup);
      throw IOError(path + ": checkpoint holds an invalid optimizer state: " + e.what());
    }
    for (std::size_t k = 0; k < components_.size(); ++k) {
      std::size_t j = module_start[k];
      for (auto& p : components_[k].module->named_parameters())
        p.parameter.value().copy_from(detail::from_float<T>(*found[j++]));
      for (auto& b : components_[k].module->named_buffers()) b.tensor.copy_from(detail::from_float<T>(*found[j++]));
    }
    for (std::size_t k = 0; k < generators_.size(); ++k) generators_[k].second->set_state(gen_states[k]);

    LoadedState out;
    out.step = static_cast<std::int64_t>(step);
    out.epoch = static_cast<std::int64_t>(epoch);
    for (const auto& [k, v] : file.metadata)
      if (!is_reserved_key(k)) out.extra[k] = v;
    return out;
  }

 private:
  struct Component {
    std::string name;
    nn::Module<T>* module;
    optim::Optimizer<T>* optimizer;
  };

  // The module named "model" keeps the short "optim." prefix (the single-model layout); others get
  // their own, so that two optimizers' "0.weight.exp_avg" do not collide.
  static std::string optim_prefix(const std::string& name) {
    return name == "model" ? "optim." : "optim." + name + ".";
  }

  static void check_name(const std::string& name, const char* what) {
    if (name.empty() || name.find('.') != std::string::npos || name.rfind("__", 0) == 0)
      throw ValueError(std::string("CheckpointSet: ") + what + " name '" + name +
                       "' must be non-empty, contain no '.', and not start with '__'");
  }

  // Metadata keys the layout writes itself.
  bool is_reserved_key(const std::string& k) const {
    if (k == "step" || k == "epoch" || k == "format") return true;
    for (const auto& g : generators_)
      if (k == g.first + ".seed" || k == g.first + ".stream" || k == g.first + ".offset") return true;
    return false;
  }

  std::vector<Component> components_;
  std::vector<std::pair<std::string, Generator*>> generators_;
};

/// Where training stands: saved beside the tensors by save_checkpoint.
struct TrainingState {
  std::int64_t step = 0;   ///< optimizer steps taken
  std::int64_t epoch = 0;  ///< epochs completed
  bool has_rng = false;    ///< whether `rng` is meaningful
  GeneratorState rng{};    ///< the training generator (noise, shuffling) to continue exactly
  Metadata extra{};        ///< the caller's own entries (hyperparameters, notes)
};

/// Saves `model` (as module "model"), the optimizer (if any) and the training state (its generator
/// as "rng" when has_rng) to `path`, atomically: CheckpointSet's layout and guarantees.
template <class T>
void save_checkpoint(const std::string& path, nn::Module<T>& model, optim::Optimizer<T>* optimizer,
                     const TrainingState& state = {}, SaveOptions options = {}) {
  CheckpointSet<T> set;
  set.add("model", model, optimizer);
  Generator rng;
  if (state.has_rng) {
    rng.set_state(state.rng);
    set.add_generator(rng, "rng");
  }
  set.save(path, state.step, state.epoch, state.extra, options);
}

/// Saves the model alone.
template <class T>
void save_checkpoint(const std::string& path, nn::Module<T>& model) {
  save_checkpoint<T>(path, model, nullptr);
}

/// Loads a checkpoint into `model` (and `optimizer`): every expected name must be in the file with
/// the same shape, or IOError names each that is missing or differs (both shapes); nothing is
/// modified unless everything matches. Tensors the caller did not ask for (another module's, or the
/// optimizer state when `optimizer` is null) are ignored. Returns the saved training state; the
/// generator "rng" is read when the file has one (has_rng).
template <class T>
TrainingState load_checkpoint(const std::string& path, nn::Module<T>& model, optim::Optimizer<T>* optimizer = nullptr) {
  const TensorFile file = load_tensors(path);
  CheckpointSet<T> set;
  set.add("model", model, optimizer);
  Generator rng;
  const bool has_rng = file.metadata.count("rng.seed") > 0;
  if (has_rng) set.add_generator(rng, "rng");
  LoadedState loaded = set.load(file, path, {.strict = false});
  TrainingState st;
  st.step = loaded.step;
  st.epoch = loaded.epoch;
  st.has_rng = has_rng;
  if (has_rng) st.rng = rng.state();
  st.extra = std::move(loaded.extra);
  return st;
}

}  // namespace genmod::io

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::io::CheckpointSet, float)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::io::CheckpointSet, double)
#endif
