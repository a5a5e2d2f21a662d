#pragma once
/// \file tape.hpp
/// The tape: define-by-run reverse-mode autodiff at tensor level.
///
/// Each differentiable op computes its value at once and, when an input requires a gradient,
/// appends one node (backward callable, input slot ids, output Var) to the thread's current Tape.
/// Construction order is a topological order, so backward is one reverse sweep over the nodes, with
/// no graph search. Ops whose inputs are all constants record nothing, so nodes that cannot reach
/// a leaf needing a gradient never exist.
///
/// Memory: nodes and their closures live in an arena, and tensors in the caching pool; a Tape's
/// storage is recycled per thread when the Tape is destroyed. A training step that repeats the
/// previous step's shapes therefore makes no heap allocation once warm.
///
/// Backward formulas are written with the same differentiable ops. With `create_graph` off they
/// run with recording off and simply compute; with it on they record new nodes, so the gradients
/// they return can be differentiated again (double backward, e.g. WGAN-GP's gradient penalty).

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/autodiff/arena.hpp"
#include "genmod/autodiff/grad_mode.hpp"
#include "genmod/autodiff/var.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/elementwise.hpp"
#include "genmod/kernels/index.hpp"

namespace genmod {

/// Options of Tape::backward and Tape::grad.
struct BackwardOptions {
  /// Record the backward computation so its results can be differentiated again.
  bool create_graph = false;
  /// Tape::grad only: let an input that the root does not depend on (or that is not recorded on
  /// the tape at all) have a zero gradient instead of throwing AutodiffError. Off by default
  /// because such an input is nearly always a mistake that would otherwise pass in silence: a
  /// WGAN-GP penalty taken with respect to the wrong Var becomes the constant lambda (||0|| - 1)^2
  /// and training runs without it. (PyTorch's torch.autograd.grad has the same switch.)
  bool allow_unused = false;
};

template <class T>
class GradSink;

namespace detail {

/// A recorded op. `out` is the op's result; `inputs` are the slot ids of its Var inputs (-1 for
/// constants).
template <class T>
struct Node {
  Var<T> out;
  const std::int32_t* inputs = nullptr;
  std::int32_t n_inputs = 0;
  const char* name = "";

  Node(Var<T> o, const std::int32_t* in, std::int32_t n, const char* nm)
      : out(std::move(o)), inputs(in), n_inputs(n), name(nm) {}
  virtual ~Node() = default;
  virtual void backward(const Var<T>& gout, GradSink<T>& sink) = 0;
};

template <class T, class F>
struct NodeImpl final : Node<T> {
  F f;
  NodeImpl(Var<T> o, const std::int32_t* in, std::int32_t n, const char* nm, F fn)
      : Node<T>(std::move(o), in, n, nm), f(std::move(fn)) {}
  void backward(const Var<T>& gout, GradSink<T>& sink) override { f(this->out, gout, sink); }
};

/// What a Tape owns; recycled per thread so that a new Tape each step reuses the last one's memory.
template <class T>
struct TapeStorage {
  Arena arena;
  std::vector<Node<T>*> nodes;
  std::vector<Tensor<T>> accumulate_into;  // per slot: a parameter's gradient buffer, or undefined
  std::vector<std::int32_t> producer;      // per slot: index of the node that made it, or -1 for a leaf
  std::vector<Var<T>> grads;               // per slot, during and after a backward sweep
  std::vector<unsigned char> needed;       // per slot, during a sweep: can reach a requested gradient
  std::vector<std::int32_t> first_use;     // per slot, with a ready hook: first node that reads it, or -1
  std::vector<std::int32_t> ready_order;   // parameter slots by first_use, latest first

