#pragma once
// The one list of genmod's differentiable ops (the public functions of include/genmod/autodiff/ops/
// that return a Var), each with the test case that checks its gradients to first and second order
// in double (GENMOD_CHECK_GRADIENTS, tests/support/gradcheck.hpp). op_list_test.cpp fails when
// an op of those headers is missing here, when an entry names no such op, and when an entry's test
// case does not call the op inside a GENMOD_CHECK_GRADIENTS. Adding an op means: its header in
// autodiff/ops/, a gradient check in the test file mirroring that header, and a line here.

#include <string_view>

namespace genmod::test {

/// An op and the Catch test case holding its first- and second-order gradient checks.
struct OpGradientCheck {
  std::string_view op;
  std::string_view test_case;
};

// clang-format off
/// Sorted by header, then by name.
inline constexpr OpGradientCheck kDifferentiableOps[] = {
  // activation.hpp
  {"elu",                   "relu, leaky_relu, elu"},
  {"leaky_relu",            "relu, leaky_relu, elu"},
  {"log_sigmoid",           "sigmoid, tanh, softplus, log_sigmoid"},
  {"relu",                  "relu, leaky_relu, elu"},
  {"sigmoid",               "sigmoid, tanh, softplus, log_sigmoid"},
  {"softplus",              "sigmoid, tanh, softplus, log_sigmoid"},
  {"tanh",                  "sigmoid, tanh, softplus, log_sigmoid"},
  // arithmetic.hpp
  {"add",                   "add, sub, mul, div: gradients with equal shapes"},
  {"add_scalar",            "add_scalar, scale, rdiv_scalar: gradients"},
  {"div",                   "add, sub, mul, div: gradients with equal shapes"},
  {"mul",                   "add, sub, mul, div: gradients with equal shapes"},
  {"neg",                   "neg and scalar forms"},
  {"rdiv_scalar",           "add_scalar, scale, rdiv_scalar: gradients"},
  {"scale",                 "add_scalar, scale, rdiv_scalar: gradients"},
  {"sub",                   "add, sub, mul, div: gradients with equal shapes"},
  // broadcast.hpp
  {"broadcast_to",          "broadcast_to and sum_to: gradients"},
  {"sum_to",                "broadcast_to and sum_to: gradients"},
  // conv.hpp
  {"add_channel_bias",      "Convolution adjoints and the channel bias: gradients"},
  {"conv2d",                "conv2d gradients over stride, padding and dilation (first and second order)"},
  {"conv2d_adjoint_input",  "Convolution adjoints and the channel bias: gradients"},
  {"conv2d_adjoint_weight", "Convolution adjoints and the channel bias: gradients"},
  {"conv2d_geometry",       "Masked convolutions A and B: gradients and the skipped taps"},
  {"conv_transpose2d",      "conv_transpose2d gradients, with output padding"},
  // coupling.hpp
  {"affine_coupling",       "affine_coupling: gradients to second order, every bound, [N, D] and [N, C, H, W]"},
  // linear.hpp
  {"linear",                "linear op gradients, with and without bias"},
  // matmul.hpp
  {"bmm_t",                 "matmul batched and with a shared right operand"},
  {"matmul",                "matmul 2-D and its transposed forms"},
  {"matmul_t",              "matmul 2-D and its transposed forms"},
  // norm.hpp
  {"batch_norm",            "batch_norm in training mode: gradients for 1-d and 2-d inputs"},
  {"layer_norm",            "layer_norm gradients and values"},
  // pool.hpp
  {"avg_pool2d",            "Pooling and upsampling: gradients and values"},
  {"max_pool2d",            "Pooling and upsampling: gradients and values"},
  {"upsample_nearest",      "Pooling and upsampling: gradients and values"},
  // reduce.hpp
  {"logsumexp",             "logsumexp along an axis and over all elements"},
  {"max",                   "max over all elements and along an axis"},
  {"mean",                  "sum and mean over all elements and along each axis"},
  {"sum",                   "sum and mean over all elements and along each axis"},
  // select.hpp
  {"gather",                "gather and scatter_add along an axis"},
  {"scatter_add",           "gather and scatter_add along an axis"},
  {"where",                 "where and masked multiply"},
  // shape.hpp
  {"concat",                "concat, slice, split"},
  {"depth_to_space",        "space_to_depth, depth_to_space"},
  {"flatten",               "reshape, flatten, transpose, permute"},
  {"permute",               "reshape, flatten, transpose, permute"},
  {"reshape",               "reshape, flatten, transpose, permute"},
  {"slice",                 "concat, slice, split"},
  {"space_to_depth",        "space_to_depth, depth_to_space"},
  {"split",                 "concat, slice, split"},
  {"transpose",             "reshape, flatten, transpose, permute"},
  // softmax.hpp
  {"log_softmax",           "softmax and log_softmax along each axis"},
  {"softmax",               "softmax and log_softmax along each axis"},
  // unary.hpp
  {"abs",                   "pow by a scalar, square, abs, clamp"},
  {"clamp",                 "pow by a scalar, square, abs, clamp"},
  {"exp",                   "exp, log, log1p, sqrt"},
  {"log",                   "exp, log, log1p, sqrt"},
  {"log1p",                 "exp, log, log1p, sqrt"},
  {"pow",                   "pow by a scalar, square, abs, clamp"},
  {"sqrt",                  "exp, log, log1p, sqrt"},
  {"square",                "pow by a scalar, square, abs, clamp"},
};
// clang-format on

}  // namespace genmod::test
