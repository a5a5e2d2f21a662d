#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "genmod/io/plot.hpp"

namespace io_plot_test {

using namespace genmod;

namespace {

std::size_t count(const std::string& s, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("Line plots have axes with nice tick labels, a legend, and one path per series", "[io][plot]") {
  const std::string svg = io::render_line_plot_svg(
      {{"train <loss>", {5.0, 3.0, 2.0, 1.5, NAN, 1.2, 1.1}, {}}, {"val & test", {6.0, 4.0, 3.0}, {0.0, 3.0, 6.0}}},
      {.title = "VAE", .y_label = "nats"});
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(count(svg, "<path ") == 2);
  CHECK(svg.find("train &lt;loss&gt;") != std::string::npos);  // escaped
  CHECK(svg.find("val &amp; test") != std::string::npos);
  CHECK(svg.find(">VAE<") != std::string::npos);
  CHECK(svg.find(">nats<") != std::string::npos);
  CHECK(svg.find(">step<") != std::string::npos);
  // x in [0, 6] and y in [1.1, 6]: ticks at whole steps.
  CHECK(svg.find(">0</text>") != std::string::npos);
  CHECK(svg.find(">6</text>") != std::string::npos);
  // The NaN leaves a gap: the first path has two sub-paths.
  const auto first = svg.find("<path d=\"");
  const auto first_end = svg.find('"', first + 9);
  CHECK(count(svg.substr(first, first_end - first), "M") == 2);
}

TEST_CASE("Line plots support a log y axis and degenerate input", "[io][plot]") {
  const std::string log = io::render_line_plot_svg({{"bpd", {100.0, 10.0, 0.5, -1.0}, {}}}, {.log_y = true});
  CHECK(log.find(">100</text>") != std::string::npos);
  CHECK(log.find(">0.1</text>") != std::string::npos);
  // No data at all still draws axes; a constant series gets a non-empty range.
  CHECK(io::render_line_plot_svg({}).find("</svg>") != std::string::npos);
  const std::string flat = io::render_line_plot_svg({{"c", {2.0, 2.0, 2.0}, {}}});
  CHECK(flat.find("nan") == std::string::npos);
  CHECK(count(flat, "<path ") == 1);
  CHECK_THROWS_AS(io::render_line_plot_svg({{"bad", {1.0, 2.0}, {0.0}}}), ShapeError);
  CHECK_THROWS_AS(io::render_line_plot_svg({}, {.width = 10}), ValueError);
}

TEST_CASE("save_line_plot_svg writes the file", "[io][plot]") {
  const auto path = (std::filesystem::temp_directory_path() / ("genmod_plot_" + std::to_string(::getpid()) + ".svg")).string();
  io::save_line_plot_svg(path, {{"loss", {3.0, 2.0, 1.0}, {}}});
  CHECK(std::filesystem::file_size(path) > 500);
  std::filesystem::remove(path);
}

}  // namespace io_plot_test