  void clear() noexcept {
    for (Node<T>* n : nodes) n->~Node<T>();
    nodes.clear();
    accumulate_into.clear();
    producer.clear();
    grads.clear();
    needed.clear();
    first_use.clear();
    ready_order.clear();
    arena.reset();
  }
};

template <class T>
std::vector<std::unique_ptr<TapeStorage<T>>>& tape_storage_pool() {
  thread_local std::vector<std::unique_ptr<TapeStorage<T>>> pool;
  return pool;
}

inline std::uint64_t next_tape_epoch() noexcept {
  thread_local std::uint64_t counter = 0;
  // Thread id bits keep epochs unique across threads as well.
  static std::atomic<std::uint64_t> thread_counter{0};
  thread_local const std::uint64_t thread_tag = (thread_counter.fetch_add(1) + 1) << 40;
  return thread_tag | ++counter;
}

template <class T>
Tape<T>*& current_tape() noexcept {
  thread_local Tape<T>* tape = nullptr;
  return tape;
}

}  // namespace detail

/// Receives the gradients a node's backward computes for its inputs.
template <class T>
class GradSink {
 public:
  /// True when input k (in the order the op was recorded with) needs a gradient.
  bool needs(int k) const noexcept {
    const std::int32_t s = inputs_[k];
    return s >= 0 && (*needed_)[static_cast<std::size_t>(s)];
  }
  /// Adds g to input k's gradient (g must have input k's shape).
  void add(int k, Var<T> g);

  /// Adds g into the block [start, start + g.dim(axis)) along `axis` of input k's gradient, whose
  /// shape is `full` (the adjoint of a slice), in place: one zeroed gradient per input instead of a
  /// full-size temporary per slice (a recurrence that slices T steps out of one map would otherwise
  /// write T maps). Returns false, adding nothing, when the result must stay differentiable
  /// (create_graph with g or the gradient so far on the tape); the op then calls add() with the
  /// embedded gradient.
  bool add_block(int k, const Var<T>& g, const Shape& full, int axis, std::int64_t start);

  /// When input k is a parameter whose gradient this sweep adds into its gradient buffer
  /// (Tape::backward without create_graph), that buffer, so an op can accumulate its contribution
  /// there in place (e.g. a weight gradient as a GEMM with beta = 1) instead of returning a new
  /// tensor that the tape adds afterwards: for a large weight that saves writing, zeroing and
  /// re-reading a weight-sized temporary. Otherwise (not needed, not a parameter, Tape::grad,
  /// create_graph, or a buffer whose shape is not `shape`, the input's) nullptr, and the op uses
  /// add() (which reports a mismatched shape).
  Tensor<T>* parameter_gradient(int k, const Shape& shape) const noexcept;

 private:
  friend class Tape<T>;
  GradSink(Tape<T>* tape, const std::int32_t* inputs, const std::vector<unsigned char>* needed)
      : tape_(tape), inputs_(inputs), needed_(needed) {}
  Tape<T>* tape_;
  const std::int32_t* inputs_;
  const std::vector<unsigned char>* needed_;
};

/// A recording of differentiable ops on this thread. Constructing a Tape makes it the thread's
/// current tape (tapes nest; the previous one is restored on destruction). Vars recorded on a tape
/// are valid until the tape is destroyed or cleared.
template <class T = float>
class Tape {
 public:
  Tape() : previous_(detail::current_tape<T>()), previous_epoch_(detail::current_tape_epoch<T>()) {
    auto& pool = detail::tape_storage_pool<T>();
    if (pool.empty()) {
      storage_ = new detail::TapeStorage<T>();
    } else {
      storage_ = pool.back().release();
      pool.pop_back();
    }
    epoch_ = detail::next_tape_epoch();
    activate();
  }
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;
  ~Tape() {
    storage_->clear();
    detail::tape_storage_pool<T>().emplace_back(storage_);
    detail::current_tape<T>() = previous_;
    detail::current_tape_epoch<T>() = previous_epoch_;
  }

  /// Drops every node and slot; Vars recorded so far become constants.
  void clear() {
    storage_->clear();
    epoch_ = detail::next_tape_epoch();
    if (detail::current_tape<T>() == this) detail::current_tape_epoch<T>() = epoch_;
  }

  /// A leaf that requires a gradient (an input to differentiate with respect to).
  Var<T> leaf(Tensor<T> value) { return new_slot(std::move(value), Tensor<T>(), -1); }

  /// A leaf whose gradient backward() adds into `grad_buffer` (a parameter's gradient).
  Var<T> parameter_leaf(Tensor<T> value, Tensor<T> grad_buffer) {
    return new_slot(std::move(value), std::move(grad_buffer), -1);
  }

