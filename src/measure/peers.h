#pragma once
// The peers of `vitqk bench --peers`: PyTorch and ONNX Runtime time the same weights on the
// same input, each in its own process (scripts in tools/peers) at its best set-up, and report
// their median time and logits as JSON.
#include <string>
#include <vector>

namespace vitqk {

struct PeerResult {
  std::string engine, version, setup;
  double median_ms = 0;
  std::vector<float> logits;
  std::string error;  // why the peer did not run (not installed, failed); empty if it ran
  bool ok() const { return error.empty(); }
};

struct PeerJob {
  std::string tools_dir;  // tools/peers of the source tree
  // Holds model.safetensors (vitqk's format, standard attention) and input.safetensors
  // (pixel_values) from the caller; run_pytorch adds model.onnx.
  std::string work_dir;
  int threads = 1, runs = 10, warmup = 2;
};

// Debian's PyTorch with OpenMP OpenBLAS, thread count and raised glibc malloc thresholds, once
// under each OPENBLAS_CORETYPE (Haswell: AVX2 kernels; SkylakeX: AVX-512); the faster is kept.
// Also exports model.onnx for run_onnxruntime.
PeerResult run_pytorch(const PeerJob& j);
// onnxruntime-node (npm, installed into tools/peers) on model.onnx.
PeerResult run_onnxruntime(const PeerJob& j);

// A fresh directory under $TMPDIR, removed with everything in it when this goes away.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace vitqk
