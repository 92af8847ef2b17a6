#pragma once
// Progress of long work on stderr: a bar redrawn in place on a terminal, or a plain line
// every few seconds otherwise (logs, CI).
#include <chrono>
#include <string>

namespace vitqk {

class Progress {
 public:
  Progress(std::string label, long total, bool enabled = true);
  // done: units finished; extra: e.g. "loss 0.53  2100 img/s".
  void update(long done, const std::string& extra);
  void finish(const std::string& extra);

 private:
  std::string label_;
  long total_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_;
  void draw(long done, const std::string& extra, bool final);
};

std::string format_duration(double seconds);

}  // namespace vitqk
