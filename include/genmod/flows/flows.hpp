#pragma once
/// \file flows.hpp
/// The normalizing-flow layer: the Bijector contract, masks, coupling steps, scaling,
/// multiscale steps (squeeze, factor-out), Glow's ActNorm and invertible 1x1 convolution,
/// preprocessing steps and base distributions.

#include "genmod/flows/actnorm.hpp"
#include "genmod/flows/additive_coupling.hpp"
#include "genmod/flows/affine_coupling.hpp"
#include "genmod/flows/base_distribution.hpp"
#include "genmod/flows/bijector.hpp"
#include "genmod/flows/conditioners.hpp"
#include "genmod/flows/context_coupling.hpp"
#include "genmod/flows/dequantize.hpp"
#include "genmod/flows/factor_out.hpp"
#include "genmod/flows/iaf.hpp"
#include "genmod/flows/invertible_1x1_conv.hpp"
#include "genmod/flows/logit_transform.hpp"
#include "genmod/flows/made.hpp"
#include "genmod/flows/masks.hpp"
#include "genmod/flows/planar.hpp"
#include "genmod/flows/posterior_flow.hpp"
#include "genmod/flows/radial.hpp"
#include "genmod/flows/scaling.hpp"
#include "genmod/flows/squeeze.hpp"