  /// Called by backward() (without create_graph) with a parameter's gradient buffer as soon as no
  /// op left in the sweep can add to it, while the sweep goes on: the buffer then holds its final
  /// value for this backward pass. Data-parallel training starts reducing gradients there, so that
  /// communication overlaps the rest of the backward pass. The reverse sweep visits ops in reverse
  /// recording order, so a parameter is final once the first op that read it has run its backward.
  /// Parameters that no recorded op reads are not reported. Empty: off.
  using GradientReadyFn = std::function<void(Tensor<T>& gradient_buffer)>;
  /// Sets (or, with an empty function, clears) the hook described at GradientReadyFn.
  void set_gradient_ready_hook(GradientReadyFn hook) { ready_hook_ = std::move(hook); }

  /// Gradients of the scalar `root` with respect to every leaf on this tape. Parameter leaves add
  /// theirs into their gradient buffers; other leaves' gradients are read with gradient().
  void backward(const Var<T>& root, BackwardOptions options = {}) { backward(root, Tensor<T>(), options); }

  /// As backward(root), seeding the sweep with d(something)/d(root) = seed (root's shape).
  void backward(const Var<T>& root, const Tensor<T>& seed, BackwardOptions options = {}) {
    auto& st = *storage_;
    st.needed.assign(st.producer.size(), 1);
    // Ops may add parameter gradients straight into their buffers (GradSink::parameter_gradient),
    // unless the gradients are to be differentiated again, which needs them recorded.
    into_parameter_buffers_ = !options.create_graph;
    const bool report = ready_hook_ && !options.create_graph;
    if (report) order_parameter_slots();
    try {
      sweep(root, seed, options, report);
    } catch (...) {
      into_parameter_buffers_ = false;
      throw;
    }
    into_parameter_buffers_ = false;
    // Gradients left on slots are the leaves' (the sweep releases the others as it goes).
    for (std::size_t s = 0; s < st.accumulate_into.size(); ++s) {
      Tensor<T>& target = st.accumulate_into[s];
      if (target.defined() && st.grads[s].defined()) {
        const Tensor<T>& g = st.grads[s].value();
        if (!(g.shape() == target.shape()))
          throw AutodiffError("Tape::backward: gradient of shape " + g.shape().to_string() +
                              " for a parameter of shape " + target.shape().to_string());
        kernels::axpy(T(1), g.data(), target.data(), g.numel());
      }
    }
  }

  /// Gradients of `root` with respect to `inputs` only (nothing is added to parameter buffers).
  /// An input may be a leaf or an intermediate result recorded on this tape. An input that root
  /// does not depend on, or that is not recorded on this tape (a constant, a value computed under
  /// NoGradGuard or detached, a Var of another tape), throws AutodiffError naming its position,
  /// unless `options.allow_unused`, which gives it a zero gradient. With create_graph the results
  /// are recorded Vars that can be differentiated again.
  std::vector<Var<T>> grad(const Var<T>& root, std::span<const Var<T>> inputs, BackwardOptions options = {}) {
    std::vector<Var<T>> out(inputs.size());
    grad(root, inputs, std::span<Var<T>>(out), options);
    return out;
  }
  /// As grad() above, with the inputs as a brace list: `tape.grad(loss, {x, y})`.
  std::vector<Var<T>> grad(const Var<T>& root, std::initializer_list<Var<T>> inputs, BackwardOptions options = {}) {
    return grad(root, std::span<const Var<T>>(inputs.begin(), inputs.size()), options);
  }

