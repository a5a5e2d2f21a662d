#pragma once
/// \file lstm_gates.hpp
/// The LSTM update shared by PixelRNN's layers (models::RowLSTM, models::DiagonalBiLSTM), with the
/// gates stacked in the paper's order [o, f, i, g] along the channels:
///   c' = sigmoid(f) . c + sigmoid(i) . tanh(g),   h' = sigmoid(o) . tanh(c')
/// once on the tape (training) and once on plain rows (the cached samplers), so that the two
/// cannot drift apart.

#include <array>
#include <cstdint>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/kernels/activations.hpp"

namespace genmod::models::detail {

/// {h', c'} from gates [N, 4h, ...] ([o, f, i, g] along axis 1) and the previous cell c (an
/// undefined Var: the first step, c = 0). Slices, not split(): no vector, so a training step
/// calls no allocator.
template <class T>
std::array<Var<T>, 2> lstm_update(const Var<T>& gates, const Var<T>& c, std::int64_t hidden) {
  const Var<T> ofi = sigmoid(slice(gates, 1, 0, 3 * hidden));
  const Var<T> ig = mul(slice(ofi, 1, 2 * hidden, hidden), tanh(slice(gates, 1, 3 * hidden, hidden)));
  const Var<T> next_c = c.defined() ? add(mul(slice(ofi, 1, hidden, hidden), c), ig) : ig;
  return {mul(slice(ofi, 1, 0, hidden), tanh(next_c)), next_c};
}

/// The same update on n rows: gates [n, 4h] row-major, c_prev [n, h] (nullptr: 0), written to
/// c_out and h_out [n, h].
template <class T>
void lstm_update_rows(const T* gates, std::int64_t n, std::int64_t hidden, const T* c_prev, T* c_out, T* h_out) {
  const kernels::Sigmoid sigmoid_of;
  const kernels::Tanh tanh_of;
  for (std::int64_t b = 0; b < n; ++b)
    for (std::int64_t u = 0; u < hidden; ++u) {
      const T* z = gates + b * 4 * hidden + u;
      const T o = sigmoid_of(z[0]), f = sigmoid_of(z[hidden]), in_gate = sigmoid_of(z[2 * hidden]);
      const T ig = in_gate * tanh_of(z[3 * hidden]);
      const T c = c_prev ? f * c_prev[b * hidden + u] + ig : ig;
      c_out[b * hidden + u] = c;
      h_out[b * hidden + u] = o * tanh_of(c);
    }
}

}  // namespace genmod::models::detail
