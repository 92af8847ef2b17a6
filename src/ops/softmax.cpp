#include "ops/softmax.h"

#include <algorithm>
#include <cmath>

namespace vitqk {

void softmax_rows(float* x, int rows, int cols) {
  for (int i = 0; i < rows; ++i) {
    float* r = x + (long)i * cols;
    const float mx = *std::max_element(r, r + cols);
    float s = 0;
    for (int j = 0; j < cols; ++j) {
      r[j] = std::exp(r[j] - mx);
      s += r[j];
    }
    const float inv = 1.0f / s;
    for (int j = 0; j < cols; ++j) r[j] *= inv;
  }
}

}  // namespace vitqk
