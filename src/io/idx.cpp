#include "io/idx.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace vitqk::io {

namespace {

// Reads, inflates and grows buffers in slices: bounds each step's work and memory.
constexpr size_t kChunk = size_t(1) << 20;

// The bytes as stored: from an open file or from memory.
class Stored {
 public:
  Stored(int fd, uint64_t size, std::string name) : fd_(fd), size_(size), name_(std::move(name)) {}
  Stored(const uint8_t* data, size_t size, std::string name) : data_(data), size_(size), name_(std::move(name)) {}

  uint64_t size() const { return size_; }
  const std::string& name() const { return name_; }

  // Up to n bytes; fewer only at the end of the file.
  size_t read(uint8_t* dst, size_t n) {
    n = size_t(std::min<uint64_t>(n, size_ - pos_));
    if (fd_ < 0) {
      std::memcpy(dst, data_ + pos_, n);
      pos_ += n;
      return n;
    }
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::read(fd_, dst + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) fail(name_, ": cannot read (", std::strerror(errno), ")");
      if (r == 0) fail(name_, ": file is truncated (it changed while it was read?)");
      got += size_t(r);
    }
    pos_ += n;
    return n;
  }

 private:
  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  uint64_t size_, pos_ = 0;
  std::string name_;
};

// The IDX bytes: the stored ones, or inflated from gzip (any number of concatenated members,
// as gzip itself writes them).
class Content {
 public:
  explicit Content(Stored& in) : in_(in) {
    uint8_t magic[2];
    const size_t got = in_.read(magic, 2);
    pending_.assign(magic, magic + got);
    gzipped_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (!gzipped_) return;
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) fail(in_.name(), ": cannot start inflating (out of memory?)");
    buf_.resize(size_t(std::min<uint64_t>(kChunk, std::max<uint64_t>(in_.size(), 2))));
    std::copy(pending_.begin(), pending_.end(), buf_.begin());
    z_.next_in = buf_.data();
    z_.avail_in = uInt(pending_.size());
    pending_.clear();
  }
  ~Content() {
    if (gzipped_) inflateEnd(&z_);
  }
  Content(const Content&) = delete;
  Content& operator=(const Content&) = delete;

  bool gzipped() const { return gzipped_; }

  // Up to n bytes; fewer only at the end of the data. A gzip stream cut short ends early:
  // the callers' size checks report it.
  size_t read(uint8_t* dst, size_t n) {
    size_t got = std::min(n, pending_.size());
    std::copy_n(pending_.begin(), got, dst);
    pending_.erase(pending_.begin(), pending_.begin() + long(got));
    if (!gzipped_) return got + in_.read(dst + got, n - got);
    while (got < n && !ended_) {
      refill();
      z_.next_out = dst + got;
      z_.avail_out = uInt(std::min(n - got, kChunk));
      const uInt before = z_.avail_out;
      const int r = inflate(&z_, Z_NO_FLUSH);
      got += before - z_.avail_out;
      if (r == Z_STREAM_END) next_member();
      else if (r == Z_BUF_ERROR && input_done_) break;  // the stream stops short
      else if (r != Z_OK && r != Z_BUF_ERROR)
        fail(in_.name(), ": corrupt gzip data (", z_.msg ? z_.msg : "zlib error " + std::to_string(r), ")");
    }
    return got;
  }

 private:
  void refill() {
    if (z_.avail_in > 0 || input_done_) return;
    z_.next_in = buf_.data();
    z_.avail_in = uInt(in_.read(buf_.data(), buf_.size()));
    input_done_ = z_.avail_in == 0;
  }

  // After a gzip member: another member, or the end of the file; anything else is refused.
  void next_member() {
    refill();
    if (z_.avail_in == 0) {
      ended_ = true;
      return;
    }
    if (z_.next_in[0] != 0x1f) fail(in_.name(), ": corrupt gzip data (bytes after the end of the gzip stream)");
    inflateReset(&z_);
  }

  Stored& in_;
  bool gzipped_ = false, ended_ = false, input_done_ = false;
  std::vector<uint8_t> pending_, buf_;
  z_stream z_{};
};

