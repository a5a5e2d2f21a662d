#include <catch2/catch.hpp>

#include "genmod/data/dataset.hpp"

namespace data_dataset_test {

using namespace genmod;

TEST_CASE("Dataset checks that labels match samples", "[data][dataset]") {
  auto x = zeros<float>({5, 2, 3});
  auto y = from_data<std::int64_t>({5}, {0, 1, 2, 3, 4});
  const data::Dataset ds(x, y);
  CHECK(ds.size() == 5);
  CHECK(ds.has_labels());
  CHECK(ds.sample_shape() == (Shape{2, 3}));
  CHECK_FALSE(data::Dataset(x).has_labels());
  CHECK_THROWS_WITH(data::Dataset(x, zeros<std::int64_t>({4})), Catch::Contains("[4]") && Catch::Contains("[5, 2, 3]"));
  CHECK_THROWS_AS(data::Dataset(scalar<float>(1.f)), ShapeError);
  const auto s = ds.slice(1, 3);
  CHECK(s.size() == 3);
  CHECK(s.y()[0] == 1);
  CHECK(s.x().shares_buffer_with(x));
  CHECK_THROWS_AS(ds.slice(3, 3), ShapeError);
  CHECK(data::Dataset{}.size() == 0);
}

}  // namespace data_dataset_test
