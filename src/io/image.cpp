// Decoding (libjpeg-turbo for JPEG, stb_image for the other formats), then PIL's colour
// conversions, PIL's resampling and torchvision's crop and tensor conversion, each written to
// give the very same bits as the Python code.
#include "io/image.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>

#include "core/error.h"
#include "io/jpeg.h"

// stb_image is C written for C compilers; keep its warnings out of stricter builds of ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wuseless-cast"
#endif
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
// stb_image copies zero bytes to or from a null pointer in places (a PNG with an empty IDAT
// chunk), which memcpy does not allow; such copies skip memcpy here.
#include <string.h>
static inline void* stb_memcpy(void* dst, const void* src, size_t n) { return n ? memcpy(dst, src, n) : dst; }
#define memcpy stb_memcpy
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO  // files are read here, with a size bound
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_PNM
#include <stb_image.h>
#undef memcpy
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
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#define NO_FP_CONTRACT
#else
#define NO_FP_CONTRACT [[gnu::optimize("fp-contract=off")]]
#endif

NO_FP_CONTRACT double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

NO_FP_CONTRACT double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Output sample i (of the part computed) reads `count[i]` inputs from `first[i]` with
// weights k[i * ksize ...].
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

// precompute_coeffs + normalize_coeffs_8bpc for the output samples [out_first, out_first +
// out_count) of out_size: when shrinking, the filter widens by the scale (antialiasing),
// which is what makes PIL's resize differ from plain interpolation.
NO_FP_CONTRACT Taps make_taps(int in_size, int out_size, Interp interp, int out_first, int out_count) {
  double (*filter)(double) = interp == Interp::Bicubic ? bicubic_filter : bilinear_filter;
  const double scale = double(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = (interp == Interp::Bicubic ? 2.0 : 1.0) * filterscale;
  const double ss = 1.0 / filterscale;
  Taps t;
  t.ksize = int(std::ceil(support)) * 2 + 1;
  t.first.resize(out_count);
  t.count.resize(out_count);
  t.k.assign(size_t(out_count) * t.ksize, 0);
  std::vector<double> w(t.ksize);
  for (int i = 0; i < out_count; ++i) {
    const int xx = out_first + i;
    const double center = (xx + 0.5) * scale;
    const int xmin = std::max(int(center - support + 0.5), 0);
    const int n = std::min(int(center + support + 0.5), in_size) - xmin;
    double ww = 0.0;
    for (int x = 0; x < n; ++x) ww += w[x] = filter((x + xmin - center + 0.5) * ss);
    for (int x = 0; x < n; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      const double fixed = v * (1 << kPrecisionBits);
      t.k[size_t(i) * t.ksize + x] = int32_t(v < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
    t.first[i] = xmin;
    t.count[i] = n;
  }
  return t;
}

// One pass along x (horizontal) or y, the other size unchanged: the samples [first, first +
// count) of a resize to out_size.
Image resample_pass(const Image& in, int out_size, Interp interp, bool horizontal, int first, int count) {
  const Taps t = make_taps(horizontal ? in.width : in.height, out_size, interp, first, count);
  Image out{horizontal ? count : in.width, horizontal ? in.height : count, in.channels, {}};
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

// A window of an image: columns [x, x + width), rows [y, y + height).
struct Box {
  int x, y, width, height;
};

Image resize_nearest(const Image& img, int width, int height, Box b) {
  const std::vector<int> sx = nearest_sources(img.width, width), sy = nearest_sources(img.height, height);
  const int C = img.channels;
  Image out{b.width, b.height, C, std::vector<uint8_t>(size_t(b.width) * b.height * C, 0)};
  for (int y = 0; y < b.height; ++y)
    for (int x = 0; x < b.width; ++x) {
      const int ix = sx[b.x + x], iy = sy[b.y + y];
      if (iy >= 0 && ix >= 0)
        std::copy_n(&img.pixels[(size_t(iy) * img.width + ix) * C], C, &out.pixels[(size_t(y) * b.width + x) * C]);
    }
  return out;
}

// The window `b` of img; where it reaches outside the image the pixels are zero.
Image crop(const Image& img, Box b) {
  const int C = img.channels;
  Image out{b.width, b.height, C, std::vector<uint8_t>(size_t(b.width) * b.height * C, 0)};
  // Columns of the window that fall inside the image: [xa, xb).
  const int xa = std::max(0, -b.x), xb = std::min(b.width, img.width - b.x);
  for (int y = 0; y < b.height; ++y) {
    const int sy = b.y + y;
    if (sy < 0 || sy >= img.height || xa >= xb) continue;
    std::copy_n(&img.pixels[(size_t(sy) * img.width + b.x + xa) * C], size_t(xb - xa) * C,
                &out.pixels[(size_t(y) * b.width + xa) * C]);
  }
  return out;
}

// The window `b` of img resized to width x height, computing no other pixel.
Image resize_part(const Image& img, int width, int height, Interp interp, Box b) {
  if (width < 1 || height < 1 || img.width < 1 || img.height < 1)
    fail("resize: cannot resize ", img.width, "x", img.height, " to ", width, "x", height);
  // The horizontal pass keeps every input row: that and the result are what is allocated.
  if (long(b.width) * b.height > kMaxPixels || long(b.width) * img.height > kMaxPixels)
    fail("resize: ", width, "x", height, " from ", img.width, "x", img.height, " needs more than ", kMaxPixels,
         " pixels");
  if (interp == Interp::Nearest) return resize_nearest(img, width, height, b);
  // Horizontal first, then vertical, each only when that side changes, as ImagingResampleInner.
  Image out = width != img.width ? resample_pass(img, width, interp, true, b.x, b.width)
                                 : crop(img, {b.x, 0, b.width, img.height});
  return height != img.height ? resample_pass(out, height, interp, false, b.y, b.height)
                              : crop(out, {0, b.y, b.width, b.height});
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

bool is_png(const uint8_t* d, size_t n) { return n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0; }
bool is_bmp(const uint8_t* d, size_t n) { return n >= 2 && d[0] == 'B' && d[1] == 'M'; }

uint32_t big_endian32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

// stb_image allocates a PNG data chunk's declared length before reading it: a 100-byte file
// could have it allocate 2 GiB. Every chunk up to IEND must fit in the file.
bool png_chunks_fit(const uint8_t* d, size_t n) {
  if (!is_png(d, n)) return true;
  for (size_t at = 8; at + 12 <= n;) {
    const uint64_t length = big_endian32(d + at);
    if (length > n - at - 12) return false;  // length, type and CRC around the data
    if (std::memcmp(d + at + 4, "IEND", 4) == 0) return true;
    at += 12 + length;
  }
  return false;  // no IEND
}

// stb_image 2.27 reads a PNM header's numbers into an int without an overflow check (2.28
// checks). Each of width, height and maximum value may have at most 9 digits, read the way
// stb_image reads them: whitespace and '#' comments, then digits.
bool pnm_numbers_fit(const uint8_t* d, size_t n) {
  if (n < 2 || d[0] != 'P' || (d[1] != '5' && d[1] != '6')) return true;  // not a binary PNM
  auto space = [](uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  size_t at = 2;
  for (int number = 0; number < 3; ++number) {
    for (;;) {
      while (at < n && space(d[at])) ++at;
      if (at >= n || d[at] != '#') break;
      while (at < n && d[at] != '\n' && d[at] != '\r') ++at;
    }
    size_t digits = 0;
    while (at < n && d[at] >= '0' && d[at] <= '9') ++at, ++digits;
    if (digits > 9) return false;
  }
  return true;
}

// The fewest bytes in which the format can hold a w x h image, from its best compression.
// The decoders allocate for the declared size before they read the data (libjpeg: the whole
// image's coefficients for a progressive file), so a smaller file would have them allocate
// for pixels that are not there.
//   PNG: deflate expands at most 1032-fold; the raw rows follow from IHDR's depth and colours.
//   JPEG: a block of 8x8 pixels takes at least one bit: 512 pixels per byte.
//   GIF: a 12-bit LZW code stands for at most 4091 pixels: 2727 pixels per byte.
//   BMP (stb_image reads no RLE): one bit per pixel. PNM (binary): one byte per pixel.
uint64_t min_encoded_bytes(const uint8_t* d, size_t n, int w, int h) {
  const uint64_t pixels = uint64_t(w) * uint64_t(h);
  auto starts = [&](std::string_view magic) { return n >= magic.size() && std::memcmp(d, magic.data(), magic.size()) == 0; };
  if (is_png(d, n)) {
    int bits = 1;  // the least, when IHDR is not first (Apple's CgBI PNGs)
    if (n >= 26 && std::memcmp(d + 12, "IHDR", 4) == 0) {
      static const int kChannels[7] = {1, 0, 3, 1, 2, 0, 4};  // by colour type
      bits = std::max(1, d[24] * (d[25] < 7 ? kChannels[d[25]] : 1));
    }
    return uint64_t(h) * (1 + (uint64_t(w) * bits + 7) / 8) / 1032;
  }
  if (is_jpeg(d, n)) return pixels / 512;
  if (starts("GIF8")) return pixels / 2727;
  if (is_bmp(d, n)) return pixels / 8;
  return pixels;
}

// Why stb_image failed. It keeps the reason of its last failure, including those of format
// probes that came to nothing, and some decoders fail without giving one: so the reason is
// cleared before each call, and may then be missing.
std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r && *r ? r : "no reason given";
}

// PIL's convert() to L or RGB of w x h pixels with n channels: 1 grey, 2 grey + alpha, 3 RGB,
// 4 RGBA. Alpha is dropped as convert() drops it.
Image convert(const uint8_t* px, int n, int w, int h, int channels) {
  Image img{w, h, channels, std::vector<uint8_t>(size_t(w) * h * channels)};
  for (size_t i = 0; i < size_t(w) * h; ++i) {
    const uint8_t* p = px + i * n;
    uint8_t* q = &img.pixels[i * channels];
    if (n <= 2) std::fill_n(q, channels, p[0]);
    else if (channels == 3) std::copy_n(p, 3, q);
    else q[0] = uint8_t((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);  // PIL's L24: ITU-R 601-2 luma
  }
  return img;
}

}  // namespace

std::array<int, 2> image_size(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) fail(name, ": empty file");
  if (size > kMaxFileBytes) fail(name, kTooLarge);
  if (!png_chunks_fit(data, size)) fail(name, ": truncated or corrupt PNG (a chunk runs past the end of the file)");
  if (!pnm_numbers_fit(data, size)) fail(name, ": corrupt PNM (a header number has more than 9 digits)");
  int w = 0, h = 0, n = 0;
  if (is_jpeg(data, size)) {
    const std::array<int, 2> size2 = jpeg_size(data, size, name);
    w = size2[0], h = size2[1];
  } else if (is_png(data, size) && size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    // From the header itself: stb_image refuses a PNG too large for it, then probes the other
    // formats, and the last probe's "unknown image type" is the reason it keeps.
    w = int(std::min(big_endian32(data + 16), 1u << 30)), h = int(std::min(big_endian32(data + 20), 1u << 30));
  } else {
    stbi__g_failure_reason = nullptr;
    if (!stbi_info_from_memory(data, int(size), &w, &h, &n)) fail(name, ": not an image (", stb_reason(), ")");
    // A negative BMP height is the ordinary top-down layout: stb_image's info passes it on as
    // it is, its decoder flips the rows.
    if (is_bmp(data, size) && h < 0 && h > -(1 << 30)) h = -h;
  }
  if (w <= 0 || h <= 0 || w > kMaxSide || h > kMaxSide || long(w) * h > kMaxPixels)
    fail(name, ": image dimensions ", w, "x", h, " are out of range (at most ", kMaxSide, " per side, ", kMaxPixels,
         " pixels)");
  if (size < min_encoded_bytes(data, size, w, h))
    fail(name, ": truncated or corrupt image (", w, "x", h, " pixels cannot fit in ", size, " bytes)");
  return {w, h};
}

Image decode_image(const uint8_t* data, size_t size, int channels, const std::string& name) {
  if (channels != 1 && channels != 3) fail(name, ": cannot load an image as ", channels, " channels (1 or 3)");
  auto [w, h] = image_size(data, size, name);
  if (is_jpeg(data, size)) {
    Image img = decode_jpeg(data, size, name);
    return img.channels == channels ? img : convert(img.pixels.data(), img.channels, w, h, channels);
  }
  int n = 0;
  const stbi_io_callbacks io{source_read, source_skip, source_eof};
  Source src{data, size};
  stbi__g_failure_reason = nullptr;
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_callbacks(&io, &src, &w, &h, &n, 0), &stbi_image_free);
  if (src.overrun) fail(name, ": truncated image");
  if (!px) fail(name, ": corrupt image (", stb_reason(), ")");
  return convert(px.get(), n, w, h, channels);
}

Image load_image(const std::string& path, int channels) {
  const std::vector<uint8_t> data = read_file(path);
  return decode_image(data.data(), data.size(), channels, path);
}

Image resize(const Image& img, int width, int height, Interp interp) {
  return resize_part(img, width, height, interp, {0, 0, width, height});
}

Image center_crop(const Image& img, int width, int height) {
  return crop(img, {crop_start(img.width, width), crop_start(img.height, height), width, height});
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
  if (pre.crop <= 0) return to_tensor(resize(img, w, h, pre.interp), pre.mean, pre.std, out);
  // Only the part of the resized image that the crop keeps is computed: a thin image resized
  // by its short side would otherwise take gigabytes for pixels the crop throws away.
  const Box c{crop_start(w, pre.crop), crop_start(h, pre.crop), pre.crop, pre.crop};
  const Box kept{std::max(c.x, 0), std::max(c.y, 0), std::min(c.x + c.width, w) - std::max(c.x, 0),
                 std::min(c.y + c.height, h) - std::max(c.y, 0)};
  const Image part = resize_part(img, w, h, pre.interp, kept);
  to_tensor(crop(part, {c.x - kept.x, c.y - kept.y, c.width, c.height}), pre.mean, pre.std, out);
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
