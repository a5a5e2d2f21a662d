#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "genmod/data/loader.hpp"

namespace data_loader_test {

using namespace genmod;

namespace {

// Sample i is a [2, 2] block filled with i; its label is 100 + i.
data::Dataset numbered(std::int64_t n) {
  Tensor<float> x(Shape{n, 2, 2});
  Tensor<std::int64_t> y(Shape{n});
  for (std::int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 4; ++k) x[i * 4 + k] = static_cast<float>(i);
    y[i] = 100 + i;
  }
  return data::Dataset(x, y);
}

std::vector<std::int64_t> epoch_ids(data::Loader& loader) {
  std::vector<std::int64_t> ids;
  for (auto& batch : loader) {
    for (std::int64_t i = 0; i < batch.size(); ++i) {
      const auto id = static_cast<std::int64_t>(batch.x(i, 1, 1));
      CHECK(batch.y[i] == 100 + id);  // labels travel with their samples
      ids.push_back(id);
    }
  }
  return ids;
}

}  // namespace

TEST_CASE("Loader yields batches in order, with a smaller last batch unless drop_last", "[data][loader]") {
  data::Loader loader{numbered(10), {.batch_size = 4}};
  CHECK(loader.num_batches() == 3);
  std::vector<std::int64_t> sizes, indices;
  for (auto& batch : loader) {
    sizes.push_back(batch.size());
    indices.push_back(batch.index);
    CHECK(batch.x.shape() == (Shape{batch.size(), 2, 2}));
  }
  CHECK(sizes == std::vector<std::int64_t>{4, 4, 2});
  CHECK(indices == std::vector<std::int64_t>{0, 1, 2});
  std::vector<std::int64_t> expected(10);
  for (int i = 0; i < 10; ++i) expected[static_cast<std::size_t>(i)] = i;
  CHECK(epoch_ids(loader) == expected);
  data::Loader dropping{numbered(10), {.batch_size = 4, .drop_last = true}};
  CHECK(dropping.num_batches() == 2);
  CHECK(epoch_ids(dropping).size() == 8);
  CHECK_THROWS_AS((data::Loader{numbered(3), {.batch_size = 0}}), ValueError);
  int count = 0;
  for ([[maybe_unused]] auto& b : data::Loader{data::Dataset{}, {}}) ++count;
  CHECK(count == 0);
}

TEST_CASE("Loader shuffles each epoch, reproducibly from (seed, epoch)", "[data][loader]") {
  data::Loader a{numbered(50), {.batch_size = 8, .shuffle = true, .seed = 7}};
  data::Loader b{numbered(50), {.batch_size = 8, .shuffle = true, .seed = 7}};
  data::Loader c{numbered(50), {.batch_size = 8, .shuffle = true, .seed = 8}};
  const auto a0 = epoch_ids(a), a1 = epoch_ids(a);
  const auto b0 = epoch_ids(b);
  CHECK(a0 == b0);
  CHECK(a0 != a1);
  CHECK(epoch_ids(c) != a0);
  auto sorted = a1;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 50; ++i) CHECK(sorted[static_cast<std::size_t>(i)] == i);  // a permutation
  // Resuming at epoch 1 replays epoch 1's order.
  b.set_epoch(1);
  CHECK(epoch_ids(b) == a1);
}

TEST_CASE("Loader reuses its batch buffers unless the caller keeps them", "[data][loader]") {
  data::Loader loader{numbered(64), {.batch_size = 16, .shuffle = true}};
  (void)epoch_ids(loader);  // warm up the tensor pool
  const auto before = memory_stats().system_allocations;
  const float* first = nullptr;
  for (auto& batch : loader) {
    if (!first) first = batch.x.data();
    CHECK(batch.x.data() == first);  // same buffer every step
  }
  CHECK(memory_stats().system_allocations == before);
  // A batch the caller keeps is not overwritten by the next one.
  Tensor<float> kept;
  float kept_value = -1;
  for (auto& batch : loader) {
    if (batch.index == 0) {
      kept = batch.x;
      kept_value = kept[0];
    }
  }
  CHECK(kept[0] == kept_value);
}

TEST_CASE("Loader works with unlabelled datasets and flat samples", "[data][loader]") {
  data::Loader loader{data::Dataset(zeros<float>({5, 3})), {.batch_size = 2}};
  std::int64_t seen = 0;
  for (auto& batch : loader) {
    CHECK_FALSE(batch.y.defined());
    CHECK(batch.x.dim(1) == 3);
    seen += batch.size();
  }
  CHECK(seen == 5);
}

TEST_CASE("Loader::next streams batches across epochs, in the orders begin() gives", "[data][loader]") {
  // 7 samples in batches of 3: 3 batches per epoch (3, 3, 1); 8 calls cover epochs 0, 1 and the
  // first two batches of epoch 2, exactly as three range-for epochs of a twin loader.
  data::Loader stream(numbered(7), {.batch_size = 3, .shuffle = true, .seed = 5});
  data::Loader twin(numbered(7), {.batch_size = 3, .shuffle = true, .seed = 5});
  std::vector<std::vector<std::int64_t>> expected;
  for (int e = 0; e < 3; ++e)
    for (auto& b : twin) {
      std::vector<std::int64_t> labels;
      for (std::int64_t i = 0; i < b.size(); ++i) labels.push_back(b.y[i]);
      expected.push_back(labels);
    }
  REQUIRE(expected.size() == 9);
  for (std::size_t call = 0; call < 8; ++call) {
    const data::Batch& b = stream.next();
    std::vector<std::int64_t> labels;
    for (std::int64_t i = 0; i < b.size(); ++i) labels.push_back(b.y[i]);
    INFO("call " << call);
    CHECK(labels == expected[call]);
    CHECK(b.index == static_cast<std::int64_t>(call % 3));
    CHECK(b.x(0, 0, 0) == static_cast<float>(b.y[0] - 100));
  }
  CHECK(stream.epoch() == 3);
  // The epochs differ (the stream really reshuffles).
  CHECK(expected[0] != expected[3]);

  // set_epoch restarts the stream at that epoch's first batch; begin() ends the stream's epoch.
  stream.set_epoch(1);
  CHECK(std::vector<std::int64_t>{stream.next().y[0]} == std::vector<std::int64_t>{expected[3][0]});
  (void)stream.begin();  // epoch 2 by range
  const data::Batch& after = stream.next();  // a new epoch (3), from its first batch
  CHECK(after.index == 0);
  CHECK(stream.epoch() == 4);

  data::Loader none(numbered(2), {.batch_size = 3, .drop_last = true});
  CHECK_THROWS_WITH(none.next(), Catch::Contains("Loader::next") && Catch::Contains("2 samples") &&
                                     Catch::Contains("drop_last"));
}

}  // namespace data_loader_test
