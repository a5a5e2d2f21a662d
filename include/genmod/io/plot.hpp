#pragma once
/// \file plot.hpp
/// Line plots as standalone SVG text (loss curves, bits/dim over training): axes with "nice"
/// tick labels (1, 2, 5 x 10^k), optional log scale, a legend, and a colour per series. Plain
/// text, so it needs no library and opens in any browser.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::io {

/// One curve: y values at x (x empty means 0, 1, 2, ...). Non-finite points leave a gap.
struct Series {
  std::string name = {};       ///< legend entry
  std::vector<double> y = {};  ///< values
  std::vector<double> x = {};  ///< positions (same length as y), or empty
};

/// Appearance of a line plot.
struct PlotOptions {
  std::string title = {};        ///< drawn above the plot (none when empty)
  std::string x_label = "step";  ///< under the x axis
  std::string y_label = {};      ///< beside the y axis
  int width = 720;               ///< SVG width in pixels
  int height = 440;              ///< SVG height in pixels
  bool log_y = false;            ///< logarithmic y axis (non-positive values leave a gap)
};

namespace detail {

inline std::string xml_escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

/// A coordinate with two decimals (enough for pixels, and stable text).
inline std::string fmt_px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

/// A tick label: up to 6 significant digits, no "-0".
inline std::string fmt_tick(double v) {
  if (v == 0) v = 0;  // turns -0 into 0
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

/// Ticks at multiples of a 1, 2 or 5 x 10^k step covering [lo, hi]; widens lo and hi to them.
inline std::vector<double> nice_ticks(double& lo, double& hi, int target = 6) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / target;
  if (!std::isfinite(raw) || raw <= 0) return {lo, hi};  // a span beyond double range: no nice steps
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  lo = std::floor(lo / step) * step;
  hi = std::ceil(hi / step) * step;
  std::vector<double> ticks;
  for (double t = lo; t <= hi + step * 1e-6 && ticks.size() < 100; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

}  // namespace detail

/// The SVG text of a line plot of `series`.
GENMOD_DETAIL_NONTEMPLATE std::string render_line_plot_svg(const std::vector<Series>& series,
                                                           const PlotOptions& options = {})
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  check_at_least("render_line_plot_svg", "width (pixels)", options.width, 200);
  check_at_least("render_line_plot_svg", "height (pixels)", options.height, 150);
  for (const auto& s : series)
    if (!s.x.empty() && s.x.size() != s.y.size())
      throw ShapeError("render_line_plot_svg: series '" + s.name + "' has " + std::to_string(s.x.size()) + " x values and " +
                       std::to_string(s.y.size()) + " y values");
  auto x_at = [](const Series& s, std::size_t i) { return s.x.empty() ? static_cast<double>(i) : s.x[i]; };
  auto usable = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!options.log_y || y > 0);
  };
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.y.size(); ++i) {
      const double x = x_at(s, i), y = s.y[i];
      if (!usable(x, y)) continue;
      const double yy = options.log_y ? std::log10(y) : y;
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymin = std::min(ymin, yy);
      ymax = std::max(ymax, yy);
    }
  if (!(xmin <= xmax)) xmin = 0, xmax = 1;  // nothing to draw: still draw the axes
  if (!(ymin <= ymax)) ymin = 0, ymax = 1;
  const std::vector<double> xticks = detail::nice_ticks(xmin, xmax);
  std::vector<double> yticks;
  if (options.log_y) {
    ymin = std::floor(ymin);
    ymax = std::ceil(ymax);
    if (ymax <= ymin) ymax = ymin + 1;
    for (double d = ymin; d <= ymax && yticks.size() < 100; d += 1) yticks.push_back(d);
  } else {
    yticks = detail::nice_ticks(ymin, ymax);
  }

  const double W = options.width, H = options.height;
  const double left = 78, right = 20, top = options.title.empty() ? 20 : 44, bottom = 56;
  const double pw = W - left - right, ph = H - top - bottom;
  auto px = [&](double x) { return left + (x - xmin) / (xmax - xmin) * pw; };
  auto py = [&](double y) { return top + ph - (y - ymin) / (ymax - ymin) * ph; };

  // Tableau 10: distinguishable, and what matplotlib users expect.
  static constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  std::string svg;
  svg += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(options.width) + "\" height=\"" +
         std::to_string(options.height) + "\" viewBox=\"0 0 " + std::to_string(options.width) + " " +
         std::to_string(options.height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!options.title.empty())
    svg += "<text x=\"" + detail::fmt_px(W / 2) + "\" y=\"26\" text-anchor=\"middle\" font-size=\"15\">" +
           detail::xml_escape(options.title) + "</text>\n";
  // Grid lines and tick labels.
  svg += "<g stroke=\"#e5e5e5\" stroke-width=\"1\">\n";
  for (double t : xticks) svg += "<line x1=\"" + detail::fmt_px(px(t)) + "\" y1=\"" + detail::fmt_px(top) + "\" x2=\"" + detail::fmt_px(px(t)) + "\" y2=\"" + detail::fmt_px(top + ph) + "\"/>\n";
  for (double t : yticks) svg += "<line x1=\"" + detail::fmt_px(left) + "\" y1=\"" + detail::fmt_px(py(t)) + "\" x2=\"" + detail::fmt_px(left + pw) + "\" y2=\"" + detail::fmt_px(py(t)) + "\"/>\n";
  svg += "</g>\n<g fill=\"#333\">\n";
  for (double t : xticks)
    svg += "<text x=\"" + detail::fmt_px(px(t)) + "\" y=\"" + detail::fmt_px(top + ph + 18) + "\" text-anchor=\"middle\">" +
           detail::fmt_tick(t) + "</text>\n";
  for (double t : yticks)
    svg += "<text x=\"" + detail::fmt_px(left - 8) + "\" y=\"" + detail::fmt_px(py(t) + 4) + "\" text-anchor=\"end\">" +
           detail::fmt_tick(options.log_y ? std::pow(10.0, t) : t) + "</text>\n";
  svg += "</g>\n";
  // Axes.
  svg += "<rect x=\"" + detail::fmt_px(left) + "\" y=\"" + detail::fmt_px(top) + "\" width=\"" + detail::fmt_px(pw) +
         "\" height=\"" + detail::fmt_px(ph) + "\" fill=\"none\" stroke=\"#333\" stroke-width=\"1\"/>\n";
  if (!options.x_label.empty())
    svg += "<text x=\"" + detail::fmt_px(left + pw / 2) + "\" y=\"" + detail::fmt_px(H - 14) + "\" text-anchor=\"middle\">" +
           detail::xml_escape(options.x_label) + "</text>\n";
  if (!options.y_label.empty())
    svg += "<text x=\"18\" y=\"" + detail::fmt_px(top + ph / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 18 " +
           detail::fmt_px(top + ph / 2) + ")\">" + detail::xml_escape(options.y_label) + "</text>\n";
  // Curves: one path per series; a non-finite point starts a new sub-path ("M") after the gap.
  for (std::size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    std::string d;
    bool pen_down = false;
    for (std::size_t i = 0; i < s.y.size(); ++i) {
      const double x = x_at(s, i), y = s.y[i];
      if (!usable(x, y)) {
        pen_down = false;
        continue;
      }
      d += (pen_down ? " L" : (d.empty() ? "M" : " M")) + detail::fmt_px(px(x)) + " " +
           detail::fmt_px(py(options.log_y ? std::log10(y) : y));
      pen_down = true;
    }
    if (!d.empty())
      svg += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + kColors[k % 10] +
             "\" stroke-width=\"1.5\" stroke-linejoin=\"round\"/>\n";
  }
  // Legend, top right inside the plot.
  if (!series.empty()) {
    std::size_t longest = 0;
    for (const auto& s : series) longest = std::max(longest, s.name.size());
    const double lw = 36 + 7.0 * static_cast<double>(std::min<std::size_t>(longest, 40));
    const double lx = left + pw - lw - 8, ly = top + 8;
    svg += "<g>\n<rect x=\"" + detail::fmt_px(lx) + "\" y=\"" + detail::fmt_px(ly) + "\" width=\"" + detail::fmt_px(lw) +
           "\" height=\"" + detail::fmt_px(8 + 18.0 * static_cast<double>(series.size())) +
           "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999\"/>\n";
    for (std::size_t k = 0; k < series.size(); ++k) {
      const double yk = ly + 16 + 18.0 * static_cast<double>(k);
      svg += "<line x1=\"" + detail::fmt_px(lx + 6) + "\" y1=\"" + detail::fmt_px(yk - 4) + "\" x2=\"" +
             detail::fmt_px(lx + 26) + "\" y2=\"" + detail::fmt_px(yk - 4) + "\" stroke=\"" + kColors[k % 10] +
             "\" stroke-width=\"2\"/>\n";
      svg += "<text x=\"" + detail::fmt_px(lx + 32) + "\" y=\"" + detail::fmt_px(yk) + "\">" +
             detail::xml_escape(series[k].name) + "</text>\n";
    }
    svg += "</g>\n";
  }
  svg += "</svg>\n";
  return svg;
}
#else
    ;
#endif

/// Writes a line plot of `series` as an SVG file, atomically.
GENMOD_DETAIL_NONTEMPLATE void save_line_plot_svg(const std::string& path, const std::vector<Series>& series,
                                                  const PlotOptions& options = {})
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  const std::string svg = render_line_plot_svg(series, options);
  genmod::detail::write_file_atomic(
      path, std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(svg.data()), svg.size()));
}
#else
    ;
#endif

}  // namespace genmod::io
