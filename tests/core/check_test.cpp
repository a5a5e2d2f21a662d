#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>

#include "genmod/core/check.hpp"

namespace core_check_test {

using namespace genmod;

TEST_CASE("Shape checks name the op, the argument, what was expected and what was found", "[core][check]") {
  const Shape x{3, 4, 5};
  CHECK_NOTHROW(check_rank("linear", "input", x, 3));
  CHECK_THROWS_AS(check_rank("linear", "input", x, 2), ShapeError);
  CHECK_THROWS_WITH(check_rank("linear", "input", x, 2, "[N, in]"),
                    "linear: expected input of rank 2 ([N, in]), got shape [3, 4, 5] (rank 3)");
  CHECK_THROWS_WITH(check_rank("batch_norm", "input", x, {2, 4}, "[N, C] or [N, C, H, W]"),
                    "batch_norm: expected input of rank 2 or 4 ([N, C] or [N, C, H, W]), got shape [3, 4, 5] (rank 3)");
  CHECK_THROWS_WITH(check_rank("op", "x", x, {1, 2, 4}),
                    "op: expected x of rank 1, 2 or 4, got shape [3, 4, 5] (rank 3)");
  CHECK_NOTHROW(check_rank("batch_norm", "input", Shape{2, 3}, {2, 4}));
  CHECK_NOTHROW(check_min_rank("op", "x", x, 3));
  CHECK_THROWS_WITH(check_min_rank("softmax", "logits", Shape{4}, 2, "[N, C, ...]"),
                    "softmax: expected logits of rank >= 2 ([N, C, ...]), got shape [4] (rank 1)");

  CHECK_NOTHROW(check_shape("op", "bias", Shape{4}, Shape{4}));
  CHECK_THROWS_WITH(check_shape("linear", "bias", Shape{5}, Shape{4}),
                    "linear: expected bias of shape [4], got shape [5]");
  CHECK_NOTHROW(check_same_shape("mse", "input", x, "target", Shape{3, 4, 5}));
  CHECK_THROWS_WITH(check_same_shape("bce_with_logits", "logits", Shape{4, 10}, "target", Shape{4, 9}),
                    "bce_with_logits: expected logits [4, 10] and target [4, 9] to have the same shape");

  CHECK_NOTHROW(check_dim("conv2d", "input", x, 1, 4));
  CHECK_NOTHROW(check_dim("conv2d", "input", x, -1, 5));
  CHECK_THROWS_WITH(check_dim("conv2d", "input", x, 1, 3, "channels"),
                    "conv2d: expected input with dimension 1 (channels) equal to 3, got shape [3, 4, 5]");
  CHECK_THROWS_AS(check_dim("op", "x", x, 3, 1), ShapeError);  // no such axis: an error, not a crash
  CHECK_THROWS_AS(check_dim("op", "x", x, -4, 1), ShapeError);
  CHECK_NOTHROW(check_dim_at_least("accuracy", "logits", x, 0, 1));
  CHECK_THROWS_WITH(check_dim_at_least("accuracy", "logits", Shape{0, 10}, 0, 1, "rows"),
                    "accuracy: expected logits with dimension 0 (rows) >= 1, got shape [0, 10]");
  CHECK_THROWS_AS(check_dim_at_least("op", "x", Shape{}, 0, 1), ShapeError);

  CHECK_NOTHROW(check_shape_arg(true, "op", "x", "anything", "whatever"));
  CHECK_THROWS_WITH(check_shape_arg(false, "concat", "inputs", "to match outside axis 1", "[2, 3] and [3, 3]"),
                    "concat: expected inputs to match outside axis 1, got [2, 3] and [3, 3]");
}

TEST_CASE("Value checks print numbers exactly and reject NaN", "[core][check]") {
  const double nan = std::nan("");
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_NOTHROW(check_positive("Adam", "lr", 1e-3));
  CHECK_THROWS_AS(check_positive("Adam", "lr", 0.0), ValueError);
  CHECK_THROWS_WITH(check_positive("Adam", "lr", -0.1), "Adam: expected lr > 0, got -0.1");
  CHECK_THROWS_WITH(check_positive("Adam", "lr", nan), "Adam: expected lr > 0, got nan");
  CHECK_THROWS_WITH(check_positive("upsample", "factor", std::int64_t{0}), "upsample: expected factor > 0, got 0");
  CHECK_NOTHROW(check_non_negative("clip_grad_norm", "max_norm", 0.0));
  CHECK_THROWS_WITH(check_non_negative("clip_grad_norm", "max_norm", -1e-08),
                    "clip_grad_norm: expected max_norm >= 0, got -1e-08");
  CHECK_THROWS_AS(check_non_negative("op", "x", nan), ValueError);

  CHECK_NOTHROW(check_at_least("Loader", "batch_size", std::int64_t{1}, 1));
  CHECK_THROWS_WITH(check_at_least("Loader", "batch_size", std::int64_t{0}, 1),
                    "Loader: expected batch_size >= 1, got 0");
  // Mixed signed and unsigned integers compare exactly (no wrap-around of -1 to 2^64 - 1).
  CHECK_THROWS_AS(check_at_least("op", "n", -1, std::size_t{0}), ValueError);
  CHECK_NOTHROW(check_at_least("op", "n", std::size_t{3}, -1));

  CHECK_NOTHROW(check_finite("op", "x", 1.0f));
  CHECK_THROWS_WITH(check_finite("set_lr", "lr", -inf), "set_lr: expected lr to be finite, got -inf");

  CHECK_NOTHROW(check_in_range("dropout", "p", 0.0, 0, 1, Bounds::closed_open));
  CHECK_THROWS_WITH(check_in_range("dropout", "p", 1.0, 0, 1, Bounds::closed_open),
                    "dropout: expected p in [0, 1), got 1");
  CHECK_THROWS_WITH(check_in_range("kl_sparsity_penalty", "rho", 1.5, 0, 1, Bounds::open),
                    "kl_sparsity_penalty: expected rho in (0, 1), got 1.5");
  CHECK_THROWS_AS(check_in_range("op", "rho", 0.0, 0, 1, Bounds::open), ValueError);
  CHECK_NOTHROW(check_in_range("op", "beta", 1.0, 0, 1, Bounds::open_closed));
  CHECK_THROWS_AS(check_in_range("op", "beta", 0.0, 0, 1, Bounds::open_closed), ValueError);
  CHECK_NOTHROW(check_in_range("op", "k", 3, 0, 3));
  CHECK_THROWS_WITH(check_in_range("op", "k", 4, 0, 3), "op: expected k in [0, 3], got 4");
  CHECK_THROWS_AS(check_in_range("op", "x", nan, 0.0, 1.0), ValueError);
  CHECK_THROWS_WITH(check_in_range("op", "x", -1, std::size_t{0}, std::size_t{5}), "op: expected x in [0, 5], got -1");

  CHECK_NOTHROW(check_arg(true, "op", "x", "anything", "whatever"));
  CHECK_THROWS_AS(check_arg(false, "clamp", "lo and hi", "with lo <= hi", "lo = 2, hi = 1"), ValueError);
  CHECK_THROWS_WITH(check_arg(false, "clamp", "lo and hi", "with lo <= hi", "lo = 2, hi = 1"),
                    "clamp: expected lo and hi with lo <= hi, got lo = 2, hi = 1");
  // Every check throws a member of the genmod::Error family.
  CHECK_THROWS_AS(check_rank("op", "x", Shape{1}, 2), Error);
  CHECK_THROWS_AS(check_positive("op", "x", -1), Error);
}

}  // namespace core_check_test
