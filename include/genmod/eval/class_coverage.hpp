#pragma once
/// \file class_coverage.hpp
/// Mode collapse seen through a classifier: how evenly the classes a pretrained classifier
/// predicts for generated samples are spread. A generator that covers K balanced classes gets
/// about N / K samples of each; a collapsed one piles its samples onto a few.
///
///   counts[c]      = number of samples predicted as class c;
///   classes_hit    = number of classes with counts[c] >= min_fraction * N / K, i.e. at least
///                    min_fraction of the uniform share N / K (default 0.1: a class that receives
///                    under a tenth of its share is counted as missed, so that a handful of stray
///                    predictions does not make a dropped mode look covered);
///   kl_to_uniform  = KL(p_hat || uniform) = sum_c p_c log(K p_c) = log K - H(p_hat) in nats,
///                    p_c = counts[c] / N, with 0 log 0 = 0: 0 for perfectly balanced predictions,
///                    log K when every sample lands in one class, log(K / m) for m equally
///                    filled classes.
///
/// For a class-conditional generator, class_agreement gives the fraction of samples the
/// classifier assigns to the class they were generated for.

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/tensor.hpp"

namespace genmod::eval {

/// How the predicted classes of N generated samples are spread over K classes.
struct ClassCoverage {
  std::vector<std::int64_t> counts;  ///< [K] samples predicted as each class
  int classes_hit = 0;               ///< classes with at least min_fraction * N / K samples
  double kl_to_uniform = 0;          ///< KL(empirical class frequencies || uniform), nats, in [0, log K]
};

/// Class counts, classes hit and KL to uniform of `predicted` class indices in [0, num_classes).
/// A class is hit when its count is at least min_fraction * N / num_classes (default 0.1: a tenth
/// of the uniform share). The comparison allows a relative 1e-12 so that a count of exactly that
/// many samples is a hit even when min_fraction is not exact in binary (0.55 * 200 / 10 computes
/// as 11.000000000000002).
/// ValueError if predicted is empty, num_classes < 1, min_fraction is not in (0, 1], or a label
/// lies outside [0, num_classes) (naming its position).
inline ClassCoverage class_coverage(std::span<const std::int64_t> predicted, int num_classes,
                                    double min_fraction = 0.1) {
  constexpr const char* op = "class_coverage";
  check_arg(!predicted.empty(), op, "predicted classes", "of at least one sample", "none");
  check_at_least(op, "num_classes", num_classes, 1);
  check_in_range(op, "min_fraction", min_fraction, 0.0, 1.0, Bounds::open_closed);
  ClassCoverage out;
  out.counts.assign(static_cast<std::size_t>(num_classes), 0);
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    const std::int64_t c = predicted[i];
    if (c < 0 || c >= num_classes)
      throw ValueError("class_coverage: expected predicted classes in [0, " + std::to_string(num_classes) + "), got " +
                       std::to_string(c) + " at position " + std::to_string(i));
    ++out.counts[static_cast<std::size_t>(c)];
  }
  const double n = static_cast<double>(predicted.size()), k = static_cast<double>(num_classes);
  const double threshold = min_fraction * n / k * (1.0 - 1e-12);
  double kl = 0;
  for (const std::int64_t count : out.counts) {
    if (static_cast<double>(count) >= threshold) ++out.classes_hit;
    if (count > 0) {
      const double p = static_cast<double>(count) / n;
      kl += p * std::log(p * k);
    }
  }
  // Each term p log(K p) can be negative, the sum cannot (Gibbs): -1e-17 for balanced counts
  // is rounding, reported as the exact 0.
  out.kl_to_uniform = kl > 0 ? kl : 0.0;
  return out;
}

/// class_coverage of the argmax of each row of classifier logits [N, K] (the first maximal class
/// on a tie; K = num_classes). ShapeError unless logits is [N, K] with N, K >= 1; ValueError for a
/// NaN logit or min_fraction not in (0, 1].
template <class T>
ClassCoverage class_coverage(const Tensor<T>& logits, double min_fraction = 0.1) {
  static_assert(std::is_arithmetic_v<T>, "class_coverage needs numeric logits");
  constexpr const char* op = "class_coverage";
  check_rank(op, "logits", logits.shape(), 2, "[N, K]");
  check_dim_at_least(op, "logits", logits.shape(), 0, 1, "samples");
  check_dim_at_least(op, "logits", logits.shape(), 1, 1, "classes");
  const std::int64_t n = logits.dim(0), k = logits.dim(1);
  std::vector<std::int64_t> predicted(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = logits.data() + i * k;
    std::int64_t best = 0;
    for (std::int64_t j = 0; j < k; ++j) {
      if constexpr (std::is_floating_point_v<T>)
        if (std::isnan(row[j]))
          throw ValueError("class_coverage: expected logits that are not NaN, got NaN in row " + std::to_string(i));
      if (row[j] > row[best]) best = j;
    }
    predicted[static_cast<std::size_t>(i)] = best;
  }
  return class_coverage(std::span<const std::int64_t>(predicted), static_cast<int>(k), min_fraction);
}

/// Fraction of positions where the predicted class equals the requested one: how often a
/// class-conditional generator makes what it was asked for, as judged by a classifier.
/// ValueError if the sizes differ, the input is empty, or a class index is negative.
inline double class_agreement(std::span<const std::int64_t> predicted, std::span<const std::int64_t> requested) {
  constexpr const char* op = "class_agreement";
  if (predicted.size() != requested.size())
    throw ValueError("class_agreement: expected as many requested classes as predicted ones, got " +
                     std::to_string(predicted.size()) + " predicted and " + std::to_string(requested.size()) +
                     " requested");
  check_arg(!predicted.empty(), op, "predicted classes", "of at least one sample", "none");
  std::int64_t equal = 0;
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    if (predicted[i] < 0 || requested[i] < 0)
      throw ValueError("class_agreement: expected class indices >= 0, got " +
                       std::to_string(predicted[i] < 0 ? predicted[i] : requested[i]) + " at position " +
                       std::to_string(i) + " of the " + (predicted[i] < 0 ? "predicted" : "requested") + " classes");
    equal += predicted[i] == requested[i] ? 1 : 0;
  }
  return static_cast<double>(equal) / static_cast<double>(predicted.size());
}

}  // namespace genmod::eval
