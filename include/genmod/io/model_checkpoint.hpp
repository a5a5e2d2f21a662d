#pragma once
/// \file model_checkpoint.hpp
/// Checkpoints of a model, its optimizer and the training position: what a run needs to resume
/// exactly. Built on save_tensors/load_into (checkpoint.hpp), so the file is an .npz numpy opens.
///
/// Keys: "model.<parameter or buffer name>" (e.g. "model.encoder.0.weight",
/// "model.bn.running_mean"), "optim.<state name>" (e.g. "optim.0.weight.exp_avg", "optim.step"),
/// and metadata "step", "epoch", "rng.seed", "rng.stream", "rng.offset" plus the caller's own
/// entries. Loading checks every name and shape before copying anything into the model.

#include <cstdint>
#include <string>
#include <utility>

#include "genmod/core/random.hpp"
#include "genmod/io/checkpoint.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/optim/optimizer.hpp"

namespace genmod::io {

/// Where training stands: saved beside the tensors.
struct TrainingState {
  std::int64_t step = 0;   ///< optimizer steps taken
  std::int64_t epoch = 0;  ///< epochs completed
  bool has_rng = false;    ///< whether `rng` is meaningful
  GeneratorState rng{};    ///< the training generator (noise, shuffling) to continue exactly
  Metadata extra{};        ///< the caller's own entries (hyperparameters, notes)
};

namespace detail {

inline std::string to_decimal(std::uint64_t v) { return std::to_string(v); }

inline std::uint64_t parse_u64(const Metadata& m, const std::string& key, const std::string& path) {
  const auto it = m.find(key);
  if (it == m.end()) throw IOError(path + ": checkpoint metadata has no '" + key + "'");
  try {
    std::size_t used = 0;
    const unsigned long long v = std::stoull(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing characters");
    return static_cast<std::uint64_t>(v);
  } catch (const std::exception&) {
    throw IOError(path + ": checkpoint metadata '" + key + "' is not a non-negative integer: '" + it->second + "'");
  }
}

/// The model's (and optimizer's) tensors under their checkpoint keys, as float tensors that share
/// the model's buffers (T = float) or copies (other T).
template <class T>
NamedTensors checkpoint_entries(nn::Module<T>& model, optim::Optimizer<T>* opt) {
  NamedTensors out;
  auto as_float = [](const Tensor<T>& t) {
    if constexpr (std::is_same_v<T, float>) return t;
    else return t.template cast<float>();
  };
  for (auto& p : model.named_parameters()) out.emplace_back("model." + p.name, as_float(p.parameter.value()));
  for (auto& b : model.named_buffers()) out.emplace_back("model." + b.name, as_float(b.tensor));
  if (opt)
    for (auto& [name, t] : opt->state()) out.emplace_back("optim." + name, as_float(t));
  return out;
}

}  // namespace detail

/// Saves the model, the optimizer (if any) and the training state to `path`, atomically.
template <class T>
void save_checkpoint(const std::string& path, nn::Module<T>& model, optim::Optimizer<T>* optimizer,
                     const TrainingState& state = {}, SaveOptions options = {}) {
  Metadata meta = state.extra;
  meta["step"] = std::to_string(state.step);
  meta["epoch"] = std::to_string(state.epoch);
  if (state.has_rng) {
    meta["rng.seed"] = detail::to_decimal(state.rng.seed);
    meta["rng.stream"] = detail::to_decimal(state.rng.stream);
    meta["rng.offset"] = detail::to_decimal(state.rng.offset);
  }
  meta["format"] = "genmod-checkpoint-1";
  save_tensors(path, detail::checkpoint_entries(model, optimizer), meta, options);
}

/// Saves the model alone.
template <class T>
void save_checkpoint(const std::string& path, nn::Module<T>& model) {
  save_checkpoint<T>(path, model, nullptr);
}

/// Loads a checkpoint into `model` (and `optimizer`): every expected name must be in the file
/// with the same shape, or IOError names the first that is missing or differs (both shapes);
/// nothing is modified unless everything matches. Returns the saved training state.
template <class T>
TrainingState load_checkpoint(const std::string& path, nn::Module<T>& model, optim::Optimizer<T>* optimizer = nullptr) {
  TrainingState st;
  Metadata meta;
  if constexpr (std::is_same_v<T, float>) {
    NamedTensors model_entries = detail::checkpoint_entries<T>(model, nullptr);
    if (!optimizer) {
      meta = load_into(path, model_entries, {.strict = false});
    } else {
      // Optimizer state goes through load_state, which checks and copies its own entries.
      NamedTensors all = model_entries;
      optim::StateDict<T> opt_state = optimizer->state();
      for (auto& [name, t] : opt_state) all.emplace_back("optim." + name, zeros<float>(t.shape()));
      meta = load_into(path, all, {.strict = false});
      for (std::size_t i = 0; i < opt_state.size(); ++i) opt_state[i].second = all[model_entries.size() + i].second;
      optimizer->load_state(opt_state);
    }
  } else {
    // Other element types: read, check and convert.
    NamedTensors entries = detail::checkpoint_entries<T>(model, optimizer);
    meta = load_into(path, entries, {.strict = false});
    std::size_t i = 0;
    for (auto& p : model.named_parameters()) p.parameter.value().copy_from(entries[i++].second.template cast<T>());
    for (auto& b : model.named_buffers()) b.tensor.copy_from(entries[i++].second.template cast<T>());
    if (optimizer) {
      optim::StateDict<T> opt_state = optimizer->state();
      for (auto& e : opt_state) e.second = entries[i++].second.template cast<T>();
      optimizer->load_state(opt_state);
    }
  }
  st.step = static_cast<std::int64_t>(detail::parse_u64(meta, "step", path));
  st.epoch = static_cast<std::int64_t>(detail::parse_u64(meta, "epoch", path));
  if (meta.count("rng.seed")) {
    st.has_rng = true;
    st.rng = {detail::parse_u64(meta, "rng.seed", path), detail::parse_u64(meta, "rng.stream", path),
              detail::parse_u64(meta, "rng.offset", path)};
  }
  for (auto& [k, v] : meta)
    if (k != "step" && k != "epoch" && k != "format" && k.rfind("rng.", 0) != 0) st.extra[k] = v;
  return st;
}

}  // namespace genmod::io
