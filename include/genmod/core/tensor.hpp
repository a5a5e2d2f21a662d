#pragma once
/// \file tensor.hpp
/// Tensor<T>: a contiguous, row-major, 64-byte aligned array of rank 0..4.
///
/// Copies are shallow: two Tensors may share one buffer (as in NumPy and PyTorch), which is what
/// lets the autodiff tape keep values alive without copying them. `clone()` makes a deep copy.
/// Buffers come from the caching pool in memory.hpp and are reference counted intrusively.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "genmod/config.hpp"
GENMOD_EIGEN_INCLUDE_BEGIN  // see config.hpp
#include <Eigen/Core>
GENMOD_EIGEN_INCLUDE_END

#include "genmod/config.hpp"
#include "genmod/core/memory.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/shape.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod {

/// Dense tensor of T (float by default; double for gradient checks; integers for labels and pixels).
template <class T = float>
class Tensor {
  static_assert(std::is_trivially_copyable_v<T>, "Tensor<T> holds trivially copyable element types");

 public:
  /// Element type.
  using value_type = T;
  /// Dynamic row-major Eigen matrix of T, the layout matrix() views a tensor as.
  using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  /// Mutable Eigen view (no copy) of a tensor's buffer as a RowMatrix.
  using MatrixMap = Eigen::Map<RowMatrix>;
  /// Read-only Eigen view of a tensor's buffer as a RowMatrix.
  using ConstMatrixMap = Eigen::Map<const RowMatrix>;
  /// Mutable Eigen view of all elements as a column vector.
  using VectorMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
  /// Read-only Eigen view of all elements as a column vector.
  using ConstVectorMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;

  /// An undefined tensor: no buffer (defined() is false).
  Tensor() noexcept = default;

  /// Uninitialised tensor of the given shape.
  explicit Tensor(const Shape& shape) : shape_(shape) {
    const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * sizeof(T);
    buf_ = detail::CachingPool::instance().acquire(bytes);
    data_ = static_cast<T*>(buf_->payload());
  }

  /// Shallow copy: shares o's buffer (one more reference), no element is copied.
  Tensor(const Tensor& o) noexcept : buf_(o.buf_), data_(o.data_), shape_(o.shape_) { retain(); }
  /// Takes o's buffer; o becomes undefined.
  Tensor(Tensor&& o) noexcept : buf_(std::exchange(o.buf_, nullptr)), data_(std::exchange(o.data_, nullptr)), shape_(o.shape_) {}
  /// Shallow assignment: releases this buffer and shares o's.
  Tensor& operator=(const Tensor& o) noexcept {
    if (this != &o) {
      o.retain();
      release();
      buf_ = o.buf_;
      data_ = o.data_;
      shape_ = o.shape_;
    }
    return *this;
  }
  /// Takes o's buffer, releasing this one; o becomes undefined.
  Tensor& operator=(Tensor&& o) noexcept {
    if (this != &o) {
      release();
      buf_ = std::exchange(o.buf_, nullptr);
      data_ = std::exchange(o.data_, nullptr);
      shape_ = o.shape_;
    }
    return *this;
  }
  ~Tensor() { release(); }

  /// False for a default-constructed (or moved-from) tensor.
  bool defined() const noexcept { return buf_ != nullptr; }
  /// Extents, outermost first (N, C, H, W for images).
  const Shape& shape() const noexcept { return shape_; }
  /// Number of dimensions (0 for a scalar).
  int rank() const noexcept { return shape_.rank(); }
  /// Number of elements (the product of the extents; 0 when undefined).
  std::int64_t numel() const noexcept { return defined() ? shape_.numel() : 0; }
  /// Same as numel(), for range-style code.
  std::int64_t size() const noexcept { return numel(); }
  /// Extent of dimension i (negative counts from the end), checked.
  std::int64_t dim(int i) const { return shape_.dim(i); }

