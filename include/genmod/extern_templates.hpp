#pragma once
/// \file extern_templates.hpp
/// Opt-in explicit instantiation of genmod's differentiable ops, losses and optimizer updates for
/// float and double, to compile the kernels once instead of in every translation unit.
///
/// A header-only library compiles everything a translation unit uses in that unit: a program that
/// trains a convolutional model spends most of its compile time optimising genmod's kernels
/// (convolution, GEMM, elementwise, reductions) for float. With GENMOD_EXTERN_TEMPLATES defined,
/// the ops listed below are declared `extern template`: translation units call them without
/// instantiating them, and one translation unit, genmod/instantiate.cpp (which defines
/// GENMOD_INSTANTIATE_TEMPLATES), compiles them all once. Both must be compiled with the same
/// flags (e.g. -march): the kernels' register tiles depend on the target. With CMake:
///
///   genmod_add_instantiations(genmod_ops)         # a static library built from instantiate.cpp
///   target_link_libraries(app PRIVATE genmod_ops) # defines GENMOD_EXTERN_TEMPLATES for app
///
/// See docs/compile_times.md. Without either macro this header declares nothing. Ops called on
/// other element types, and everything not listed (layers, the tape), are instantiated where used
/// as usual. Most ops are named by `decltype(op<T>)`, so the list needs no signatures; the names
/// that also have Tensor overloads (exp, add, ...) are given their Var signature.

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/autodiff/ops/coupling.hpp"
#include "genmod/losses/classification.hpp"
#include "genmod/losses/kl.hpp"
#include "genmod/losses/reconstruction.hpp"
#include "genmod/optim/adam.hpp"

/// `template` (explicit instantiation definitions) in instantiate.cpp, `extern template`
/// (declarations) elsewhere under GENMOD_EXTERN_TEMPLATES.
#if defined(GENMOD_INSTANTIATE_TEMPLATES)
#define GENMOD_DETAIL_TEMPLATE template
#elif defined(GENMOD_EXTERN_TEMPLATES)
#define GENMOD_DETAIL_TEMPLATE extern template
#endif

#if defined(GENMOD_DETAIL_TEMPLATE)

/// One explicit instantiation (declaration or definition) of the function template `op` for T,
/// which must have one overload only.
#define GENMOD_DETAIL_INSTANTIATE_OP(op, T) GENMOD_DETAIL_TEMPLATE decltype(op<T>) op<T>;
/// The same for an op on one Var whose name also has overloads on Tensors (exp, log, ...).
#define GENMOD_DETAIL_INSTANTIATE_UNARY(op, T) GENMOD_DETAIL_TEMPLATE genmod::Var<T> op<T>(const genmod::Var<T>&);
/// The same for an op on two Vars whose name also has other overloads (add, mul on Tensors;
/// bce_with_logits against a constant target).
#define GENMOD_DETAIL_INSTANTIATE_BINARY(op, T) \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> op<T>(const genmod::Var<T>&, const genmod::Var<T>&);

/// Every listed op for element type T. Chosen by compile cost: the ops whose instantiation pulls
/// in kernels (one op instantiates its forward and backward kernels and the ops of its backward).
#define GENMOD_DETAIL_INSTANTIATE_ALL(T)                                \
  GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::relu, T)                      \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::leaky_relu, T)                   \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::elu, T)                          \
  GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::sigmoid, T)                   \
  GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::tanh, T)                      \
  GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::softplus, T)                  \
  GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::log_sigmoid, T)               \
  GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::add, T)                      \
  GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::sub, T)                      \
  GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::mul, T)                      \
  GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::div, T)                      \
  GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::neg, T)                       \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::scale, T)                        \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::add_scalar, T)                   \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::broadcast_to, T)                 \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d, T)                       \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d_geometry, T)              \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d_adjoint_input, T)         \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d_adjoint_weight, T)        \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::add_channel_bias, T)             \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv_transpose2d, T)             \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::linear, T)                       \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::matmul, T)                       \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::batch_norm, T)                   \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::layer_norm, T)                   \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::affine_coupling, T)              \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::max_pool2d, T)                   \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::avg_pool2d, T)                   \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::upsample_nearest, T)             \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::gather, T)                       \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::softmax, T)                      \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::log_softmax, T)                  \
  GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::exp, T)                       \
  GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::log, T)                       \
  GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::sqrt, T)                      \
  GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::square, T)                    \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::losses::cross_entropy, T)        \
  GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::losses::bce_with_logits, T)  \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::losses::squared_error, T)        \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::losses::gaussian_kl_standard, T) \
  GENMOD_DETAIL_INSTANTIATE_OP(genmod::optim::detail::adam_update, T)

GENMOD_DETAIL_INSTANTIATE_ALL(float)
GENMOD_DETAIL_INSTANTIATE_ALL(double)

#undef GENMOD_DETAIL_INSTANTIATE_ALL
#undef GENMOD_DETAIL_INSTANTIATE_BINARY
#undef GENMOD_DETAIL_INSTANTIATE_UNARY
#undef GENMOD_DETAIL_INSTANTIATE_OP
#undef GENMOD_DETAIL_TEMPLATE

#endif
