#pragma once
/// \file checkpoint.hpp
/// train::CheckpointSet: everything a training run must save to resume exactly, gathered from
/// several components: one or more (name, module, optimizer) triples (a GAN's generator and
/// discriminator, each with its own optimizer) and any number of named random generators (noise,
/// dropout masks).
///
/// It is io::CheckpointSet<float> (io/model_checkpoint.hpp), the one implementation of genmod's
/// checkpoint layout, which io::save_checkpoint / io::load_checkpoint also use: a single module
/// named `model` with a generator named `rng` is exactly their layout, so io::load_checkpoint reads
/// the Trainer's checkpoints and vice versa. The key layout and the guarantees (atomic saves, no
/// non-finite state saved, nothing changed by a failed load, IOError for a corrupt file) are
/// documented there and in docs/checkpoints.md.

#include "genmod/io/model_checkpoint.hpp"

namespace genmod::train {

/// The modules, optimizers and generators of a run, saved and loaded together (see io::CheckpointSet).
using CheckpointSet = io::CheckpointSet<float>;

/// The training position read back from a checkpoint (see io::LoadedState).
using LoadedState = io::LoadedState;

}  // namespace genmod::train