  /// As grad(), writing the gradients into `out` (no allocation for the result list).
  void grad(const Var<T>& root, std::span<const Var<T>> inputs, std::span<Var<T>> out, BackwardOptions options = {}) {
    if (out.size() != inputs.size())
      throw AutodiffError("Tape::grad: " + std::to_string(inputs.size()) + " inputs but room for " +
                          std::to_string(out.size()) + " gradients");
    auto& st = *storage_;
    if (!options.allow_unused)
      for (std::size_t i = 0; i < inputs.size(); ++i)
        if (!inputs[i].requires_grad()) throw unused_input(i, inputs, "it is not recorded on this tape");
    // needed[s]: kRequested for the inputs (the sweep keeps their gradients), kNeeded for the
    // slots that depend on one (the sweep runs their producers' backward), 0 otherwise.
    st.needed.assign(st.producer.size(), 0);
    for (const Var<T>& x : inputs)
      if (x.requires_grad()) st.needed[static_cast<std::size_t>(x.id_)] = kRequested;
    // Forward pass over the nodes: a slot is needed when one of its producer's inputs is.
    for (detail::Node<T>* n : st.nodes) {
      const auto o = static_cast<std::size_t>(n->out.id_);
      if (o >= st.needed.size()) break;
      if (st.needed[o]) continue;  // a requested input stays kRequested
      for (std::int32_t k = 0; k < n->n_inputs; ++k)
        if (n->inputs[k] >= 0 && st.needed[static_cast<std::size_t>(n->inputs[k])]) {
          st.needed[o] = kNeeded;
          break;
        }
    }
    sweep(root, Tensor<T>(), options);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Var<T>& x = inputs[i];
      if (x.requires_grad() && st.grads[static_cast<std::size_t>(x.id_)].defined()) {
        out[i] = st.grads[static_cast<std::size_t>(x.id_)];
      } else if (options.allow_unused || (x.requires_grad() && reaches(root, x.id_))) {
        // The second case: root does depend on x, but the ops between them returned no gradient
        // (a derivative that is zero everywhere), so zero is the true gradient, not a mistake.
        out[i] = Var<T>(zeros<T>(x.shape()));
      } else {
        st.grads.clear();
        throw unused_input(i, inputs, "the root does not depend on it");
      }
    }
    st.grads.clear();
  }

  /// After backward(): the gradient of a leaf made with leaf() (zeros if root did not depend on it).
  Tensor<T> gradient(const Var<T>& x) const {
    const auto& st = *storage_;
    if (x.requires_grad() && static_cast<std::size_t>(x.id_) < st.grads.size() &&
        st.grads[static_cast<std::size_t>(x.id_)].defined())
      return st.grads[static_cast<std::size_t>(x.id_)].value();
    return zeros<T>(x.shape());
  }

  /// Check every recorded value for NaN/Inf and throw NumericError naming the op that made it
  /// (a debug mode: it reads every output once).
  void set_check_finite(bool on) noexcept { check_finite_ = on; }

  /// Number of ops recorded since construction or the last clear().
  std::size_t num_nodes() const noexcept { return storage_->nodes.size(); }
  /// Number of recorded values (leaves and op outputs).
  std::size_t num_slots() const noexcept { return storage_->producer.size(); }
  /// Identifies this recording: Vars carry it, and a Var of an older epoch counts as a constant.
  std::uint64_t epoch() const noexcept { return epoch_; }

  /// Name of the op that produced x (empty for leaves and constants).
  const char* producer_name(const Var<T>& x) const noexcept {
    if (!x.requires_grad()) return "";
    const std::int32_t p = storage_->producer[static_cast<std::size_t>(x.id_)];
    return p >= 0 ? storage_->nodes[static_cast<std::size_t>(p)]->name : "";
  }

  /// Uninitialised room for n values of U that lives as long as the tape's nodes (for op closures
  /// that need a run-time sized array without a heap allocation).
  template <class U>
  U* arena_array(std::size_t n) {
    static_assert(std::is_trivially_destructible_v<U>, "arena arrays are never destroyed");
    return static_cast<U*>(storage_->arena.allocate(sizeof(U) * (n ? n : 1), alignof(U)));
  }

  /// The tape currently recording on this thread, or nullptr.
  static Tape* current() noexcept { return detail::current_tape<T>(); }

  /// Records an op: `out` computed from `inputs`, with backward(out, gout, sink). Used through
  /// record_op (custom_op.hpp). Inputs that are constants get id -1.
  template <class F, std::size_t N>
  Var<T> add_node(const char* name, Tensor<T> out, F&& backward, const std::array<const Var<T>*, N>& inputs) {
    return add_node_impl(name, std::move(out), std::forward<F>(backward), inputs.data(), N);
  }
  /// As add_node above, for a number of inputs known only at run time (concat, split).
  template <class F>
  Var<T> add_node(const char* name, Tensor<T> out, F&& backward, std::span<const Var<T>> inputs) {
    auto& st = *storage_;
    auto* ptrs = static_cast<const Var<T>**>(st.arena.allocate(sizeof(const Var<T>*) * inputs.size(), alignof(void*)));
    for (std::size_t i = 0; i < inputs.size(); ++i) ptrs[i] = &inputs[i];
    return add_node_impl(name, std::move(out), std::forward<F>(backward), ptrs, inputs.size());
  }

 private:
  friend class GradSink<T>;

