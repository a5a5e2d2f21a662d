#pragma once
/// \file checkpoint.hpp
/// CheckpointSet: everything a training run must save to resume exactly, gathered from several
/// components: one or more (name, module, optimizer) triples (a GAN's generator and discriminator,
/// each with its own optimizer) and any number of named random generators (noise, dropout masks).
///
/// Key layout (an .npz as in docs/checkpoints.md; also in docs/training.md):
///
/// | entry                        | what                                                      |
/// |------------------------------|-----------------------------------------------------------|
/// | `<name>.<param or buffer>`   | the module's tensors, e.g. `generator.0.weight`            |
/// | `optim.<state>`              | optimizer state of the component named `model`             |
/// | `optim.<name>.<state>`       | optimizer state of any other component                     |
/// | metadata `step`, `epoch`     | training position                                          |
/// | metadata `<gen>.seed`, `<gen>.stream`, `<gen>.offset` | each generator's state (decimal) |
/// | metadata `format`            | `genmod-checkpoint-1`                                      |
///
/// A single component named `model` with a generator named `rng` gives exactly the layout of
/// io::save_checkpoint, so io::load_checkpoint reads the trainer's checkpoints and vice versa.
///
/// Loading reads the whole file, checks every name and shape and every generator's metadata, and
/// only then copies: a failed load changes nothing. Saving refuses a non-finite parameter, buffer
/// or optimizer state (NumericError), so a diverged run never overwrites its last good checkpoint.

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/random.hpp"
#include "genmod/io/checkpoint.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/optim/optimizer.hpp"

