#pragma once
/// \file extern_templates.hpp
/// Opt-in compiled part: genmod's differentiable ops, losses and optimizer updates for float and
/// double, its larger class templates and its non-template code (the Trainer, the file formats,
/// the plots), compiled once instead of in every translation unit.
///
/// A header-only library compiles everything a translation unit uses in that unit: a program that
/// trains a convolutional model spends most of its compile time optimising genmod's kernels
/// (convolution, GEMM, elementwise, reductions) for float. With GENMOD_EXTERN_TEMPLATES defined,
/// the ops named below are declared `extern template`: translation units call them without
/// instantiating them, and one translation unit, genmod/instantiate.cpp (which defines
/// GENMOD_INSTANTIATE_TEMPLATES), compiles them all once. Both must be compiled with the same
/// flags (e.g. -march): the kernels' register tiles depend on the target. With CMake:
///
///   genmod_add_instantiations(genmod_ops)         # a static library built from instantiate.cpp
///   target_link_libraries(app PRIVATE genmod_ops) # defines GENMOD_EXTERN_TEMPLATES for app
///
/// See docs/compile_times.md. Each listed op's own header declares its instantiations (at its end,
/// through genmod/detail/explicit_instantiation.hpp), so a translation unit gets the declarations
/// of exactly the ops it includes, through the umbrella header or single ones; this header
/// includes the op, loss and optimizer headers (instantiate.cpp includes the umbrella header,
/// which holds every header with such a list). Without either macro nothing is declared. Ops
/// called on other element types, and everything not listed (the layers, the models other than
/// the flows), are instantiated where used as usual.
///
/// The ops so listed, for float and double: the activations (relu, leaky_relu, elu, sigmoid,
/// tanh, softplus, log_sigmoid), arithmetic (add, sub, mul, div, neg, scale, add_scalar,
/// rdiv_scalar), the unary functions (exp, log, log1p, sqrt, square, pow, abs, clamp), the
/// reductions (sum, mean, max, logsumexp), the shape ops (reshape, flatten, permute, transpose,
/// slice, concat, space_to_depth, depth_to_space), broadcast_to, the convolutions and their
/// adjoints, add_channel_bias, linear, matmul, batch_norm, layer_norm, affine_coupling, the
/// poolings and upsample_nearest, gather, softmax, log_softmax; the losses cross_entropy,
/// bce_with_logits, squared_error, gaussian_kl_standard; Adam's update. An op's instantiation
/// compiles its forward and backward kernels and the ops of its backward.
///
/// Beside the ops: the class templates Tensor, Tape, optim::Optimizer, io::CheckpointSet,
/// distributed::DataParallel, models::PCA and flows::Invertible1x1Conv for float and double; the
/// flow models (models::NICE, RealNVPMLP, RealNVP, Glow, FlowModel) and their steps (the
/// couplings over a DynamicSequential conditioner, ActNorm, FactorOut, Squeeze, Dequantize,
/// LogitTransform, Scaling, FlowSequence, the base distributions) for float; the training loop for
/// data::Loader; and the larger non-template functions, which their headers write with
/// GENMOD_DETAIL_NONTEMPLATE (declarations only under GENMOD_EXTERN_TEMPLATES; see
/// genmod/detail/explicit_instantiation.hpp). docs/compile_times.md lists them.
///
/// instantiate.cpp compiles as one translation unit, or as three parts that build side by side
/// (GENMOD_INSTANTIATE_PART; genmod_add_instantiations builds the three).

#include "genmod/autodiff/ops/activation.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/broadcast.hpp"
#include "genmod/autodiff/ops/conv.hpp"
#include "genmod/autodiff/ops/coupling.hpp"
#include "genmod/autodiff/ops/linear.hpp"
#include "genmod/autodiff/ops/matmul.hpp"
#include "genmod/autodiff/ops/norm.hpp"
#include "genmod/autodiff/ops/pool.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/autodiff/ops/select.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/autodiff/ops/softmax.hpp"
#include "genmod/autodiff/ops/unary.hpp"
#include "genmod/losses/classification.hpp"
#include "genmod/losses/kl.hpp"
#include "genmod/losses/reconstruction.hpp"
#include "genmod/optim/adam.hpp"
