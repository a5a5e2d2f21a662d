#pragma once
/// \file autodiff.hpp
/// Everything of the autodiff layer: Tape, Var, Parameter, NoGradGuard, every differentiable op,
/// and the gradient checker.

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/grad_check.hpp"
#include "genmod/autodiff/grad_mode.hpp"
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
#include "genmod/autodiff/parameter.hpp"
#include "genmod/autodiff/tape.hpp"
#include "genmod/autodiff/var.hpp"