namespace genmod::train {

/// The training position read back from a checkpoint.
struct LoadedState {
  std::int64_t step = 0;   ///< the "step" entry
  std::int64_t epoch = 0;  ///< the "epoch" entry (epochs completed)
  io::Metadata extra{};    ///< every other metadata entry (the trainer's own and the caller's)
};

/// The modules, optimizers and generators of a run, saved and loaded together.
class CheckpointSet {
 public:
  /// Adds a module (and optionally its optimizer) whose tensors are saved under `name.`. Names are
  /// non-empty, unique, without '.', and not "optim" (that prefix holds optimizer state).
  CheckpointSet& add(std::string name, nn::Module<float>& module, optim::Optimizer<float>* optimizer = nullptr) {
    check_name(name, "module");
    if (name == "optim") throw ValueError("CheckpointSet: 'optim' is reserved for optimizer state; name the module otherwise");
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

  /// Every tensor to save, under its checkpoint key (sharing the live buffers: no copy).
  io::NamedTensors entries() const {
    io::NamedTensors out;
    for (const auto& c : components_) {
      for (auto& p : c.module->named_parameters()) out.emplace_back(c.name + "." + p.name, p.parameter.value());
      for (auto& b : c.module->named_buffers()) out.emplace_back(c.name + "." + b.name, b.tensor);
      if (c.optimizer)
        for (auto& [n, t] : c.optimizer->state()) out.emplace_back(optim_prefix(c.name) + n, t);
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

  /// Saves every component and generator plus `step`, `epoch` and `extra` to `path`, atomically.
  /// Throws NumericError (and leaves `path` untouched) when any tensor is not finite.
  void save(const std::string& path, std::int64_t step, std::int64_t epoch, const io::Metadata& extra = {}) const {
    if (const std::string bad = first_non_finite(); !bad.empty())
      throw NumericError("not saving checkpoint '" + path + "': " + bad + "; the previous checkpoint is kept");
    io::Metadata meta = extra;
    meta["step"] = std::to_string(step);
    meta["epoch"] = std::to_string(epoch);
    meta["format"] = "genmod-checkpoint-1";
    for (const auto& [name, g] : generators_) {
      const GeneratorState s = g->state();
      meta[name + ".seed"] = std::to_string(s.seed);
      meta[name + ".stream"] = std::to_string(s.stream);
      meta[name + ".offset"] = std::to_string(s.offset);
    }
    io::save_tensors(path, entries(), meta);
  }

  /// Loads `path` into every component and generator and returns the training position. Checks
  /// everything first (every expected tensor present with its shape, no unexpected tensor, every
  /// generator's entries); on any mismatch throws IOError listing each problem and changes nothing.
  LoadedState load(const std::string& path) const {
    io::TensorFile file = io::load_tensors(path);
    std::string problems;
    io::NamedTensors expected = entries();
    std::vector<const Tensor<float>*> found(expected.size(), nullptr);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const auto& [name, t] = expected[i];
      const Tensor<float>* f = file.find(name);
      if (!f)
        problems += "\n  missing: '" + name + "' (expected shape " + t.shape().to_string() + ")";
      else if (!(f->shape() == t.shape()))
        problems += "\n  shape mismatch: '" + name + "' is " + f->shape().to_string() + " in the checkpoint, expected " +
                    t.shape().to_string();
      found[i] = f;
    }
    for (const auto& [name, t] : file.tensors) {
      bool asked = false;
      for (const auto& e : expected) asked = asked || e.first == name;
      if (!asked) problems += "\n  unexpected: '" + name + "' " + t.shape().to_string() + " is in the checkpoint but belongs to no component";
    }
    std::vector<GeneratorState> gen_states;
    for (const auto& [name, g] : generators_) {
      GeneratorState s{};
      bool ok = parse_u64(file.metadata, name + ".seed", s.seed, problems);
      ok = parse_u64(file.metadata, name + ".stream", s.stream, problems) && ok;
      ok = parse_u64(file.metadata, name + ".offset", s.offset, problems) && ok;
      gen_states.push_back(s);
    }
    std::uint64_t step = 0, epoch = 0;
    parse_u64(file.metadata, "step", step, problems);
    parse_u64(file.metadata, "epoch", epoch, problems);
    if (!problems.empty()) throw IOError(path + ": checkpoint does not match the training run:" + problems);

    // Everything matches: copy. Optimizer state goes first, through load_state, which validates
    // its values (a negative step count) before writing anything, so the modules stay untouched
    // if it refuses.
    std::size_t i = 0;
    std::vector<std::size_t> module_start;
    for (const auto& c : components_) {
      module_start.push_back(i);
      i += c.module->named_parameters().size() + c.module->named_buffers().size();
      if (c.optimizer) {
        optim::StateDict<float> st = c.optimizer->state();
        for (auto& e : st) e.second = *found[i++];
        c.optimizer->load_state(st);
      }
    }
    for (std::size_t k = 0; k < components_.size(); ++k) {
      std::size_t j = module_start[k];
      for (auto& p : components_[k].module->named_parameters()) p.parameter.value().copy_from(*found[j++]);
      for (auto& b : components_[k].module->named_buffers()) b.tensor.copy_from(*found[j++]);
    }
    for (std::size_t k = 0; k < generators_.size(); ++k) generators_[k].second->set_state(gen_states[k]);

    LoadedState out;
    out.step = static_cast<std::int64_t>(step);
    out.epoch = static_cast<std::int64_t>(epoch);
    for (const auto& [k, v] : file.metadata) {
      if (k == "step" || k == "epoch" || k == "format") continue;
      bool is_gen = false;
      for (const auto& g : generators_) is_gen = is_gen || k.rfind(g.first + ".", 0) == 0;
      if (!is_gen) out.extra[k] = v;
    }
    return out;
  }

 private:
  struct Component {
    std::string name;
    nn::Module<float>* module;
    optim::Optimizer<float>* optimizer;
  };

  // The component named "model" keeps io::save_checkpoint's "optim." prefix (compatibility);
  // others get their own so that two optimizers' "0.weight.exp_avg" do not collide.
  static std::string optim_prefix(const std::string& name) { return name == "model" ? "optim." : "optim." + name + "."; }

  static void check_name(const std::string& name, const char* what) {
    if (name.empty() || name.find('.') != std::string::npos || name.rfind("__", 0) == 0)
      throw ValueError(std::string("CheckpointSet: ") + what + " name '" + name +
                       "' must be non-empty, contain no '.', and not start with '__'");
  }

  static bool parse_u64(const io::Metadata& m, const std::string& key, std::uint64_t& out, std::string& problems) {
    const auto it = m.find(key);
    if (it == m.end()) {
      problems += "\n  missing metadata: '" + key + "'";
      return false;
    }
    const std::string& s = it->second;
    std::uint64_t v = 0;
    bool ok = !s.empty() && s.size() <= 20;
    for (char c : s) ok = ok && c >= '0' && c <= '9';
    if (ok) {
      for (char c : s) {
        const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
        if (v > (~std::uint64_t{0} - d) / 10) ok = false;
        v = v * 10 + d;
      }
    }
    if (!ok) {
      problems += "\n  metadata '" + key + "' is not a non-negative integer: '" + s + "'";
      return false;
    }
    out = v;
    return true;
  }

  std::vector<Component> components_;
  std::vector<std::pair<std::string, Generator*>> generators_;
};

}  // namespace genmod::train
