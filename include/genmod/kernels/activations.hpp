#pragma once
/// \file activations.hpp
/// Activation functors and their fused first derivatives, in numerically stable forms
/// (softplus and log-sigmoid never overflow: at x = +-80 in float they stay finite and exact).

#include "genmod/kernels/simd.hpp"

namespace genmod::kernels {

struct Relu {
  template <class V>
  V operator()(V x) const {
    return simd::max(x, V(0));
  }
};
/// g * [x > 0]
struct ReluBackward {
  template <class V>
  V operator()(V g, V x) const {
    return simd::select(x > V(0), g, V(0));
  }
};
/// 1 where x > 0, else 0.
struct Positive {
  template <class V>
  V operator()(V x) const {
    return simd::select(x > V(0), V(1), V(0));
  }
};

template <class T>
struct LeakyRelu {
  T slope;
  template <class V>
  V operator()(V x) const {
    return simd::select(x > V(0), x, x * V(slope));
  }
};
/// d/dx leaky_relu = 1 (x > 0) or slope.
template <class T>
struct LeakyReluSlope {
  T slope;
  template <class V>
  V operator()(V x) const {
    return simd::select(x > V(0), V(1), V(slope));
  }
};
/// g (x > 0) or slope g: leaky_relu's backward in one pass.
template <class T>
struct LeakyReluBackward {
  T slope;
  template <class V>
  V operator()(V g, V x) const {
    return simd::select(x > V(0), g, V(slope) * g);
  }
};

/// elu(x) = x (x > 0), alpha (e^x - 1) otherwise.
template <class T>
struct Elu {
  T alpha;
  template <class V>
  V operator()(V x) const {
    return simd::select(x > V(0), x, V(alpha) * simd::expm1(simd::min(x, V(0))));
  }
};

/// sigmoid(x) = 1 / (1 + e^-x); for x -> -inf e^-x overflows to inf and the result is 0, not NaN.
struct Sigmoid {
  template <class V>
  V operator()(V x) const {
    return V(1) / (V(1) + simd::exp(-x));
  }
};
/// g * s * (1 - s), from the saved output s.
struct SigmoidBackward {
  template <class V>
  V operator()(V g, V s) const {
    return g * s * (V(1) - s);
  }
};

struct Tanh {
  template <class V>
  V operator()(V x) const {
    return simd::tanh(x);
  }
};
/// g * (1 - t^2), from the saved output t.
struct TanhBackward {
  template <class V>
  V operator()(V g, V t) const {
    return g * (V(1) - t * t);
  }
};

/// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
struct Softplus {
  template <class V>
  V operator()(V x) const {
    return simd::max(x, V(0)) + simd::log1p(simd::exp(-simd::abs(x)));
  }
};
/// log sigmoid(x) = -softplus(-x) = min(x, 0) - log1p(e^-|x|)
struct LogSigmoid {
  template <class V>
  V operator()(V x) const {
    return simd::min(x, V(0)) - simd::log1p(simd::exp(-simd::abs(x)));
  }
};
/// g * sigmoid(x): the derivative of softplus.
struct SoftplusBackward {
  template <class V>
  V operator()(V g, V x) const {
    return g / (V(1) + simd::exp(-x));
  }
};
/// g * sigmoid(-x): the derivative of log_sigmoid.
struct LogSigmoidBackward {
  template <class V>
  V operator()(V g, V x) const {
    return g / (V(1) + simd::exp(x));
  }
};

}  // namespace genmod::kernels
