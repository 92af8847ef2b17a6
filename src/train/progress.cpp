#include "train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace vitqk {

std::string format_duration(double s) {
  const long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

Progress::Progress(std::string label, long total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

void Progress::update(long done, const std::string& extra) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  // A terminal is redrawn ten times a second; a log gets a line every ten seconds.
  if (now - last_ < std::chrono::milliseconds(tty_ ? 100 : 10000)) return;
  last_ = now;
  draw(done, extra, false);
}

void Progress::finish(const std::string& extra) {
  if (enabled_) draw(total_, extra, true);
}

void Progress::draw(long done, const std::string& extra, bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_ > 0 ? double(done) / double(total_) : 1.0;
  const std::string eta = final ? format_duration(elapsed) : (frac > 0 ? format_duration(elapsed * (1 - frac) / frac) + " left" : "");
  if (tty_) {
    constexpr int kWidth = 24;
    const int fill = int(frac * kWidth);
    std::string bar(fill, '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r\033[K%s [%s] %ld/%ld  %s  %s%s", label_.c_str(), bar.c_str(), done, total_, extra.c_str(),
                 eta.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s %ld/%ld (%3.0f%%)  %s  %s\n", label_.c_str(), done, total_, 100 * frac, extra.c_str(),
                 eta.c_str());
  }
  std::fflush(stderr);
}

}  // namespace vitqk
