// Image decoding and preprocessing as `vitqk classify` runs them. The first 3 bytes choose
// the preprocessing: byte 0 bit 0 channels (1 or 3), bits 1-2 the interpolation, bit 3
// resize_exact; byte 1 the resize (0: none); byte 2 the centre crop (0: none). The rest is
// the image file.
#include "core/error.h"
#include "fuzz.h"
#include "io/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vitqk;
  if (size < 3) return 0;
  const int channels = data[0] & 1 ? 3 : 1;
  io::Preprocess pre;
  pre.interp = io::Interp((data[0] >> 1) % 3);
  pre.resize_exact = data[0] & 8;
  pre.resize = data[1];
  pre.crop = data[2];
  try {
    // Every check before decoding runs on every input. Decoding, instrumented, costs about a
    // microsecond a pixel: larger images (a flat 8 KB JPEG can hold 4 million pixels) would
    // be timeouts of size, not of bugs.
    const auto [width, height] = io::image_size(data + 3, size - 3, "fuzz-image");
    if (long(width) * height > 512L * 512) return 0;
    const io::Image img = io::decode_image(data + 3, size - 3, channels, "fuzz-image");
    fuzz::require(img.pixels.size() == size_t(img.width) * size_t(img.height) * size_t(channels));
    // classify runs the pipeline only when its output is the model's input size. Outputs up to
    // 256x256 keep every input fast; larger ones only write more of the same pixels.
    const auto [w, h] = io::preprocess_size(img, pre);
    if (long(w) * h > 256L * 256) return 0;
    std::vector<float> out(size_t(channels) * size_t(w) * size_t(h));
    io::preprocess(img, pre, out.data());
  } catch (const Error&) {
  }
  return 0;
}
