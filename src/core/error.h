#pragma once
// One exception type for every user-facing failure. Its message is a single line,
// starting with the file (or flag) it concerns, so the CLI can print it as is.
#include <sstream>
#include <stdexcept>
#include <string>

namespace vitqk {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace vitqk