  /// First element of the contiguous row-major buffer (null when undefined).
  T* data() noexcept { return data_; }
  /// Read-only first element of the buffer.
  const T* data() const noexcept { return data_; }
  /// Iterator to the first element (flat, row-major order).
  T* begin() noexcept { return data_; }
  /// Iterator one past the last element.
  T* end() noexcept { return data_ + numel(); }
  /// Read-only iterator to the first element.
  const T* begin() const noexcept { return data_; }
  /// Read-only iterator one past the last element.
  const T* end() const noexcept { return data_ + numel(); }
  /// All elements as a span, in row-major order.
  std::span<T> span() noexcept { return {data_, static_cast<std::size_t>(numel())}; }
  /// All elements as a read-only span.
  std::span<const T> span() const noexcept { return {data_, static_cast<std::size_t>(numel())}; }

  /// Element by flat (row-major) index.
  T& operator[](std::int64_t i) noexcept { return data_[i]; }
  /// Read-only element by flat (row-major) index.
  const T& operator[](std::int64_t i) const noexcept { return data_[i]; }

  /// Element by multi-index; the number of indices must equal the rank.
  template <class... I>
    requires(std::is_integral_v<I> && ...)
  T& operator()(I... idx) noexcept {
    return data_[offset_of(idx...)];
  }
  /// Read-only element by multi-index (one index per dimension).
  template <class... I>
    requires(std::is_integral_v<I> && ...)
  const T& operator()(I... idx) const noexcept {
    return data_[offset_of(idx...)];
  }

  /// The single element of a one-element tensor.
  T item() const {
    if (numel() != 1) throw ShapeError("Tensor::item: expected one element, got shape " + shape_.to_string());
    return data_[0];
  }

  /// A view with another shape and the same elements (no copy). One extent may be -1 (inferred).
  Tensor reshape(std::initializer_list<std::int64_t> dims) const { return reshape(infer_shape(dims)); }
  /// A view with shape s and the same elements (no copy); s.numel() must equal numel().
  Tensor reshape(const Shape& s) const {
    if (s.numel() != numel())
      throw ShapeError("Tensor::reshape: cannot view shape " + shape_.to_string() + " (" + std::to_string(numel()) +
                       " elements) as " + s.to_string());
    Tensor t(*this);
    t.shape_ = s;
    return t;
  }

  /// A view of entries [start, start + count) along dimension 0 (no copy).
  Tensor rows(std::int64_t start, std::int64_t count) const {
    if (rank() == 0 || start < 0 || count < 0 || start + count > shape_[0])
      throw ShapeError("Tensor::rows: range [" + std::to_string(start) + ", " + std::to_string(start + count) +
                       ") is outside dimension 0 of shape " + shape_.to_string());
    Tensor t(*this);
    t.shape_ = shape_.with_dim(0, count);
    t.data_ = data_ + start * shape_.stride(0);
    return t;
  }

  /// Deep copy into a fresh buffer.
  Tensor clone() const {
    if (!defined()) return Tensor();
    Tensor t(shape_);
    std::memcpy(t.data_, data_, static_cast<std::size_t>(numel()) * sizeof(T));
    return t;
  }

  /// Copies another tensor's elements into this one (shapes must match; no reallocation).
  void copy_from(const Tensor& src) {
    if (!(src.shape_ == shape_))
      throw ShapeError("Tensor::copy_from: destination shape " + shape_.to_string() + " differs from source " +
                       src.shape_.to_string());
    if (src.data_ != data_) std::memmove(data_, src.data_, static_cast<std::size_t>(numel()) * sizeof(T));
  }

  /// Sets every element to v.
  void fill(T v) noexcept { std::fill(data_, data_ + numel(), v); }

  /// Element-converted copy.
  template <class U>
  Tensor<U> cast() const {
    Tensor<U> t(shape_);
    for (std::int64_t i = 0; i < numel(); ++i) t[i] = static_cast<U>(data_[i]);
    return t;
  }

  /// True when no other Tensor shares this buffer (then in-place updates are invisible to others).
  bool is_unique() const noexcept { return buf_ && buf_->refs.load(std::memory_order_acquire) == 1; }