uint32_t big_endian(const uint8_t* b) { return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3]; }

std::string dims_text(const std::vector<uint32_t>& dims) {
  std::string s;
  for (uint32_t d : dims) s += (s.empty() ? "" : " x ") + std::to_string(d);
  return s;
}

std::vector<uint32_t> read_header(Content& f, int ndims, const std::string& path) {
  uint8_t magic[4];
  const size_t got = f.read(magic, 4);
  if (got < 4) fail(path, ": truncated header (", got, " bytes)");
  if (magic[0] != 0 || magic[1] != 0) fail(path, ": not an IDX file, raw or gzipped");
  if (magic[2] != 0x08) {
    char code[8];
    std::snprintf(code, sizeof code, "0x%02x", magic[2]);
    fail(path, ": IDX data type ", code, " is not unsigned byte (0x08)");
  }
  if (magic[3] != ndims) fail(path, ": IDX file has ", int(magic[3]), " dimensions, expected ", ndims);
  std::vector<uint8_t> raw(4 * size_t(ndims));
  if (f.read(raw.data(), raw.size()) < raw.size()) fail(path, ": truncated header");
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
std::vector<uint8_t> read_data(Content& f, uint64_t bytes, const std::string& path) {
  std::vector<uint8_t> data;
  while (data.size() < bytes) {
    const size_t old = data.size(), n = std::min<uint64_t>(bytes - old, kChunk);
    data.resize(old + n);
    const size_t got = f.read(data.data() + old, n);
    if (got < n) fail(path, ": truncated: the header declares ", bytes, " bytes of data, the file holds ", old + got);
  }
  uint8_t extra;
  if (f.read(&extra, 1) != 0) fail(path, ": data continues after the ", bytes, " bytes the header declares");
  return data;
}

IdxArray read_stored(Stored& in, int ndims) {
  const std::string& path = in.name();
  Content f(in);
  IdxArray a;
  a.dims = read_header(f, ndims, path);
  const uint64_t bytes = checked_bytes(a.dims, path);
  const uint64_t header = 4 + 4 * uint64_t(ndims);
  if (!f.gzipped() && in.size() != header + bytes)
    fail(path, ": file is ", in.size(), " bytes, its header (", dims_text(a.dims), ") declares ", header + bytes);
  a.data = read_data(f, bytes, path);
  return a;
}

}  // namespace

IdxArray read_idx(const std::string& path, int ndims) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) fail(path, ": no such file");
  if (fd < 0) fail(path, ": cannot open (", std::strerror(errno), ")");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) fail(path, ": cannot stat (", std::strerror(errno), ")");
  if (S_ISDIR(st.st_mode)) fail(path, ": is a directory, expected an IDX file");
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file");
  Stored in(fd, uint64_t(st.st_size), path);
  return read_stored(in, ndims);
}

IdxArray read_idx(const uint8_t* data, size_t size, int ndims, const std::string& name) {
  Stored in(data, size, name);
  return read_stored(in, ndims);
}

IdxImages idx_images(IdxArray a, const std::string& name) {
  if (a.dims[1] == 0 || a.dims[2] == 0) fail(name, ": images of size ", a.dims[1], " x ", a.dims[2]);
  IdxImages im;
  im.count = int(a.dims[0]), im.rows = int(a.dims[1]), im.cols = int(a.dims[2]);
  im.pixels = std::move(a.data);
  return im;
}

IdxImages read_idx_images(const std::string& path) { return idx_images(read_idx(path, 3), path); }

std::vector<uint8_t> read_idx_labels(const std::string& path) { return read_idx(path, 1).data; }

}  // namespace vitqk::io
