#pragma once
/// \file progress.hpp
/// A progress display for training loops, on stderr by default.
///
/// On a terminal it is one line redrawn in place (at most ~10 times a second, so drawing never
/// costs more than a step):
///
///     epoch 3/10 [=========>          ]  45%  212/469  ETA 0:07  1523 samples/s  loss 0.2345
///
/// Elsewhere (a log file, CI, a pipe) it writes one plain line every `log_every` steps instead, so
/// logs stay readable and free of carriage returns:
///
///     epoch 3/10 step 200/469 (43%) loss 0.2351 1519 samples/s ETA 0:07
///
/// Why it never garbles the terminal: when stdout is the same terminal as the bar, the bar makes
/// stdout fully buffered for its lifetime (line buffering is restored afterwards). Text the program
/// prints to stdout (printf, std::cout) then waits in the buffer until the next redraw, at most
/// min_interval later, which erases the bar, flushes that text onto the clean line, and draws the
/// bar again below it. Text printed through print() is handled the same way, and each epoch ends
/// the bar with a newline. (The cost: stdout text shows up to 0.1 s late while a bar is live.)

#include <stdio_ext.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::train {

/// How progress is shown.
enum class Progress {
  automatic,  ///< a live bar on a terminal, plain lines otherwise
  bar,        ///< always the live bar (escape sequences even into a file)
  lines,      ///< always plain lines every log_every steps
  off,        ///< nothing
};

/// Options of ProgressBar.
struct ProgressOptions {
  Progress mode = Progress::automatic;  ///< bar, lines or nothing
  std::int64_t log_every = 50;          ///< steps between plain lines (lines mode); <= 0: none
  std::FILE* stream = nullptr;          ///< where to draw; nullptr means stderr
  double min_interval = 0.1;            ///< seconds between two redraws of the bar
};

namespace detail {

/// "1:02:03" or "2:03" for a duration in seconds ("?" when unknown).
inline std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  auto t = static_cast<long long>(s + 0.5);
  const long long h = t / 3600, m = (t / 60) % 60, sec = t % 60;
  char buf[48];
  if (h > 0)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, sec);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", m, sec);
  return buf;
}

/// A loss with 4 significant digits ("0.2345", "1.235e-05", "nan").
inline std::string format_loss(double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

/// A rate with a sensible number of digits ("1523", "12.5", "0.31").
inline std::string format_rate(double v) {
  char buf[48];
  if (!std::isfinite(v)) return "?";
  std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f" : (v >= 10 ? "%.1f" : "%.2f"), v);
  return buf;
}

}  // namespace detail

/// Progress of one epoch at a time: start(), update() after every step, finish() at the end.
class ProgressBar {
 public:
  /// A display on options.stream (stderr by default); the mode `automatic` picks the bar when the
  /// stream is a terminal whose TERM is not "dumb".
  explicit ProgressBar(ProgressOptions options = {});
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar() {
    clear();
    std::fflush(stdout);
    if (hold_stdout_) std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
  }

  /// The mode in effect (automatic resolved to bar or lines).
  Progress mode() const noexcept { return mode_; }

  /// Starts an epoch of `total` steps labelled `label` ("epoch 3/10"), `done` of them already
  /// taken (a resumed epoch).
  void start(std::string label, std::int64_t total, std::int64_t done = 0);

  /// Records that `done` steps of the epoch are finished, `items` samples were processed by this
  /// call's steps, and the epoch's running loss is `loss`. Redraws when due.
  void update(std::int64_t done, std::int64_t items, double loss);

  /// Ends the epoch: clears the bar and prints `summary` as a line of its own (nothing when empty
  /// or when the display is off).
  void finish(std::string_view summary) {
    clear();
    if (!summary.empty() && mode_ != Progress::off) emit(std::string(summary) + "\n");
  }

  /// Prints a line without garbling the bar: clears it, prints, and draws it again.
  void print(std::string_view line) {
    if (mode_ == Progress::off) return;
    const bool was_drawn = drawn_;
    clear();
    emit(std::string(line) + "\n");
    if (was_drawn) draw();
  }