  // Values of TapeStorage::needed during a sweep (backward() marks every slot kNeeded).
  static constexpr unsigned char kNeeded = 1;
  static constexpr unsigned char kRequested = 2;  // an input of grad(): its gradient is kept

  static AutodiffError unused_input(std::size_t i, std::span<const Var<T>> inputs, const char* why) {
    return AutodiffError("Tape::grad: input " + std::to_string(i) + " (of " + std::to_string(inputs.size()) +
                         ", shape " + inputs[i].shape().to_string() + ") is unused: " + why +
                         ". Differentiate with respect to the Var the root was computed from, or pass "
                         "{.allow_unused = true} to get a zero gradient for it");
  }

  // True when `slot` is an input, direct or not, of the node that made `root` (or is root): a
  // reverse walk over the nodes, the order of construction being topological.
  bool reaches(const Var<T>& root, std::int32_t slot) const {
    const auto& st = *storage_;
    if (root.id_ == slot) return true;
    std::vector<unsigned char> on_path(st.producer.size(), 0);
    on_path[static_cast<std::size_t>(root.id_)] = 1;
    for (std::size_t i = st.nodes.size(); i-- > 0;) {
      const detail::Node<T>* n = st.nodes[i];
      if (!on_path[static_cast<std::size_t>(n->out.id_)]) continue;
      for (std::int32_t k = 0; k < n->n_inputs; ++k) {
        if (n->inputs[k] == slot) return true;
        if (n->inputs[k] >= 0) on_path[static_cast<std::size_t>(n->inputs[k])] = 1;
      }
    }
    return false;
  }

  void activate() noexcept {
    detail::current_tape<T>() = this;
    detail::current_tape_epoch<T>() = epoch_;
  }

  Var<T> new_slot(Tensor<T> value, Tensor<T> accumulate, std::int32_t producer) {
    auto& st = *storage_;
    const auto id = static_cast<std::int32_t>(st.producer.size());
    st.producer.push_back(producer);
    st.accumulate_into.push_back(std::move(accumulate));
    return Var<T>(std::move(value), id, epoch_);
  }

  template <class F>
  Var<T> add_node_impl(const char* name, Tensor<T> out, F&& backward, const Var<T>* const* inputs, std::size_t n) {
    auto& st = *storage_;
    if (check_finite_) check_values_finite(name, out);
    auto* ids =
        static_cast<std::int32_t*>(st.arena.allocate(sizeof(std::int32_t) * (n ? n : 1), alignof(std::int32_t)));
    for (std::size_t i = 0; i < n; ++i) ids[i] = inputs[i]->id();
    Var<T> result = new_slot(std::move(out), Tensor<T>(), static_cast<std::int32_t>(st.nodes.size()));
    using Impl = detail::NodeImpl<T, std::decay_t<F>>;
    static_assert(alignof(Impl) <= detail::Arena::kAlign, "node closure is over-aligned");
    void* mem = st.arena.allocate(sizeof(Impl), alignof(Impl));
    st.nodes.push_back(new (mem) Impl(result, ids, static_cast<std::int32_t>(n), name, std::forward<F>(backward)));
    return result;
  }

  static void check_values_finite(const char* name, const Tensor<T>& out) {
    for (std::int64_t i = 0; i < out.numel(); ++i)
      if (!std::isfinite(out[i]))
        throw NumericError(std::string("non-finite value ") + std::to_string(out[i]) + " at element " +
                           std::to_string(i) + " of the output " + out.shape().to_string() + " of op '" + name + "'");
  }

