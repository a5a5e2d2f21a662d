#pragma once
/// \file genmod.hpp
/// The umbrella header: every public genmod header. Including it costs about 4 s of compile time
/// (Eigen, xsimd and the standard library are most of it); a program that trains a model spends
/// several more compiling the kernels it uses, which GENMOD_EXTERN_TEMPLATES moves into one
/// translation unit compiled once (see genmod/extern_templates.hpp and docs/compile_times.md).

#include "genmod/config.hpp"

// GCC 12 reports its own AVX-512 intrinsics as using an uninitialised `__Y` wherever genmod's,
// xsimd's or Eigen's vector code inlines them (GENMOD_GCC_BUG_105593). GCC looks for a
// `#pragma GCC diagnostic` at every location of the inlining stack, innermost first; within this
// region every one of those locations in genmod's headers, and in the third-party headers they
// include first, is covered, so a user's -Wall build stays clean without flags of its own.
#if GENMOD_GCC_BUG_105593
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/memory.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/shape.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/attribute_table.hpp"
#include "genmod/data/csv.hpp"
#include "genmod/data/dataset.hpp"
#include "genmod/data/fashion_mnist.hpp"
#include "genmod/data/idx.hpp"
#include "genmod/data/loader.hpp"
#include "genmod/data/npy.hpp"
#include "genmod/data/npz.hpp"
#include "genmod/data/synthetic_shapes.hpp"
#include "genmod/data/transforms.hpp"
#include "genmod/dist/concepts.hpp"
#include "genmod/dist/likelihood.hpp"
#include "genmod/dist/normal.hpp"
#include "genmod/distributed/distributed.hpp"
#include "genmod/eval/attribute_classifier.hpp"
#include "genmod/eval/auroc.hpp"
#include "genmod/eval/class_coverage.hpp"
#include "genmod/eval/density.hpp"
#include "genmod/eval/elbo.hpp"
#include "genmod/eval/feature_classifier.hpp"
#include "genmod/eval/frechet_distance.hpp"
#include "genmod/eval/linear_probe.hpp"
#include "genmod/eval/precision_recall.hpp"
#include "genmod/eval/psnr.hpp"
#include "genmod/eval/subspace.hpp"
#include "genmod/flows/flows.hpp"
#include "genmod/io/checkpoint.hpp"
#include "genmod/io/image.hpp"
#include "genmod/io/json.hpp"
#include "genmod/io/model_checkpoint.hpp"
#include "genmod/io/plot.hpp"
#include "genmod/io/quantized_codes.hpp"
#include "genmod/kernels/activations.hpp"
#include "genmod/kernels/conv2d.hpp"
#include "genmod/kernels/conv2d_gather.hpp"
#include "genmod/kernels/conv2d_geometry.hpp"
#include "genmod/kernels/conv2d_layout.hpp"
#include "genmod/kernels/elementwise.hpp"
#include "genmod/kernels/gemm.hpp"
#include "genmod/kernels/index.hpp"
#include "genmod/kernels/microkernel.hpp"
#include "genmod/kernels/pool.hpp"
#include "genmod/kernels/reduce.hpp"
#include "genmod/kernels/simd.hpp"
#include "genmod/kernels/tensor_math.hpp"
#include "genmod/losses/adversarial.hpp"
#include "genmod/losses/classification.hpp"
#include "genmod/losses/kl.hpp"
#include "genmod/losses/reconstruction.hpp"
#include "genmod/losses/sparsity.hpp"
#include "genmod/models/autoencoder.hpp"
#include "genmod/models/autoregressive.hpp"
#include "genmod/models/concepts.hpp"
#include "genmod/models/conditional_gan.hpp"
#include "genmod/models/conditional_vae.hpp"
#include "genmod/models/dcgan.hpp"
#include "genmod/models/denoising_autoencoder.hpp"
#include "genmod/models/elbo.hpp"
#include "genmod/models/flow_model.hpp"
#include "genmod/models/flow_vae.hpp"
#include "genmod/models/gan.hpp"
#include "genmod/models/gated_pixel_cnn.hpp"
#include "genmod/models/glow.hpp"
#include "genmod/models/mlp_gan.hpp"
#include "genmod/models/nice.hpp"
#include "genmod/models/pca.hpp"
#include "genmod/models/pixel_cnn.hpp"
#include "genmod/models/pixel_rnn.hpp"
#include "genmod/models/real_nvp.hpp"
#include "genmod/models/sparse_autoencoder.hpp"
#include "genmod/models/vae.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"
#include "genmod/train/train.hpp"

#if GENMOD_GCC_BUG_105593
#pragma GCC diagnostic pop
#endif
