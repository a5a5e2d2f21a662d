#pragma once
/// \file optim.hpp
/// Every optimizer, gradient clipping and the learning-rate schedules.

#include "genmod/optim/adam.hpp"
#include "genmod/optim/clip.hpp"
#include "genmod/optim/optimizer.hpp"
#include "genmod/optim/rmsprop.hpp"
#include "genmod/optim/schedule.hpp"
#include "genmod/optim/sgd.hpp"