  // For the ready hook: first_use of every slot, and the parameter slots that some op reads in
  // order of their first reader, latest first (the order in which the sweep finishes them).
  void order_parameter_slots() {
    auto& st = *storage_;
    st.first_use.assign(st.producer.size(), -1);
    for (std::size_t i = 0; i < st.nodes.size(); ++i) {
      const detail::Node<T>* n = st.nodes[i];
      for (std::int32_t k = 0; k < n->n_inputs; ++k) {
        const std::int32_t s = n->inputs[k];
        if (s >= 0 && st.first_use[static_cast<std::size_t>(s)] < 0)
          st.first_use[static_cast<std::size_t>(s)] = static_cast<std::int32_t>(i);
      }
    }
    st.ready_order.clear();
    for (std::size_t s = 0; s < st.accumulate_into.size(); ++s)
      if (st.accumulate_into[s].defined() && st.first_use[s] >= 0)
        st.ready_order.push_back(static_cast<std::int32_t>(s));
    // Several slots may add into one buffer (two handles of one Parameter each make a leaf): the
    // buffer is final once the first reader of any of them has run, so each slot takes its
    // group's earliest first_use, and a group's slots end up next to each other.
    auto buffer = [&](std::int32_t s) { return st.accumulate_into[static_cast<std::size_t>(s)].data(); };
    auto use = [&](std::int32_t s) -> std::int32_t& { return st.first_use[static_cast<std::size_t>(s)]; };
    std::sort(st.ready_order.begin(), st.ready_order.end(),
              [&](std::int32_t a, std::int32_t b) { return std::less<const T*>()(buffer(a), buffer(b)); });
    for (std::size_t lo = 0, hi; lo < st.ready_order.size(); lo = hi) {
      std::int32_t earliest = use(st.ready_order[lo]);
      for (hi = lo + 1; hi < st.ready_order.size() && buffer(st.ready_order[hi]) == buffer(st.ready_order[lo]); ++hi)
        earliest = std::min(earliest, use(st.ready_order[hi]));
      for (std::size_t k = lo; k < hi; ++k) use(st.ready_order[k]) = earliest;
    }
    // Latest first reader first; ties by buffer, so a group stays together (std::sort: no
    // temporary buffer, so a training step makes no heap call).
    std::sort(st.ready_order.begin(), st.ready_order.end(), [&](std::int32_t a, std::int32_t b) {
      if (use(a) != use(b)) return use(a) > use(b);
      if (buffer(a) != buffer(b)) return std::less<const T*>()(buffer(a), buffer(b));
      return a < b;
    });
  }

  // The ready hook for every parameter slot whose first reader has run (node index >= i): its
  // gradient goes into its buffer now (backward() would add it after the sweep).
  void report_ready(std::size_t& next, std::size_t i) {
    auto& st = *storage_;
    while (next < st.ready_order.size() &&
           static_cast<std::size_t>(st.first_use[static_cast<std::size_t>(st.ready_order[next])]) >= i) {
      const auto s = static_cast<std::size_t>(st.ready_order[next++]);
      Tensor<T>& target = st.accumulate_into[s];
      if (st.grads[s].defined()) {
        const Tensor<T>& g = st.grads[s].value();
        if (!(g.shape() == target.shape()))
          throw AutodiffError("Tape::backward: gradient of shape " + g.shape().to_string() +
                              " for a parameter of shape " + target.shape().to_string());
        kernels::axpy(T(1), g.data(), target.data(), g.numel());
        st.grads[s] = Var<T>();
      }
      // Once per buffer: after the last slot of its group (the group's slots are adjacent).
      if (next == st.ready_order.size() ||
          st.accumulate_into[static_cast<std::size_t>(st.ready_order[next])].data() != target.data())
        ready_hook_(target);
    }
  }

  void sweep(const Var<T>& root, const Tensor<T>& seed, BackwardOptions options, bool report = false) {
    auto& st = *storage_;
    if (!root.requires_grad())
      throw AutodiffError(
          "Tape::backward: the root is not recorded on the current tape (it depends on no parameter or leaf, "
          "was computed under NoGradGuard, or belongs to another tape)");
    Tensor<T> g0;
    if (seed.defined()) {
      if (!(seed.shape() == root.shape()))
        throw ShapeError("Tape::backward: seed shape " + seed.shape().to_string() + " differs from root shape " +
                         root.shape().to_string());
      g0 = seed;
    } else {
      if (root.numel() != 1)
        throw AutodiffError("Tape::backward: the root has shape " + root.shape().to_string() +
                            "; a non-scalar root needs a seed gradient of the same shape");
      g0 = ones<T>(root.shape());
    }
    const std::size_t n_slots = st.producer.size();
    const std::size_t n_nodes = st.nodes.size();
    st.grads.assign(n_slots, Var<T>());
    st.grads[static_cast<std::size_t>(root.id_)] = Var<T>(std::move(g0));
    GradModeGuard mode(options.create_graph);
    create_graph_ = options.create_graph;
    std::size_t next_ready = 0;
    for (std::size_t i = n_nodes; i-- > 0;) {
      detail::Node<T>* node = st.nodes[i];
      const auto o = static_cast<std::size_t>(node->out.id_);
      if (st.needed[o] && st.grads[o].defined()) {
        // Released after use to free memory early, unless it is a result grad() returns.
        Var<T> gout = st.needed[o] == kRequested ? st.grads[o] : std::move(st.grads[o]);
        GradSink<T> sink(this, node->inputs, &st.needed);
        node->backward(gout, sink);
      }
      if (report) report_ready(next_ready, i);
    }
    create_graph_ = false;
  }

