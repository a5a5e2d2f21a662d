#pragma once
/// \file nn.hpp
/// Modules, initializers and layers.

#include "genmod/nn/any_module.hpp"
#include "genmod/nn/freeze.hpp"
#include "genmod/nn/init.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/layers/activation.hpp"
#include "genmod/nn/layers/conv.hpp"
#include "genmod/nn/layers/dropout.hpp"
#include "genmod/nn/layers/embedding.hpp"
#include "genmod/nn/layers/image_condition_encoder.hpp"
#include "genmod/nn/layers/linear.hpp"
#include "genmod/nn/layers/lstm.hpp"
#include "genmod/nn/layers/norm.hpp"
#include "genmod/nn/layers/pool.hpp"
#include "genmod/nn/layers/reshape.hpp"
#include "genmod/nn/layers/residual.hpp"
#include "genmod/nn/layers/spectral_norm.hpp"
#include "genmod/nn/layers/sync_batch_norm.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/nn/module_list.hpp"
#include "genmod/nn/sequential.hpp"