  /// True when both tensors view the same buffer.
  bool shares_buffer_with(const Tensor& o) const noexcept { return buf_ && buf_ == o.buf_; }

  /// Eigen view as a rows x cols row-major matrix (rank 2: its own extents; rank 0/1: one row;
  /// rank 3/4: first dimension x the rest).
  MatrixMap matrix() noexcept { return MatrixMap(data_, mat_rows(), mat_cols()); }
  /// Read-only Eigen matrix view (same shape rules as the mutable one).
  ConstMatrixMap matrix() const noexcept { return ConstMatrixMap(data_, mat_rows(), mat_cols()); }
  /// Eigen view of all elements as a column vector.
  VectorMap vector() noexcept { return VectorMap(data_, numel()); }
  /// Read-only Eigen view of all elements as a column vector.
  ConstVectorMap vector() const noexcept { return ConstVectorMap(data_, numel()); }

 private:
  template <class U>
  friend class Tensor;

  void retain() const noexcept {
    if (buf_) buf_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept {
    if (buf_ && buf_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) detail::CachingPool::instance().release(buf_);
    buf_ = nullptr;
    data_ = nullptr;
  }

  template <class... I>
  std::int64_t offset_of(I... idx) const noexcept {
    const std::int64_t ids[] = {static_cast<std::int64_t>(idx)...};
    std::int64_t off = 0;
    for (std::size_t k = 0; k < sizeof...(I); ++k) off = off * shape_[static_cast<int>(k)] + ids[k];
    return off;
  }

  std::int64_t mat_rows() const noexcept { return rank() >= 2 ? shape_[0] : 1; }
  std::int64_t mat_cols() const noexcept { return rank() >= 2 ? numel() / std::max<std::int64_t>(shape_[0], 1) : numel(); }

  Shape infer_shape(std::initializer_list<std::int64_t> dims) const {
    std::int64_t known = 1;
    int unknown = -1, i = 0;
    std::int64_t d[kMaxRank] = {};
    if (dims.size() > static_cast<std::size_t>(kMaxRank))
      throw ShapeError("Tensor::reshape: rank " + std::to_string(dims.size()) + " exceeds " + std::to_string(kMaxRank));
    for (std::int64_t v : dims) {
      if (v == -1) {
        if (unknown >= 0) throw ShapeError("Tensor::reshape: more than one extent is -1");
        unknown = i;
      } else {
        known *= v;
      }
      d[i++] = v;
    }
    if (unknown >= 0) {
      if (known == 0 || numel() % known != 0)
        throw ShapeError("Tensor::reshape: cannot infer the -1 extent viewing shape " + shape_.to_string());
      d[unknown] = numel() / known;
    }
    return Shape(std::span<const std::int64_t>(d, dims.size()));
  }

  detail::BufferHeader* buf_ = nullptr;
  T* data_ = nullptr;
  Shape shape_;
};

/// Uninitialised tensor.
template <class T = float>
Tensor<T> empty(const Shape& s) {
  return Tensor<T>(s);
}

/// Tensor filled with v.
template <class T = float>
Tensor<T> full(const Shape& s, T v) {
  Tensor<T> t(s);
  t.fill(v);
  return t;
}

/// Tensor of shape s filled with zeros.
template <class T = float>
Tensor<T> zeros(const Shape& s) {
  Tensor<T> t(s);
  if (t.numel()) std::memset(t.data(), 0, static_cast<std::size_t>(t.numel()) * sizeof(T));
  return t;
}

/// Tensor of shape s filled with ones.
template <class T = float>
Tensor<T> ones(const Shape& s) {
  return full<T>(s, T(1));
}

/// Scalar (rank 0) tensor.
template <class T = float>
Tensor<T> scalar(T v) {
  return full<T>(Shape{}, v);
}

/// Copies `values` (row-major) into a new tensor of shape s; their count must equal s.numel().
template <class T = float>
Tensor<T> from_data(const Shape& s, std::span<const T> values) {
  if (static_cast<std::int64_t>(values.size()) != s.numel())
    throw ShapeError("from_data: shape " + s.to_string() + " needs " + std::to_string(s.numel()) + " values, got " +
                     std::to_string(values.size()));
  Tensor<T> t(s);
  if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * sizeof(T));
  return t;
}
/// Copies a brace list (row-major) into a new tensor of shape s: `from_data({2, 2}, {1, 2, 3, 4})`.
template <class T = float>
Tensor<T> from_data(const Shape& s, std::initializer_list<T> values) {
  return from_data<T>(s, std::span<const T>(values.begin(), values.size()));
}