  void accumulate(std::int32_t slot, Var<T> g) {
    auto& st = *storage_;
    Var<T>& acc = st.grads[static_cast<std::size_t>(slot)];
    if (!acc.defined()) {
      acc = std::move(g);
      return;
    }
    if (!(acc.shape() == g.shape()))
      throw AutodiffError("Tape: gradient of shape " + g.shape().to_string() + " added to one of shape " +
                          acc.shape().to_string() + " (an op's backward returned a wrongly shaped gradient)");
    if (create_graph_ && (acc.requires_grad() || g.requires_grad())) {
      acc = differentiable_sum(acc, g);
    } else if (acc.value_.is_unique()) {
      kernels::axpy(T(1), g.value().data(), acc.value_.data(), g.numel());
    } else {
      Tensor<T> s(acc.shape());
      kernels::map2(acc.value().data(), g.value().data(), s.data(), s.numel(), kernels::Add{});
      acc = Var<T>(std::move(s));
    }
  }

  // GradSink::add_block: g added into a block of the slot's gradient (allocated as zeros of `full`
  // on first use, copied first when shared), unless the sum must be recorded.
  bool accumulate_block(std::int32_t slot, const Var<T>& g, const Shape& full, int axis, std::int64_t start) {
    auto& st = *storage_;
    Var<T>& acc = st.grads[static_cast<std::size_t>(slot)];
    if (create_graph_ && (g.requires_grad() || (acc.defined() && acc.requires_grad()))) return false;
    if (acc.defined() && !(acc.shape() == full))
      throw AutodiffError("Tape: gradient block of a " + full.to_string() + " gradient added to one of shape " +
                          acc.shape().to_string() + " (an op's backward returned a wrongly shaped gradient)");
    if (!acc.defined())
      acc = Var<T>(zeros<T>(full));
    else if (!acc.value_.is_unique())
      acc = Var<T>(acc.value().clone());
    kernels::add_into_axis(g.value(), acc.value_, axis, start);
    return true;
  }

  // a + b for two gradients of one shape, recorded so that it can be differentiated again.
  Var<T> differentiable_sum(const Var<T>& a, const Var<T>& b) {
    Tensor<T> s(a.shape());
    kernels::map2(a.value().data(), b.value().data(), s.data(), s.numel(), kernels::Add{});
    const std::array<const Var<T>*, 2> in{&a, &b};
    return add_node(
        "accumulate_grad", std::move(s),
        [](const Var<T>&, const Var<T>& gout, GradSink<T>& sink) {
          sink.add(0, gout);
          sink.add(1, gout);
        },
        in);
  }

  detail::TapeStorage<T>* storage_ = nullptr;
  Tape* previous_;
  std::uint64_t previous_epoch_;
  std::uint64_t epoch_ = 0;
  bool check_finite_ = false;
  bool create_graph_ = false;
  bool into_parameter_buffers_ = false;  // during backward(): see GradSink::parameter_gradient
  GradientReadyFn ready_hook_;           // set_gradient_ready_hook
};

template <class T>
void GradSink<T>::add(int k, Var<T> g) {
  if (!needs(k)) return;
  tape_->accumulate(inputs_[k], std::move(g));
}

template <class T>
bool GradSink<T>::add_block(int k, const Var<T>& g, const Shape& full, int axis, std::int64_t start) {
  if (!needs(k)) return true;
  return tape_->accumulate_block(inputs_[k], g, full, axis, start);
}

template <class T>
Tensor<T>* GradSink<T>::parameter_gradient(int k, const Shape& shape) const noexcept {
  if (!needs(k) || !tape_->into_parameter_buffers_) return nullptr;
  Tensor<T>& target = tape_->storage_->accumulate_into[static_cast<std::size_t>(inputs_[k])];
  return target.defined() && target.shape() == shape ? &target : nullptr;
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::Tape, float)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::Tape, double)
#endif
