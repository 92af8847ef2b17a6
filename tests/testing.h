#pragma once
// Helpers shared by the tests: fixture paths, random models with non-zero biases.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/rng.h"
#include "model/vit.h"

namespace vitqk::testing {

// n values drawn from N(0, scale^2), the same for the same seed.
inline std::vector<float> normal_floats(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * rng.normal();
  return v;
}

// Entry (i, j) of op(A) op(B), op(X) = X or X^T of row-major X with row stride ld, in float64,
// and the sum of its terms' magnitudes (the scale of a float32 result's rounding error).
struct ProductEntry {
  double value, magnitude;
};
inline ProductEntry product_entry(bool ta, bool tb, const float* A, int lda, const float* B, int ldb, int i, int j,
                                  int K) {
  ProductEntry e{0, 0};
  for (int k = 0; k < K; ++k) {
    const double a = ta ? A[size_t(k) * lda + i] : A[size_t(i) * lda + k];
    const double b = tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j];
    e.value += a * b, e.magnitude += std::fabs(a * b);
  }
  return e;
}

inline std::string fixture(const std::string& rel) { return std::string(VITQK_FIXTURES) + "/" + rel; }

// The whole file as bytes ("" if it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every parameter random and non-zero, scaled so activations stay of order one and
// attention is far from uniform: the cases where a wrong bias fold or layout shows.
inline void randomize(ViT& m, uint64_t seed) {
  Rng rng(seed);
  for (const auto& p : m.layout.params()) {
    float* v = m.p(p.offset);
    const bool norm = p.name.find("norm") != std::string::npos;
    const bool bias = p.shape.size() == 1;
    const double fan_in = p.shape.size() >= 2 ? double(p.numel) / double(p.shape[0]) : 1.0;
    for (size_t i = 0; i < p.numel; ++i) {
      const float z = rng.normal();
      if (norm && p.name.find("weight") != std::string::npos) v[i] = 1.0f + 0.2f * z;
      else if (bias) v[i] = 0.3f * z;
      else if (p.name == "cls_token" || p.name == "pos_embed") v[i] = 0.5f * z;
      else v[i] = float(1.2 * z / std::sqrt(fan_in));
    }
  }
}

inline ViTConfig tiny_config(int heads = 4, int dim = 32, int image = 16, int patch = 4) {
  ViTConfig c;
  c.image_size = image, c.patch_size = patch, c.in_chans = 3, c.dim = dim, c.depth = 2, c.heads = heads;
  c.mlp_dim = 2 * dim, c.num_classes = 7;
  c.qk.assign(c.depth, Form::Factorized);
  c.ov.assign(c.depth, Form::Factorized);
  return c;
}

// Tests that train on the real data skip when Debian's dataset-fashion-mnist is absent.
inline bool have_fashion_mnist() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
}

// An empty directory for the running test, named after it and this process: other checkouts'
// suites may run the same test at the same time.
inline std::string fresh_test_dir(const std::string& tag) {
  const std::string dir = ::testing::TempDir() + "/vitqk_" + tag + "_" +
                          ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
                          std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// DIR/tiny.json: a one-block Fashion-MNIST model, small enough that 2 epochs take a couple of
// seconds. Returns its path.
inline std::string write_tiny_fmnist_config(const std::string& dir) {
  const std::string cfg = dir + "/tiny.json";
  std::ofstream(cfg) << R"({"image_size": 28, "patch_size": 7, "in_chans": 1, "dim": 16, "depth": 1, "heads": 2,
    "mlp_dim": 32, "num_classes": 10, "preprocess": {"resize": 28, "crop": 28, "mean": [0.286, 0.286, 0.286],
    "std": [0.353, 0.353, 0.353]}})";
  return cfg;
}

}  // namespace vitqk::testing
