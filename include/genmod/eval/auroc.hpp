#pragma once
/// \file auroc.hpp
/// Exact area under the ROC curve, e.g. for anomaly detection by reconstruction error.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::eval {

/// Area under the ROC curve of `scores` for binary `labels` (1 = positive, 0 = negative; a
/// higher score means "more positive"). Exact, with ties counted as one half:
///   AUROC = (1 / (P Q)) sum_{i positive} sum_{k negative} ([s_i > s_k] + 1/2 [s_i == s_k]),
/// which is the Mann-Whitney U statistic (with mid-ranks for ties) over P Q, P positives and Q
/// negatives. 1 = every positive scores above every negative, 0 = every one below, 0.5 = chance
/// (or all scores tied). O(n log n): one sort, then one pass over groups of equal scores.
/// Infinite scores are allowed. ValueError if the sizes differ, a label is not 0 or 1, a score is
/// NaN, or there is no positive or no negative.
GENMOD_DETAIL_NONTEMPLATE double auroc(std::span<const double> scores, std::span<const int> labels)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  if (scores.size() != labels.size())
    throw ValueError("auroc: expected as many labels as scores, got " + std::to_string(scores.size()) + " scores and " +
                     std::to_string(labels.size()) + " labels");
  std::vector<std::pair<double, int>> v(scores.size());
  std::uint64_t positives = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i]))
      throw ValueError("auroc: expected scores that are not NaN, got NaN at position " + std::to_string(i));
    if (labels[i] != 0 && labels[i] != 1)
      throw ValueError("auroc: expected labels 0 or 1, got " + std::to_string(labels[i]) + " at position " +
                       std::to_string(i));
    positives += static_cast<std::uint64_t>(labels[i]);
    v[i] = {scores[i], labels[i]};
  }
  const std::uint64_t negatives = scores.size() - positives;
  if (positives == 0 || negatives == 0)
    throw ValueError("auroc: expected at least one positive and one negative, got " + std::to_string(positives) +
                     " positives and " + std::to_string(negatives) + " negatives");
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  // In ascending score order, a group of p positives and q negatives tied at one score wins
  // p * (negatives below it) pairs outright and ties p * q: 2U = sum 2 p below + p q (an integer,
  // exact in 64 bits for fewer than about 6e9 scores).
  std::uint64_t twice_u = 0, negatives_below = 0;
  for (std::size_t i = 0; i < v.size();) {
    std::uint64_t p = 0, q = 0;
    std::size_t j = i;
    for (; j < v.size() && v[j].first == v[i].first; ++j) (v[j].second ? p : q) += 1;
    twice_u += 2 * p * negatives_below + p * q;
    negatives_below += q;
    i = j;
  }
  return static_cast<double>(twice_u) / (2.0 * static_cast<double>(positives) * static_cast<double>(negatives));
}
#else
    ;
#endif

/// auroc for vectors of any floating-point scores and integer (or bool) labels.
template <std::floating_point S, std::integral L>
double auroc(const std::vector<S>& scores, const std::vector<L>& labels) {
  const std::vector<double> s(scores.begin(), scores.end());
  std::vector<int> l(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const L x = labels[i];
    if (x != L(0) && x != L(1)) {
      const std::string got = std::is_signed_v<L> ? std::to_string(static_cast<long long>(x))
                                                  : std::to_string(static_cast<unsigned long long>(x));
      throw ValueError("auroc: expected labels 0 or 1, got " + got + " at position " + std::to_string(i));
    }
    l[i] = x == L(1) ? 1 : 0;
  }
  return auroc(std::span<const double>(s), std::span<const int>(l));
}

}  // namespace genmod::eval
