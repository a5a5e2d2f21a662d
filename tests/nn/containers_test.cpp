// Modules vs layers: train/eval reaches every container (static, dynamic, type-erased, nested),
// ModuleList, freezing a whole module, and layer construction from literals.
#include <catch2/catch.hpp>

#include <type_traits>

#include "genmod/nn/nn.hpp"

namespace nn_containers_test {

using namespace genmod;

namespace {

// Dropout(0.5) in training mode zeroes about half of 4096 ones and doubles the rest; in evaluation
// mode it is the identity.
template <class L>
bool drops(L& layer) {
  Tensor<float> y = layer(Var<float>(ones<float>({1, 4096}))).value();
  for (float v : y)
    if (v != 1.0f) return true;
  return false;
}

// BatchNorm updates running_mean from a batch in training mode only.
template <class L>
bool updates_running_mean(L& layer, nn::BatchNorm1d<float>& bn) {
  const float before = bn.running_mean[0];
  Generator g(3);
  (void)layer(Var<float>(randn<float>({16, 4}, g)) + 5.0f);
  return bn.running_mean[0] != before;
}

}  // namespace

TEST_CASE("eval() reaches Dropout in every container", "[nn][module][mode]") {
  SECTION("static Sequential") {
    nn::Sequential net{nn::Dropout(0.5)};
    CHECK(drops(net));
    net.eval();
    CHECK_FALSE(drops(net));
    net.train();
    CHECK(drops(net));
  }
  SECTION("DynamicSequential") {
    nn::DynamicSequential<float> net{nn::Dropout(0.5)};
    CHECK(drops(net));
    net.eval();
    CHECK_FALSE(net[0].get().is_training());
    CHECK_FALSE(drops(net));
    net.train(true);
    CHECK(drops(net));
  }
  SECTION("AnyModule alone") {
    nn::AnyModule<float> net = nn::Dropout(0.5);
    net.eval();
    CHECK_FALSE(drops(net));
    CHECK_FALSE(net.as<nn::Dropout<float>>()->is_training());
  }
  SECTION("nested: a Sequential in a DynamicSequential in a Sequential") {
    nn::Sequential net{nn::DynamicSequential<float>{nn::Sequential{nn::Dropout(0.5)}}};
    net.eval();
    CHECK_FALSE(drops(net));
    net.train();
    CHECK(drops(net));
  }
}

TEST_CASE("eval() reaches BatchNorm in every container: running statistics freeze", "[nn][module][mode]") {
  SECTION("static Sequential") {
    nn::Sequential net{nn::Linear(4, 4), nn::BatchNorm1d(4)};
    net.eval();
    CHECK_FALSE(updates_running_mean(net, net.get<1>()));
    net.train();
    CHECK(updates_running_mean(net, net.get<1>()));
  }
  SECTION("DynamicSequential") {
    nn::DynamicSequential<float> net{nn::Linear(4, 4), nn::BatchNorm1d(4)};
    auto& bn = *net[1].as<nn::BatchNorm1d<float>>();
    net.eval();
    CHECK_FALSE(updates_running_mean(net, bn));
    net.train();
    CHECK(updates_running_mean(net, bn));
  }
  SECTION("AnyModule in a ModuleList") {
    nn::ModuleList<nn::Layer<float>> list;
    list.push_back(nn::AnyModule<float>(nn::BatchNorm1d(4)));
    auto& bn = *list.as<nn::AnyModule<float>>(0)->as<nn::BatchNorm1d<float>>();
    list.eval();
    CHECK_FALSE(updates_running_mean(list[0], bn));
    list.train();
    CHECK(updates_running_mean(list[0], bn));
  }
}

namespace {

// A module that is not a layer: two inputs.
struct Bilinear : nn::Module<float> {
  nn::Linear<float> a{3, 2}, b{3, 2};
  Var<float> apply(const Var<float>& x, const Var<float>& y) { return add(a(x), b(y)); }
  void visit(nn::ModuleVisitor<float>& v) override {
    v.child("a", a);
    v.child("b", b);
  }
};

}  // namespace

TEST_CASE("Module vs Layer: only layers have forward and go into containers", "[nn][module]") {
  STATIC_REQUIRE(nn::LayerType<nn::Linear<float>>);
  STATIC_REQUIRE(nn::LayerType<nn::Sequential<nn::Linear<float>, nn::ReLU<float>>>);
  STATIC_REQUIRE(nn::LayerType<nn::DynamicSequential<float>>);
  STATIC_REQUIRE(nn::LayerType<nn::AnyModule<float>>);
  STATIC_REQUIRE_FALSE(nn::LayerType<nn::LSTMCell<float>>);
  STATIC_REQUIRE_FALSE(nn::LayerType<Bilinear>);
  STATIC_REQUIRE(nn::ModuleType<Bilinear>);
  STATIC_REQUIRE(nn::ModuleType<nn::LSTMCell<float>>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<nn::AnyModule<float>, int>);
  // LSTMCell means step(x, state), not a unary forward.
  nn::LSTMCell<float> cell(3, 2);
  auto s = cell.step(Var<float>(ones<float>({4, 3})), cell.initial_state(4));
  CHECK(s.h.shape() == (Shape{4, 2}));
  CHECK(s.c.shape() == (Shape{4, 2}));
}

TEST_CASE("Layers built from double literals are float layers", "[nn][layers]") {
  nn::LeakyReLU leaky(0.2);
  nn::ELU elu(1.0);
  nn::BatchNorm2d bn(8);
  nn::BatchNorm1d bn1(8);
  STATIC_REQUIRE(std::is_same_v<decltype(leaky), nn::LeakyReLU<float>>);
  STATIC_REQUIRE(std::is_same_v<decltype(elu), nn::ELU<float>>);
  STATIC_REQUIRE(std::is_same_v<decltype(bn), nn::BatchNorm2d<float>>);
  STATIC_REQUIRE(std::is_same_v<decltype(bn1), nn::BatchNorm1d<float>>);
  nn::Sequential net{nn::Linear(2, 3), nn::LeakyReLU(0.2), nn::ELU(0.5), nn::BatchNorm1d(3)};
  Tensor<float> y = net(Var<float>(from_data<float>({2, 2}, {-1, 2, 3, -4}))).value();
  CHECK(y.shape() == (Shape{2, 3}));
  Tensor<float> neg = nn::LeakyReLU(0.2)(Var<float>(from_data<float>({1}, {-2}))).value();
  CHECK(neg[0] == Approx(-0.4f));
}

TEST_CASE("ModuleList: one member, one visit, any module type", "[nn][module]") {
  nn::ModuleList<nn::Module<float>> blocks;
  blocks.push_back(Bilinear{});
  blocks.push_back(nn::Linear(3, 3));
  blocks.emplace_back<nn::LSTMCell<float>>(3, 4);
  REQUIRE(blocks.size() == 3);
  auto named = blocks.named_parameters();
  REQUIRE(named.size() == 4 + 2 + 4);
  CHECK(named[0].name == "0.a.weight");
  CHECK(named[4].name == "1.weight");
  CHECK(named[6].name == "2.weight_ih");
  CHECK(blocks.as<Bilinear>(0) != nullptr);
  CHECK(blocks.as<Bilinear>(1) == nullptr);
  CHECK(blocks.as<Bilinear>(7) == nullptr);
  CHECK_THROWS_WITH(blocks[3], Catch::Contains("index 3") && Catch::Contains("3 modules"));
  int count = 0;
  for (auto& m : blocks) count += static_cast<int>(m.parameters().size());
  CHECK(count == 10);
  // Copies share the modules (as module copies share parameters).
  auto copy = blocks;
  copy.as<Bilinear>(0)->a.bias.value()[0] = 7.0f;
  CHECK(blocks.as<Bilinear>(0)->a.bias.value()[0] == 7.0f);
  // Mode reaches every element.
  blocks.eval();
  for (auto& m : blocks) CHECK_FALSE(m.is_training());

  // A homogeneous list of a concrete class, called as its owner means.
  nn::ModuleList<Bilinear> pairs;
  pairs.emplace_back();
  pairs.emplace_back();
  Var<float> x(ones<float>({2, 3}));
  Var<float> y = pairs[0].apply(x, x);
  CHECK(y.shape() == (Shape{2, 2}));
}

TEST_CASE("freeze, unfreeze and FreezeGuard act on a whole module, whenever called", "[nn][module][freeze]") {
  nn::Sequential net{nn::Linear(3, 3), nn::Tanh(), nn::Linear(3, 1)};
  auto params = net.parameters();  // handles taken before freezing (as an optimizer's)
  nn::freeze(net);
  for (auto& p : params) CHECK_FALSE(p.requires_grad());
  {
    // Gradients do not reach frozen parameters: the loss is a constant for them.
    Tape<float> tape;
    Var<float> x(ones<float>({2, 3}));
    Var<float> loss = sum(net(x));
    CHECK_FALSE(loss.requires_grad());
  }
  nn::unfreeze(net);
  for (auto& p : params) CHECK(p.requires_grad());

  net.get<2>().bias.set_requires_grad(false);  // frozen on its own before the guard
  {
    nn::FreezeGuard frozen(net);
    for (auto& p : net.parameters()) CHECK_FALSE(p.requires_grad());
  }
  CHECK(net.get<0>().weight.requires_grad());
  CHECK(net.get<2>().weight.requires_grad());
  CHECK_FALSE(net.get<2>().bias.requires_grad());  // restored to its own flag, not unfrozen
}

}  // namespace nn_containers_test
