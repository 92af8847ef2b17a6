#include "io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/error.h"

namespace vitqk::io {

namespace {

namespace fs = std::filesystem;

// gzread takes an unsigned count; reading in slices also bounds each step's work.
constexpr size_t kChunk = size_t(1) << 20;

struct GzClose {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzClose>;

struct Source {
  bool gzipped = false;
  uint64_t size = 0;  // on disk; only meaningful for raw files
};

Source inspect(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) fail(path, ": no such file");
  if (fs::is_directory(st)) fail(path, ": is a directory, expected an IDX file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open (", std::strerror(errno), ")");
  unsigned char magic[2] = {0, 0};
  in.read(reinterpret_cast<char*>(magic), 2);
  Source s;
  s.gzipped = in.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  s.size = fs::file_size(path, ec);
  if (ec) fail(path, ": cannot get its size (", ec.message(), ")");
  return s;
}

// zlib prefixes its messages with the file name, which ours already start with.
std::string zlib_error(gzFile f, const std::string& path) {
  int code = 0;
  const std::string m = gzerror(f, &code);
  return m.starts_with(path + ": ") ? m.substr(path.size() + 2) : m;
}

// Reads up to n bytes; fewer only at the end of the data. zlib reports a truncated gzip
// stream as an early end, so the callers' size checks catch it.
size_t read_some(gzFile f, uint8_t* dst, size_t n, const std::string& path) {
  size_t got = 0;
  while (got < n) {
    const int r = gzread(f, dst + got, unsigned(std::min(n - got, kChunk)));
    if (r < 0) fail(path, ": corrupt gzip data (", zlib_error(f, path), ")");
    if (r == 0) break;
    got += size_t(r);
  }
  return got;
}

uint32_t big_endian(const uint8_t* b) { return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3]; }

std::string dims_text(const std::vector<uint32_t>& dims) {
  std::string s;
  for (uint32_t d : dims) s += (s.empty() ? "" : " x ") + std::to_string(d);
  return s;
}

std::vector<uint32_t> read_header(gzFile f, int ndims, const std::string& path) {
  uint8_t magic[4];
  const size_t got = read_some(f, magic, 4, path);
  if (got < 4) fail(path, ": truncated header (", got, " bytes)");
  if (magic[0] != 0 || magic[1] != 0) fail(path, ": not an IDX file, raw or gzipped");
  if (magic[2] != 0x08) {
    char code[8];
    std::snprintf(code, sizeof code, "0x%02x", magic[2]);
    fail(path, ": IDX data type ", code, " is not unsigned byte (0x08)");
  }
  if (magic[3] != ndims) fail(path, ": IDX file has ", int(magic[3]), " dimensions, expected ", ndims);
  std::vector<uint8_t> raw(4 * size_t(ndims));
  if (read_some(f, raw.data(), raw.size(), path) < raw.size()) fail(path, ": truncated header");
  std::vector<uint32_t> dims(ndims);
  for (int i = 0; i < ndims; ++i) dims[i] = big_endian(&raw[4 * i]);
  return dims;
}

uint64_t checked_bytes(const std::vector<uint32_t>& dims, const std::string& path) {
  uint64_t bytes = 1;
  for (uint32_t d : dims) {
    // bytes <= 2^31 and d < 2^32 before the product: it cannot overflow.
    if (d > kMaxIdxBytes || (bytes *= d) > kMaxIdxBytes)
      fail(path, ": header declares ", dims_text(dims), " bytes, more than the ", kMaxIdxBytes, " vitqk reads");
  }
  return bytes;
}

// The buffer grows with the data actually read (geometrically, through resize), so a
// short gzip file that declares a huge size costs only what it holds.
std::vector<uint8_t> read_data(gzFile f, uint64_t bytes, const std::string& path) {
  std::vector<uint8_t> data;
  while (data.size() < bytes) {
    const size_t old = data.size(), n = std::min<uint64_t>(bytes - old, kChunk);
    data.resize(old + n);
    const size_t got = read_some(f, data.data() + old, n, path);
    if (got < n) fail(path, ": truncated: the header declares ", bytes, " bytes of data, the file holds ", old + got);
  }
  uint8_t extra;
  if (read_some(f, &extra, 1, path) != 0) fail(path, ": data continues after the ", bytes, " bytes the header declares");
  return data;
}

}  // namespace

IdxArray read_idx(const std::string& path, int ndims) {
  const Source src = inspect(path);
  GzFile f(gzopen(path.c_str(), "rb"));  // reads non-gzip files as they are
  if (!f) fail(path, ": cannot open (", std::strerror(errno), ")");
  gzbuffer(f.get(), 1 << 17);
  IdxArray a;
  a.dims = read_header(f.get(), ndims, path);
  const uint64_t bytes = checked_bytes(a.dims, path);
  const uint64_t header = 4 + 4 * uint64_t(ndims);
  if (!src.gzipped && src.size != header + bytes)
    fail(path, ": file is ", src.size, " bytes, its header (", dims_text(a.dims), ") declares ", header + bytes);
  a.data = read_data(f.get(), bytes, path);
  return a;
}

IdxImages read_idx_images(const std::string& path) {
  IdxArray a = read_idx(path, 3);
  if (a.dims[1] == 0 || a.dims[2] == 0) fail(path, ": images of size ", a.dims[1], " x ", a.dims[2]);
  IdxImages im;
  im.count = int(a.dims[0]), im.rows = int(a.dims[1]), im.cols = int(a.dims[2]);
  im.pixels = std::move(a.data);
  return im;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) { return read_idx(path, 1).data; }

}  // namespace vitqk::io
