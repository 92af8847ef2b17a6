// The IDX reader (raw and gzipped) on any bytes, as images (3 dimensions) and labels (1).
#include "core/error.h"
#include "fuzz.h"
#include "io/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vitqk;
  for (int ndims : {1, 3}) {
    try {
      io::IdxArray a = io::read_idx(data, size, ndims, "fuzz-idx");
      uint64_t bytes = 1;
      for (uint32_t d : a.dims) bytes *= d;
      fuzz::require(a.data.size() == bytes);
      if (ndims == 3) {
        const io::IdxImages im = io::idx_images(std::move(a), "fuzz-idx");
        fuzz::require(im.pixels.size() == size_t(im.count) * size_t(im.rows) * size_t(im.cols));
      }
    } catch (const Error&) {
    }
  }
  return 0;
}
