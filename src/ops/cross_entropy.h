#pragma once
#include <cstdint>
namespace vitqk {
// Mean softmax cross-entropy over a batch, with label smoothing s (as
// torch.nn.CrossEntropyLoss(label_smoothing=s)): target q = (1 - s) onehot + s / K.
// Writes dlogits = (softmax - q) / B when dlogits is not null; returns the mean loss.
// `correct` (optional) receives the number of rows whose arg-max is the label.
double cross_entropy(const float* logits, const int32_t* labels, int B, int K, float smoothing, float* dlogits,
                     int* correct = nullptr);

// The same for B rows of a batch of `batch` rows taken in slices: adds the rows' losses to
// *loss_sum in row order (slices in turn sum as the whole batch would) and their right arg-maxes
// to *correct; dlogits = (softmax - q) / batch, the gradient of the whole batch's mean loss.
void cross_entropy_slice(const float* logits, const int32_t* labels, int B, int batch, int K, float smoothing,
                         float* dlogits, double* loss_sum, int* correct);
}  // namespace vitqk
