#pragma once
// Number formatting shared by the report and the verdict, so that a figure reads the same in both.
#include <cstdio>
#include <string>

namespace vitqk::fmt {

inline std::string f(double v, int prec = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}
inline std::string pct(double v, int prec = 2) { return f(100 * v, prec) + "%"; }
inline std::string sci(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.1e", v);
  return b;
}
inline std::string millions(double v) { return f(v / 1e6, 2) + "M"; }
inline std::string giga(double v) { return f(v / 1e9, 2); }

}  // namespace vitqk::fmt
