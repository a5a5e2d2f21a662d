#pragma once
/// \file genmod.hpp
/// The umbrella header: every public genmod header. Include less to compile faster.

#include "genmod/config.hpp"
#include "genmod/core/memory.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/shape.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/activations.hpp"
#include "genmod/kernels/conv2d.hpp"
#include "genmod/kernels/elementwise.hpp"
#include "genmod/kernels/gemm.hpp"
#include "genmod/kernels/index.hpp"
#include "genmod/kernels/pool.hpp"
#include "genmod/kernels/reduce.hpp"
#include "genmod/kernels/simd.hpp"
#include "genmod/autodiff/autodiff.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"
