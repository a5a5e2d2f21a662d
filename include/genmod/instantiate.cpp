// The translation unit that compiles genmod's ops for float and double, its larger class
// templates and its non-template code when the rest of a program is built with
// GENMOD_EXTERN_TEMPLATES (see genmod/extern_templates.hpp): compile it once, with the same flags
// as the program, and link it in. genmod_add_instantiations() in CMake does so.
//
// Compiled as it is, it holds everything (about a minute and 2 GB with GCC 12 at -O2). With
// GENMOD_INSTANTIATE_PART set to 1, 2 or 3 it holds one of three parts that together hold the
// same, and that compile side by side (genmod_add_instantiations builds the three):
//   1  the tape, the tensor and the differentiable ops, the losses
//   2  the optimizers, layers, data-parallel training, loaders, file formats and the Trainer
//   3  the rest: distributions, flows, models, evaluation
// A part first includes the headers of the parts before it with GENMOD_EXTERN_TEMPLATES (so
// they only declare what those parts compile), then switches to GENMOD_INSTANTIATE_TEMPLATES
// and includes its own headers: a header is compiled in the part whose headers reach it first,
// and declared in every later one (each part includes the earlier parts' headers in the same
// order), so nothing is compiled twice and nothing is left out.

#if !defined(GENMOD_INSTANTIATE_PART)
#define GENMOD_INSTANTIATE_TEMPLATES 1
#include "genmod/genmod.hpp"

#else
#if GENMOD_INSTANTIATE_PART < 1 || GENMOD_INSTANTIATE_PART > 3
#error "GENMOD_INSTANTIATE_PART: expected 1, 2 or 3"
#endif
#include "genmod/config.hpp"

// The same region as in genmod/genmod.hpp (GCC 12's warnings in its own AVX-512 intrinsics).
GENMOD_GCC_BUG_105593_BEGIN

// Every part starts by declaring; the part named by GENMOD_INSTANTIATE_PART switches to defining
// just before its own headers (instantiation_mode.hpp re-evaluates the macros), and the later
// parts' headers are not included at all.
#define GENMOD_EXTERN_TEMPLATES 1
#include "genmod/detail/explicit_instantiation.hpp"

// Part 1: the tape, the tensor, the ops, the losses.
#if GENMOD_INSTANTIATE_PART == 1
#undef GENMOD_EXTERN_TEMPLATES
#define GENMOD_INSTANTIATE_TEMPLATES 1
#include "genmod/detail/instantiation_mode.hpp"
#endif
#include "genmod/autodiff/autodiff.hpp"
#include "genmod/losses/adversarial.hpp"
#include "genmod/losses/classification.hpp"
#include "genmod/losses/kl.hpp"
#include "genmod/losses/reconstruction.hpp"
#include "genmod/losses/sparsity.hpp"

// Part 2: the optimizers, layers, data-parallel training, loaders, file formats, the Trainer.
#if GENMOD_INSTANTIATE_PART >= 2
#if GENMOD_INSTANTIATE_PART == 2
#undef GENMOD_EXTERN_TEMPLATES
#define GENMOD_INSTANTIATE_TEMPLATES 1
#include "genmod/detail/instantiation_mode.hpp"
#endif
#include "genmod/distributed/distributed.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"
#include "genmod/train/train.hpp"
#endif

// Part 3: everything the umbrella header holds beyond parts 1 and 2.
#if GENMOD_INSTANTIATE_PART == 3
#undef GENMOD_EXTERN_TEMPLATES
#define GENMOD_INSTANTIATE_TEMPLATES 1
#include "genmod/detail/instantiation_mode.hpp"
#include "genmod/genmod.hpp"
#endif

GENMOD_GCC_BUG_105593_END
#endif
