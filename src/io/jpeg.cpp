#include "io/jpeg.h"

#include <csetjmp>
#include <cstdio>  // jpeglib.h uses FILE without including its header
#include <vector>

#include <jpeglib.h>

#include <jerror.h>  // after jpeglib.h, which it needs

#include "core/error.h"

namespace vitqk::io {

namespace {

// libjpeg reports a fatal error by calling error_exit, which must not return: it jumps back
// to guarded() below. Only libjpeg's C frames and the bodies' lambdas run between the
// setjmp and the jump, and they own nothing with a destructor, so the jump skips none.
struct Decoder {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr err{};
  jpeg_progress_mgr progress{};
  std::jmp_buf jump{};
  char reason[JMSG_LENGTH_MAX] = "";
  bool truncated = false;

  Decoder() = default;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  // Safe whatever stage was reached: a struct that jpeg_create_decompress never filled has no
  // memory manager, and destroy then does nothing.
  ~Decoder() { jpeg_destroy_decompress(&cinfo); }
};

Decoder& decoder_of(j_common_ptr c) { return *static_cast<Decoder*>(c->client_data); }

[[noreturn]] void error_exit(j_common_ptr c) {
  Decoder& d = decoder_of(c);
  c->err->format_message(c, d.reason);
  std::longjmp(d.jump, 1);
}

// Warnings about corrupt data that libjpeg recovers from pass, as they do in PIL; running out
// of data does not (PIL: "image file is truncated"). Nothing is printed.
void emit_message(j_common_ptr c, int level) {
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
    decoder_of(c).truncated = true;
    error_exit(c);
  }
}

void output_message(j_common_ptr) {}

void check_scans(j_common_ptr c) {
  Decoder& d = decoder_of(c);
  if (d.cinfo.input_scan_number > kMaxJpegScans) {
    std::snprintf(d.reason, sizeof d.reason, "more than %d scans", kMaxJpegScans);
    std::longjmp(d.jump, 1);
  }
}

template <class Body>
bool guarded(Decoder& d, Body&& body) {
  if (setjmp(d.jump) != 0) return false;
  body();
  return true;
}

[[noreturn]] void fail_jpeg(const Decoder& d, const std::string& name) {
  if (d.truncated) fail(name, ": truncated JPEG (the data ends before the image does)");
  fail(name, ": corrupt JPEG (", d.reason, ")");
}

// Reads the headers and chooses the output: grey stays grey, YCbCr and RGB become RGB,
// CMYK and YCCK come out as CMYK for decode_jpeg to convert. Returns the output's channels.
int open(Decoder& d, const uint8_t* data, size_t size, const std::string& name) {
  d.cinfo.err = jpeg_std_error(&d.err);
  d.err.error_exit = error_exit;
  d.err.emit_message = emit_message;
  d.err.output_message = output_message;
  d.cinfo.client_data = &d;  // jpeg_create_decompress keeps err and client_data
  d.progress.progress_monitor = check_scans;
  int channels = 0;
  const bool ok = guarded(d, [&] {
    jpeg_create_decompress(&d.cinfo);
    d.cinfo.progress = &d.progress;
    jpeg_mem_src(&d.cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(&d.cinfo, TRUE);
    switch (d.cinfo.jpeg_color_space) {
      case JCS_GRAYSCALE: d.cinfo.out_color_space = JCS_GRAYSCALE, channels = 1; break;
      case JCS_YCbCr: case JCS_RGB: d.cinfo.out_color_space = JCS_RGB, channels = 3; break;
      case JCS_CMYK: case JCS_YCCK: d.cinfo.out_color_space = JCS_CMYK, channels = 4; break;
      default: break;
    }
  });
  if (!ok) fail_jpeg(d, name);
  if (channels == 0) fail(name, ": unsupported JPEG (", d.cinfo.num_components, " colour components)");
  return channels;
}

// PIL's MULDIV255: a * b / 255, rounded, in integers.
int muldiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

}  // namespace

bool is_jpeg(const uint8_t* data, size_t size) { return size >= 2 && data[0] == 0xFF && data[1] == 0xD8; }

std::array<int, 2> jpeg_size(const uint8_t* data, size_t size, const std::string& name) {
  Decoder d;
  open(d, data, size, name);
  return {int(d.cinfo.image_width), int(d.cinfo.image_height)};
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  Decoder d;
  const int n = open(d, data, size, name);
  const int w = int(d.cinfo.image_width), h = int(d.cinfo.image_height);
  std::vector<uint8_t> raw(size_t(w) * size_t(h) * size_t(n));
  uint8_t* const out = raw.data();
  const bool ok = guarded(d, [&] {
    jpeg_start_decompress(&d.cinfo);
    while (d.cinfo.output_scanline < d.cinfo.output_height) {
      JSAMPROW row = out + size_t(d.cinfo.output_scanline) * size_t(w) * size_t(n);
      jpeg_read_scanlines(&d.cinfo, &row, 1);
    }
  });
  if (!ok) fail_jpeg(d, name);
  if (n != 4) return {w, h, n, std::move(raw)};
  // PIL reads every CMYK JPEG with Adobe's inverted polarity ("CMYK;I"), then converts to RGB
  // as cmyk2rgb does: each of C, M, Y scaled by 1 - K.
  Image rgb{w, h, 3, std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
  for (size_t i = 0; i < size_t(w) * size_t(h); ++i) {
    const uint8_t* p = &raw[i * 4];
    const int nk = p[3];  // 255 - (255 - K)
    for (int c = 0; c < 3; ++c) rgb.pixels[i * 3 + size_t(c)] = uint8_t(nk - muldiv255(255 - p[c], nk));
  }
  return rgb;
}

}  // namespace vitqk::io
