#pragma once
/// \file module_list.hpp
/// ModuleList<M>: a list of modules held as one member with one `visit`: the steps of a flow, a
/// stack of residual blocks, the layers of a PixelCNN. Unlike Sequential it imposes no signature:
/// the owner calls the elements as it means to (`for (auto& step : steps) { auto [y, ld] =
/// step.forward(x); ... }`). Children are named "0", "1", ...
///
/// M is the element type: a concrete module (every element the same class) or a polymorphic base
/// (`ModuleList<nn::Module<float>>`, `ModuleList<nn::Layer<float>>`, a family's own base class),
/// in which case any derived module can be added. Elements are held by shared ownership, so copies
/// of the list share the modules, as copies of a module share its parameters.

#include <cstddef>
#include <iterator>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/nn/module.hpp"

namespace genmod::nn {

/// A list of modules of (a class derived from) M, visited as children "0", "1", ...
template <class M>
class ModuleList : public Module<typename M::value_type> {
 public:
  /// The value type of the modules.
  using T = typename M::value_type;
  static_assert(std::is_base_of_v<Module<T>, M>, "nn::ModuleList<M>: M must be a genmod::nn::Module<T> type");

  /// Iterates over the elements as M&.
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;  ///< standard iterator typedefs
    using value_type = M;                                 ///< the element type
    using difference_type = std::ptrdiff_t;               ///< distance between elements
    using pointer = M*;                                   ///< pointer to an element
    using reference = M&;                                 ///< reference to an element

    iterator() = default;
    /// An iterator at `it` of the underlying vector.
    explicit iterator(typename std::vector<std::shared_ptr<M>>::const_iterator it) : it_(it) {}
    /// The element.
    M& operator*() const { return **it_; }
    /// The element's members.
    M* operator->() const { return it_->get(); }
    /// Next element.
    iterator& operator++() {
      ++it_;
      return *this;
    }
    /// Next element (postfix).
    iterator operator++(int) {
      iterator old = *this;
      ++it_;
      return old;
    }
    /// Same position.
    bool operator==(const iterator& o) const { return it_ == o.it_; }

   private:
    typename std::vector<std::shared_ptr<M>>::const_iterator it_{};
  };

  /// An empty list.
  ModuleList() = default;

  /// Appends a module of M or of a class derived from M (copied or moved in); returns it.
  template <class D>
  requires std::is_base_of_v<M, std::decay_t<D>> std::decay_t<D>
  &push_back(D&& module) {
    auto p = std::make_shared<std::decay_t<D>>(std::forward<D>(module));
    auto& ref = *p;
    items_.push_back(std::move(p));
    return ref;
  }
  /// Constructs a D (M by default) in place from `args`; returns it.
  template <class D = M, class... Args>
  requires std::is_base_of_v<M, D> D& emplace_back(Args&&... args) {
    auto p = std::make_shared<D>(std::forward<Args>(args)...);
    auto& ref = *p;
    items_.push_back(std::move(p));
    return ref;
  }

  /// Number of modules.
  std::size_t size() const noexcept { return items_.size(); }
  /// True when the list holds no module.
  bool empty() const noexcept { return items_.empty(); }
  /// The i-th module (bounds-checked: IndexError-like ValueError naming the size).
  M& operator[](std::size_t i) const {
    if (i >= items_.size())
      throw ValueError("ModuleList: index " + std::to_string(i) + " out of range for " + std::to_string(items_.size()) +
                       " modules");
    return *items_[i];
  }
  /// The i-th module as D, or nullptr when it is of another type.
  template <class D>
  D* as(std::size_t i) const noexcept {
    return i < items_.size() ? dynamic_cast<D*>(items_[i].get()) : nullptr;
  }
  /// First element.
  iterator begin() const { return iterator(items_.begin()); }
  /// Past the last element.
  iterator end() const { return iterator(items_.end()); }

  /// Visits each module as child "0", "1", ...
  void visit(ModuleVisitor<T>& v) override {
    for (std::size_t i = 0; i < items_.size(); ++i) v.child(std::to_string(i), *items_[i]);
  }

 private:
  std::vector<std::shared_ptr<M>> items_;
};

}  // namespace genmod::nn
