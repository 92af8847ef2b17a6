// Decoding with stb_image, then PIL's colour conversions, PIL's resampling and torchvision's
// crop and tensor conversion, each written to give the very same bits as the Python code.
#include "io/image.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/error.h"

// stb_image is C written for C compilers; keep its warnings out of stricter builds of ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wuseless-cast"
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO  // files are read here, with a size bound
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_PNM
#include <stb_image.h>
#pragma GCC diagnostic pop

namespace vitqk::io {

namespace {

constexpr size_t kMaxFileBytes = size_t(256) << 20;
constexpr const char* kTooLarge = ": file larger than 256 MiB, refusing to decode it";
constexpr int kMaxSide = 16384;
constexpr long kMaxPixels = 2L * 89478485;  // where PIL raises DecompressionBombError

std::vector<uint8_t> read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail(path, ": cannot open (", std::strerror(errno), ")");
  std::error_code ec;  // pipes and the like have no size: then the read loop enforces the bound
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxFileBytes) fail(path, kTooLarge);
  std::vector<uint8_t> data;
  constexpr size_t kChunk = size_t(1) << 20;
  for (;;) {
    const size_t old = data.size();
    data.resize(old + kChunk);
    const size_t n = std::fread(data.data() + old, 1, kChunk, f.get());
    data.resize(old + n);
    if (data.size() > kMaxFileBytes) fail(path, kTooLarge);
    if (n < kChunk) break;
  }
  if (std::ferror(f.get())) fail(path, ": cannot read (", std::strerror(errno), ")");
  return data;
}

// Pillow's Resample.c, 8-bit path: filter weights in double, normalised to sum 1, then
// fixed point with 22 fraction bits; every pass rounds and clips back to uint8.
constexpr int kPrecisionBits = 32 - 8 - 2;

// The weights must round as in Pillow, which is built without FMA: no a * b + c contraction.
[[gnu::optimize("fp-contract=off")]] double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

[[gnu::optimize("fp-contract=off")]] double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Output sample i reads `count[i]` inputs from `first[i]` with weights k[i * ksize ...].
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

