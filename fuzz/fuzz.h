#pragma once
// Shared by the fuzz targets and make_seeds.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <string>
#include <string_view>

#include "model/config.h"

namespace vitqk::fuzz {

inline std::string_view bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The model whose checkpoints fuzz_checkpoint resumes: small enough that a whole training
// checkpoint is a 3 KB seed.
inline ViTConfig tiny_config() {
  ViTConfig c;
  c.image_size = 4, c.patch_size = 2, c.in_chans = 1, c.dim = 4, c.depth = 1, c.heads = 2, c.mlp_dim = 8;
  c.num_classes = 3;
  c.qk = {Form::Factorized};
  c.ov = {Form::Factorized};
  c.class_names = {"a", "b", "c"};
  return c;
}

// A safetensors file from "header JSON, NUL, data buffer": the header size in front is
// computed, so that a mutated header (longer, shorter) still makes a well-formed file and the
// fuzzer spends its time on what the header says.
inline std::string safetensors_file(std::string_view input) {
  const size_t nul = std::min(input.find('\0'), input.size());
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = char(uint64_t(nul) >> (8 * i));
  file += input.substr(0, nul);
  if (nul < input.size()) file += input.substr(nul + 1);
  return file;
}

// ...and back, for the seeds.
inline std::string safetensors_parts(std::string_view file) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | uint8_t(file[i]);
  return std::string(file.substr(8, n)) + '\0' + std::string(file.substr(8 + n));
}

// A violated invariant is a finding: abort, so libFuzzer keeps the input.
inline void require(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace vitqk::fuzz