  /// Samples per second since start().
  double rate() const {
    const double s = seconds(t0_, Clock::now());
    return s > 0 ? static_cast<double>(items_) / s : std::nan("");
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

  double eta() const {
    const std::int64_t did = done_ - first_done_;
    if (did <= 0) return std::nan("");
    return seconds(t0_, Clock::now()) / static_cast<double>(did) * static_cast<double>(total_ - done_);
  }

  std::string percent() const {
    const double f = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%3.0f%%", 100.0 * std::clamp(f, 0.0, 1.0));
    return buf;
  }

  // Two descriptors on the same terminal device (stdout and stderr of an interactive shell).
  static bool same_terminal(int a, int b) {
    if (!::isatty(a) || !::isatty(b)) return false;
    struct stat sa{}, sb{};
    return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_rdev == sb.st_rdev;
  }

  // Writes what the program printed to stdout since the last redraw onto a clean line (the bar
  // erased first), so that it never lands in the middle of the bar.
  void flush_stdout() {
    if (drawn_ && __fpending(stdout) > 0) clear();
    std::fflush(stdout);
  }

  int columns() const {
    winsize ws{};
    if (::ioctl(::fileno(opt_.stream), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
  }

  void draw();

  void clear() {
    if (!drawn_) return;
    std::fputs("\r\x1b[K", opt_.stream);
    std::fflush(opt_.stream);
    drawn_ = false;
  }

  void emit(const std::string& s) {
    flush_stdout();
    std::fwrite(s.data(), 1, s.size(), opt_.stream);
    std::fflush(opt_.stream);
  }

  ProgressOptions opt_;
  Progress mode_ = Progress::automatic;
  std::string label_;
  std::int64_t total_ = 0, first_done_ = 0, done_ = 0, items_ = 0;
  double loss_ = 0;
  Clock::time_point t0_{}, last_draw_{};
  bool drawn_ = false;
  bool hold_stdout_ = false;  // stdout made fully buffered (same terminal); restored on destruction
};

#if GENMOD_DETAIL_NONTEMPLATE_BODIES
// ProgressBar's larger members: compiled where used in a header-only build, once in
// genmod/instantiate.cpp under GENMOD_EXTERN_TEMPLATES (genmod/detail/explicit_instantiation.hpp).

GENMOD_DETAIL_NONTEMPLATE ProgressBar::ProgressBar(ProgressOptions options) : opt_(options) {
  if (!opt_.stream) opt_.stream = stderr;
  mode_ = opt_.mode;
  if (mode_ == Progress::automatic) {
    const char* term = std::getenv("TERM");
    const bool dumb = term && std::strcmp(term, "dumb") == 0;
    mode_ = (::isatty(::fileno(opt_.stream)) && !dumb) ? Progress::bar : Progress::lines;
  }
  if (mode_ == Progress::bar && same_terminal(::fileno(stdout), ::fileno(opt_.stream))) {
    std::fflush(stdout);
    hold_stdout_ = std::setvbuf(stdout, nullptr, _IOFBF, 1 << 16) == 0;
  }
}

GENMOD_DETAIL_NONTEMPLATE void ProgressBar::start(std::string label, std::int64_t total, std::int64_t done) {
  label_ = std::move(label);
  total_ = total;
  first_done_ = done;
  done_ = done;
  items_ = 0;
  loss_ = std::nan("");
  t0_ = Clock::now();
  last_draw_ = t0_ - std::chrono::hours(1);
  if (mode_ == Progress::bar) draw();
}

GENMOD_DETAIL_NONTEMPLATE void ProgressBar::update(std::int64_t done, std::int64_t items, double loss) {
  done_ = done;
  items_ += items;
  loss_ = loss;
  if (mode_ == Progress::bar) {
    const auto now = Clock::now();
    if (done_ >= total_ || seconds(last_draw_, now) >= opt_.min_interval) draw();
  } else if (mode_ == Progress::lines && opt_.log_every > 0 && done_ > first_done_ && done_ % opt_.log_every == 0) {
    emit(label_ + " step " + std::to_string(done_) + "/" + std::to_string(total_) + " (" + percent() + ") loss " +
         detail::format_loss(loss_) + " " + detail::format_rate(rate()) + " samples/s ETA " +
         detail::format_duration(eta()) + "\n");
  }
}

GENMOD_DETAIL_NONTEMPLATE void ProgressBar::draw() {
  last_draw_ = Clock::now();
  std::string tail = " " + percent() + "  " + std::to_string(done_) + "/" + std::to_string(total_);
  tail += "  ETA " + detail::format_duration(eta());
  if (items_ > 0) tail += "  " + detail::format_rate(rate()) + " samples/s";
  if (!std::isnan(loss_)) tail += "  loss " + detail::format_loss(loss_);
  // The bar takes what the text leaves, so the line never wraps (a wrapped line cannot be
  // redrawn in place with \r).
  const int cols = columns() - 1;
  const int width = cols - static_cast<int>(label_.size() + tail.size()) - 3;
  std::string line = "\r" + label_;
  if (width >= 10) {
    const double f = total_ > 0 ? std::clamp(static_cast<double>(done_) / static_cast<double>(total_), 0.0, 1.0) : 1.0;
    const int full = static_cast<int>(f * width);
    line += " [" + std::string(static_cast<std::size_t>(full), '=');
    if (full < width) line += '>' + std::string(static_cast<std::size_t>(width - full - 1), ' ');
    line += "]";
  }
  line += tail;
  if (static_cast<int>(line.size()) > cols + 1) line.resize(static_cast<std::size_t>(cols + 1));
  line += "\x1b[K";
  flush_stdout();
  std::fwrite(line.data(), 1, line.size(), opt_.stream);
  std::fflush(opt_.stream);
  drawn_ = true;
}
#endif  // GENMOD_DETAIL_NONTEMPLATE_BODIES

}  // namespace genmod::train
