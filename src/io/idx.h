#pragma once
// IDX files (the MNIST / Fashion-MNIST format), raw or gzipped. Only unsigned-byte data:
// images (3 dimensions: count, rows, columns) and labels (1 dimension: count).
#include <cstdint>
#include <string>
#include <vector>

namespace vitqk::io {

// Larger declared data (or any larger dimension) is refused before anything is read: gzip
// hides the real size until the stream is inflated, so the header alone must not be able
// to ask for more. It also keeps every dimension within an int.
inline constexpr uint64_t kMaxIdxBytes = (uint64_t(1) << 31) - 1;

struct IdxArray {
  std::vector<uint32_t> dims;  // as declared, outermost first
  std::vector<uint8_t> data;   // row-major, product(dims) bytes
};

// Reads an unsigned-byte IDX file with exactly `ndims` dimensions. A file starting with the
// gzip magic is inflated (in bounded chunks, the buffer growing only as data arrives);
// otherwise its size must match the header exactly. Throws Error "<path>: <problem>".
IdxArray read_idx(const std::string& path, int ndims);
// The same for a file in memory; `name` stands for the path in errors.
IdxArray read_idx(const uint8_t* data, size_t size, int ndims, const std::string& name);

struct IdxImages {
  int count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols
};

IdxImages idx_images(IdxArray a, const std::string& name);      // a has 3 dimensions

IdxImages read_idx_images(const std::string& path);             // magic 0x00000803
std::vector<uint8_t> read_idx_labels(const std::string& path);  // magic 0x00000801

}  // namespace vitqk::io
