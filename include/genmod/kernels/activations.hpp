#pragma once
/// \file activations.hpp
/// Activation functors and their fused first derivatives, in numerically stable forms
/// (softplus and log-sigmoid never overflow: at x = +-80 in float they stay finite and exact).

#include "genmod/kernels/simd.hpp"

namespace genmod::kernels {

/// relu(x) = max(x, 0).
struct Relu {
  /// max(x, 0). Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V x) const {
    return simd::max(x, V(0));
  }
};
/// g * [x > 0]
struct ReluBackward {
  /// g where x > 0, else 0. Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V g, V x) const {
    return simd::select(x > V(0), g, V(0));
  }
};
/// 1 where x > 0, else 0.
struct Positive {
  /// 1 where x > 0, else 0. Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V x) const {
    return simd::select(x > V(0), V(1), V(0));
  }
};

/// leaky_relu(x) = x (x > 0), slope * x otherwise.
template <class T>
struct LeakyRelu {
  /// Slope on the negative side (e.g. 0.01 or 0.2).
  T slope;
  /// x or slope * x. Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V x) const {
    return simd::select(x > V(0), x, x * V(slope));
  }
};
/// d/dx leaky_relu = 1 (x > 0) or slope.
template <class T>
struct LeakyReluSlope {
  /// Slope on the negative side.
  T slope;
  /// 1 or slope. Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V x) const {
    return simd::select(x > V(0), V(1), V(slope));
  }
};
/// g (x > 0) or slope g: leaky_relu's backward in one pass.
template <class T>
struct LeakyReluBackward {
  /// Slope on the negative side.
  T slope;
  /// g or slope * g. Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V g, V x) const {
    return simd::select(x > V(0), g, V(slope) * g);
  }
};

/// elu(x) = x (x > 0), alpha (e^x - 1) otherwise.
template <class T>
struct Elu {
  /// Scale of the negative side: elu(x) -> -alpha as x -> -inf.
  T alpha;
  /// x or alpha * expm1(min(x, 0)): the unused branch never overflows. Per lane (V: T or a batch).
  template <class V>
  V operator()(V x) const {
    return simd::select(x > V(0), x, V(alpha) * simd::expm1(simd::min(x, V(0))));
  }
};

/// sigmoid(x) = 1 / (1 + e^-x); for x -> -inf e^-x overflows to inf and the result is 0, not NaN.
struct Sigmoid {
  /// 1 / (1 + e^-x). Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V x) const {
    return V(1) / (V(1) + simd::exp(-x));
  }
};
/// g * s * (1 - s), from the saved output s.
struct SigmoidBackward {
  /// g * s * (1 - s). Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V g, V s) const {
    return g * s * (V(1) - s);
  }
};

/// tanh(x), through xsimd's vectorized tanh.
struct Tanh {
  /// tanh(x). Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V x) const {
    return simd::tanh(x);
  }
};
/// g * (1 - t^2), from the saved output t.
struct TanhBackward {
  /// g * (1 - t^2). Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V g, V t) const {
    return g * (V(1) - t * t);
  }
};

/// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
struct Softplus {
  /// max(x, 0) + log1p(e^-|x|). Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V x) const {
    return simd::max(x, V(0)) + simd::log1p(simd::exp(-simd::abs(x)));
  }
};
/// log sigmoid(x) = -softplus(-x) = min(x, 0) - log1p(e^-|x|)
struct LogSigmoid {
  /// min(x, 0) - log1p(e^-|x|). Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V x) const {
    return simd::min(x, V(0)) - simd::log1p(simd::exp(-simd::abs(x)));
  }
};
/// g * sigmoid(x): the derivative of softplus.
struct SoftplusBackward {
  /// g / (1 + e^-x). Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V g, V x) const {
    return g / (V(1) + simd::exp(-x));
  }
};
/// g * sigmoid(-x): the derivative of log_sigmoid.
struct LogSigmoidBackward {
  /// g / (1 + e^x). Per lane; V is T or an xsimd batch of T.
  template <class V>
  V operator()(V g, V x) const {
    return g / (V(1) + simd::exp(x));
  }
};

}  // namespace genmod::kernels