// precompute_coeffs + normalize_coeffs_8bpc: when shrinking, the filter widens by the
// scale (antialiasing), which is what makes PIL's resize differ from plain interpolation.
[[gnu::optimize("fp-contract=off")]] Taps make_taps(int in_size, int out_size, Interp interp) {
  double (*filter)(double) = interp == Interp::Bicubic ? bicubic_filter : bilinear_filter;
  const double scale = double(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = (interp == Interp::Bicubic ? 2.0 : 1.0) * filterscale;
  const double ss = 1.0 / filterscale;
  Taps t;
  t.ksize = int(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.k.assign(size_t(out_size) * t.ksize, 0);
  std::vector<double> w(t.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const int xmin = std::max(int(center - support + 0.5), 0);
    const int n = std::min(int(center + support + 0.5), in_size) - xmin;
    double ww = 0.0;
    for (int x = 0; x < n; ++x) ww += w[x] = filter((x + xmin - center + 0.5) * ss);
    for (int x = 0; x < n; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      const double fixed = v * (1 << kPrecisionBits);
      t.k[size_t(xx) * t.ksize + x] = int32_t(v < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
    t.first[xx] = xmin;
    t.count[xx] = n;
  }
  return t;
}

// One pass along x (horizontal) or y, the other size unchanged.
Image resample_pass(const Image& in, int out_size, Interp interp, bool horizontal) {
  const Taps t = make_taps(horizontal ? in.width : in.height, out_size, interp);
  Image out{horizontal ? out_size : in.width, horizontal ? in.height : out_size, in.channels, {}};
  out.pixels.resize(size_t(out.width) * out.height * out.channels);
  const int C = in.channels;
  const size_t step = horizontal ? C : size_t(in.width) * C;  // between neighbouring taps
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      const int i = horizontal ? x : y;
      const int32_t* k = &t.k[size_t(i) * t.ksize];
      const uint8_t* src = horizontal ? &in.pixels[(size_t(y) * in.width + t.first[i]) * C]
                                      : &in.pixels[(size_t(t.first[i]) * in.width + x) * C];
      for (int c = 0; c < C; ++c) {
        int ss = 1 << (kPrecisionBits - 1);
        for (int j = 0; j < t.count[i]; ++j) ss += src[j * step + c] * k[j];
        out.pixels[(size_t(y) * out.width + x) * C + c] = uint8_t(std::clamp(ss >> kPrecisionBits, 0, 255));
      }
    }
  return out;
}

// PIL's NEAREST (ImagingScaleAffine): the source position is accumulated by repeated
// addition, so it carries PIL's rounding; positions outside the image give 0 as in PIL.
std::vector<int> nearest_sources(int in_size, int out_size) {
  const double a = double(in_size) / out_size;
  std::vector<int> src(out_size);
  double pos = a * 0.5;
  for (int& s : src) {
    s = pos < 0.0 || int(pos) >= in_size ? -1 : int(pos);
    pos += a;
  }
  return src;
}

Image resize_nearest(const Image& img, int width, int height) {
  const std::vector<int> sx = nearest_sources(img.width, width), sy = nearest_sources(img.height, height);
  const int C = img.channels;
  Image out{width, height, C, std::vector<uint8_t>(size_t(width) * height * C, 0)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      if (sy[y] >= 0 && sx[x] >= 0)
        std::copy_n(&img.pixels[(size_t(sy[y]) * img.width + sx[x]) * C], C, &out.pixels[(size_t(y) * width + x) * C]);
  return out;
}

// torchvision CenterCrop along one axis: where the crop starts in the image; negative
// when the image is smaller and torchvision pads it, putting (crop - size) / 2 zeros first.
int crop_start(int size, int crop) {
  if (crop > size) return -((crop - size) / 2);
  // int(round((size - crop) / 2.0)) with Python's round, which breaks ties to even.
  const int d = size - crop, half = d / 2;
  return half + (d % 2 == 1 && half % 2 == 1);
}

// Size after the resize step of `pre`.
std::array<int, 2> resized_size(const Image& img, const Preprocess& pre) {
  if (pre.resize <= 0) return {img.width, img.height};
  if (pre.resize_exact) return {pre.resize, pre.resize};
  // torchvision's _compute_resized_output_size: the long side is truncated, not rounded.
  const int short_side = std::min(img.width, img.height), long_side = std::max(img.width, img.height);
  const int new_long = int(double(int64_t(pre.resize) * long_side) / short_side);
  return img.width <= img.height ? std::array{pre.resize, new_long} : std::array{new_long, pre.resize};
}

// stb_image reads zeros past the end of its input, so a truncated BMP or GIF decodes without
// complaint (PIL refuses it). Fed through callbacks, it shows when it wants bytes that are not there.
struct Source {
  const uint8_t* data;
  size_t size, pos = 0;
  bool overrun = false;
};

int source_read(void* user, char* out, int n) {
  Source& s = *static_cast<Source*>(user);
  const size_t k = std::min(size_t(n), s.size - s.pos);
  if (k == 0 && n > 0) s.overrun = true;
  std::memcpy(out, s.data + s.pos, k);
  s.pos += k;
  return int(k);
}

void source_skip(void* user, int n) {
  Source& s = *static_cast<Source*>(user);
  s.pos = n < 0 ? s.pos - std::min(size_t(-long(n)), s.pos) : std::min(s.size, s.pos + size_t(n));
}

int source_eof(void* user) {
  const Source& s = *static_cast<const Source*>(user);
  return s.pos >= s.size;
}

// Debian's stb_image (2.27) trusts the symbol counts of JPEG Huffman tables and writes past
// its tables when they add up to more than 256 (stb 2.28 checks). Find every DHT segment stb
// could read - in the headers or between the scans of progressive files - and check them first.
bool jpeg_huffman_tables_ok(const uint8_t* d, size_t n) {
  if (n < 2 || d[0] != 0xFF || d[1] != 0xD8) return true;  // not a JPEG
  size_t i = 2;
  while (i + 1 < n) {
    const uint8_t m = d[i + 1];
    // Outside a marker: entropy-coded data, a stuffed zero, a restart marker or fill bytes.
    if (d[i] != 0xFF || m == 0x00 || m == 0xFF || (m >= 0xD0 && m <= 0xD7)) {
      ++i;
      continue;
    }
    if (m == 0xD9) break;  // end of image: stb reads no further
    if (m == 0xD8 || m == 0x01) {  // markers without a length
      i += 2;
      continue;
    }
    if (i + 3 >= n) break;
    const size_t end = i + 2 + (size_t(d[i + 2]) << 8 | d[i + 3]);
    for (size_t t = i + 4; m == 0xC4 && t < end;) {  // DHT: tables of class/id, 16 counts, symbols
      size_t symbols = 0;
      for (size_t k = t + 1; k < t + 17 && k < n; ++k) symbols += d[k];
      if (symbols > 256) return false;
      t += 17 + symbols;
    }
    i = end;
  }
  return true;
}

// Why stb_image failed. It keeps the reason of its last failure, including those of format
// probes that came to nothing, and some decoders fail without giving one: so the reason is
// cleared before each call, and may then be missing.
std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r && *r ? r : "no reason given";
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, int channels, const std::string& name) {
  if (channels != 1 && channels != 3) fail(name, ": cannot load an image as ", channels, " channels (1 or 3)");
  if (size == 0) fail(name, ": empty file");
  if (size > kMaxFileBytes) fail(name, kTooLarge);
  if (!jpeg_huffman_tables_ok(data, size)) fail(name, ": corrupt JPEG (bad Huffman table)");
  int w = 0, h = 0, n = 0;
  stbi__g_failure_reason = nullptr;
  if (!stbi_info_from_memory(data, int(size), &w, &h, &n)) fail(name, ": not an image (", stb_reason(), ")");
  if (w <= 0 || h <= 0 || w > kMaxSide || h > kMaxSide || long(w) * h > kMaxPixels)
    fail(name, ": image dimensions ", w, "x", h, " are out of range (at most ", kMaxSide, " per side, ", kMaxPixels,
         " pixels)");
  const stbi_io_callbacks io{source_read, source_skip, source_eof};
  Source src{data, size};
  stbi__g_failure_reason = nullptr;
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_callbacks(&io, &src, &w, &h, &n, 0), &stbi_image_free);
  if (src.overrun) fail(name, ": truncated image");
  if (!px) fail(name, ": corrupt image (", stb_reason(), ")");

  // n: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA. Alpha is dropped as PIL's convert() drops it.
  Image img{w, h, channels, std::vector<uint8_t>(size_t(w) * h * channels)};
  for (size_t i = 0; i < size_t(w) * h; ++i) {
    const uint8_t* p = px.get() + i * n;
    uint8_t* q = &img.pixels[i * channels];
    if (n <= 2) std::fill_n(q, channels, p[0]);
    else if (channels == 3) std::copy_n(p, 3, q);
    else q[0] = uint8_t((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);  // PIL's L24: ITU-R 601-2 luma
  }
  return img;
}

Image load_image(const std::string& path, int channels) {
  const std::vector<uint8_t> data = read_file(path);
  return decode_image(data.data(), data.size(), channels, path);
}

Image resize(const Image& img, int width, int height, Interp interp) {
  if (width < 1 || height < 1 || img.width < 1 || img.height < 1)
    fail("resize: cannot resize ", img.width, "x", img.height, " to ", width, "x", height);
  // A thin image resized by its short side could otherwise ask for gigabytes.
  if (long(width) * height > kMaxPixels)
    fail("resize: ", width, "x", height, " is more than ", kMaxPixels, " pixels (from ", img.width, "x", img.height,
         ")");
  if (interp == Interp::Nearest) return resize_nearest(img, width, height);
  // Horizontal first, then vertical, each only when that side changes, as ImagingResampleInner.
  Image out = width != img.width ? resample_pass(img, width, interp, true) : img;
  if (height != img.height) out = resample_pass(out, height, interp, false);
  return out;
}

Image center_crop(const Image& img, int width, int height) {
  const int x0 = crop_start(img.width, width), y0 = crop_start(img.height, height), C = img.channels;
  Image out{width, height, C, std::vector<uint8_t>(size_t(width) * height * C, 0)};
  for (int y = 0; y < height; ++y) {
    const int sy = y0 + y;
    if (sy < 0 || sy >= img.height) continue;
    // Columns of the crop that fall inside the image: [xa, xb).
    const int xa = std::max(0, -x0), xb = std::min(width, img.width - x0);
    if (xa < xb)
      std::copy_n(&img.pixels[(size_t(sy) * img.width + x0 + xa) * C], size_t(xb - xa) * C,
                  &out.pixels[(size_t(y) * width + xa) * C]);
  }
  return out;
}

void to_tensor(const Image& img, const std::array<float, 3>& mean, const std::array<float, 3>& std, float* out) {
  const size_t plane = size_t(img.width) * img.height;
  for (int c = 0; c < img.channels; ++c)
    for (size_t i = 0; i < plane; ++i) {
      // ToTensor divides by 255 in float32; Normalize subtracts, then divides, in float32.
      const float v = float(img.pixels[i * img.channels + c]) / 255.0f;
      out[c * plane + i] = (v - mean[c]) / std[c];
    }
}

std::array<int, 2> preprocess_size(const Image& img, const Preprocess& pre) {
  if (pre.crop > 0) return {pre.crop, pre.crop};
  return resized_size(img, pre);
}

int preprocess_side(const Image& img, const Preprocess& pre) {
  const auto [w, h] = preprocess_size(img, pre);
  return w == h ? w : -1;
}

void preprocess(const Image& img, const Preprocess& pre, float* out) {
  const auto [w, h] = resized_size(img, pre);
  Image x = resize(img, w, h, pre.interp);
  if (pre.crop > 0) x = center_crop(x, pre.crop, pre.crop);
  to_tensor(x, pre.mean, pre.std, out);
}

std::string interp_name(Interp i) {
  switch (i) {
    case Interp::Nearest: return "nearest";
    case Interp::Bilinear: return "bilinear";
    case Interp::Bicubic: return "bicubic";
  }
  return "?";
}

Interp parse_interp(const std::string& name) {
  for (Interp i : {Interp::Nearest, Interp::Bilinear, Interp::Bicubic})
    if (interp_name(i) == name) return i;
  fail("unknown interpolation '", name, "' (nearest, bilinear or bicubic)");
}

}  // namespace vitqk::io
