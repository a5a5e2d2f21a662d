#pragma once
/// \file train.hpp
/// The training layer: Trainer (epoch loop, progress, metrics, checkpoints, resume, early
/// stopping, Ctrl-C, NaN guard), CheckpointSet (several modules, optimizers and generators in one
/// checkpoint; io::CheckpointSet<float>), metrics.jsonl helpers (append_metrics, read_metrics,
/// built on io/json.hpp), the progress bar, and ExampleArgs (the examples' shared
/// command line). See docs/training.md.

#include "genmod/train/checkpoint.hpp"
#include "genmod/train/cli.hpp"
#include "genmod/train/metrics.hpp"
#include "genmod/train/progress.hpp"
#include "genmod/train/trainer.hpp"