namespace detail {

/// Where t's elements sit in the stream of a fill: {index of t's first element, length of the
/// whole fill}. Without an active sample window (random.hpp) that is {0, numel}; with one, and a
/// leading dimension equal to the window's count, t is rows [first, first + count) of a fill of
/// `total` rows.
template <class T>
std::pair<std::int64_t, std::int64_t> window_of(const Tensor<T>& t, const Generator& g) noexcept {
  const SampleWindow& w = g.sample_window();
  if (!w.active() || t.rank() == 0 || t.dim(0) != w.count) return {0, t.numel()};
  const std::int64_t row = t.numel() / w.count;
  return {w.first * row, w.total * row};
}

}  // namespace detail

/// Fills t with uniforms in [lo, hi) from g (reproducible whatever the thread count). Under a
/// data-parallel sample window (SampleWindow), t may be this rank's rows of a larger fill.
template <class T>
void fill_uniform(Tensor<T>& t, Generator& g, T lo = T(0), T hi = T(1)) {
  static_assert(std::is_floating_point_v<T>, "fill_uniform needs a floating-point tensor");
  const std::pair<std::int64_t, std::int64_t> where = detail::window_of(t, g);
  const std::int64_t base = where.first, stream_len = where.second;
  const std::uint64_t first = g.reserve_blocks(detail::blocks_for<T>(stream_len));
  T* out = t.data();
  parallel_for(t.numel(), 8, [&](std::int64_t b, std::int64_t e) {
    detail::fill_uniform_range<T>(g, first, out, base + b, base + e, base);
    for (std::int64_t i = b; i < e; ++i) out[i] = lo + (hi - lo) * out[i];
  });
}

/// Fills t with normals N(mean, stddev^2) from g (reproducible whatever the thread count).
template <class T>
void fill_normal(Tensor<T>& t, Generator& g, T mean = T(0), T stddev = T(1)) {
  static_assert(std::is_floating_point_v<T>, "fill_normal needs a floating-point tensor");
  const std::pair<std::int64_t, std::int64_t> where = detail::window_of(t, g);
  const std::int64_t base = where.first, stream_len = where.second;
  const std::uint64_t first = g.reserve_blocks(detail::blocks_for<T>(stream_len + 1));
  T* out = t.data();
  parallel_for(t.numel(), 32, [&](std::int64_t b, std::int64_t e) {
    detail::fill_normal_range<T>(g, first, out, base + b, base + e, base);
    for (std::int64_t i = b; i < e; ++i) out[i] = mean + stddev * out[i];
  });
}

/// Uniform [0, 1) tensor.
template <class T = float>
Tensor<T> rand(const Shape& s, Generator& g) {
  Tensor<T> t(s);
  fill_uniform(t, g);
  return t;
}

/// Standard normal tensor.
template <class T = float>
Tensor<T> randn(const Shape& s, Generator& g) {
  Tensor<T> t(s);
  fill_normal(t, g);
  return t;
}

/// True when both tensors have the same shape and every pair of elements differs by at most
/// atol + rtol * |b|.
template <class T>
bool allclose(const Tensor<T>& a, const Tensor<T>& b, double rtol = 1e-5, double atol = 1e-8) {
  if (!(a.shape() == b.shape())) return false;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
    if (!(std::abs(x - y) <= atol + rtol * std::abs(y))) return false;
  }
  return true;
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::Tensor, float)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::Tensor, double)
#endif
