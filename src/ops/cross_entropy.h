#pragma once
#include <cstdint>
namespace vitqk {
// Mean softmax cross-entropy over a batch, with label smoothing s (as
// torch.nn.CrossEntropyLoss(label_smoothing=s)): target q = (1 - s) onehot + s / K.
// Writes dlogits = (softmax - q) / B when dlogits is not null; returns the mean loss.
// `correct` (optional) receives the number of rows whose arg-max is the label.
double cross_entropy(const float* logits, const int32_t* labels, int B, int K, float smoothing, float* dlogits,
                     int* correct = nullptr);
}  // namespace vitqk
