#include "ops/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace vitqk {

void cross_entropy_slice(const float* logits, const int32_t* labels, int B, int batch, int K, float smoothing,
                         float* dlogits, double* loss_sum, int* correct) {
  double loss = *loss_sum;
  int right = 0;
  std::vector<double> p(K);
  for (int b = 0; b < B; ++b) {
    const float* z = logits + (long)b * K;
    const int y = labels[b];
    const int arg = int(std::max_element(z, z + K) - z);
    right += arg == y;
    const double mx = z[arg];
    double s = 0;
    for (int k = 0; k < K; ++k) s += p[k] = std::exp(double(z[k]) - mx);
    const double log_s = std::log(s);
    double l = 0;
    for (int k = 0; k < K; ++k) {
      const double q = (k == y ? 1.0 - smoothing : 0.0) + smoothing / K;
      l -= q * (double(z[k]) - mx - log_s);
      if (dlogits) dlogits[(long)b * K + k] = float((p[k] / s - q) / batch);
    }
    loss += l;
  }
  *loss_sum = loss;
  *correct += right;
}

double cross_entropy(const float* logits, const int32_t* labels, int B, int K, float smoothing, float* dlogits,
                     int* correct) {
  double loss = 0;
  int right = 0;
  cross_entropy_slice(logits, labels, B, B, K, smoothing, dlogits, &loss, &right);
  if (correct) *correct = right;
  return loss / B;
}

}  // namespace vitqk
