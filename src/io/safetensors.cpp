#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json.h"

namespace vitqk::io {

// The format is little-endian; data is copied to and from memory as is.
static_assert(std::endian::native == std::endian::little);

namespace {

constexpr uint64_t kMaxHeader = 100'000'000;
constexpr size_t kChunkBytes = size_t(1) << 20;  // bounds the conversion buffer, not the tensor

using nlohmann::json;

// Names and dtypes come from the file: quote them as JSON so a hostile name cannot
// break the one-line error message.
std::string quoted(const std::string& s) { return json(s).dump(); }

// Every dtype the safetensors specification knows; the ones we do not convert are
// refused by name rather than called unknown.
const std::set<std::string> kOtherDtypes = {"BOOL", "U8",  "I8",  "I16",     "U16",     "I32",     "U32",     "I64",
                                            "U64",  "C64", "F4",  "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0"};

bool parse_dtype(const std::string& s, DType& d) {
  for (DType c : {DType::F32, DType::F16, DType::BF16, DType::F64})
    if (s == dtype_name(c)) return d = c, true;
  return false;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in float
    const float v = float(mant) * 0x1p-24f;
    return sign ? -v : v;
  }
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // inf, nan (payload kept)
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f) & 0x7fffffff;
  const uint16_t sign = uint16_t((std::bit_cast<uint32_t>(f) >> 16) & 0x8000);
  if (x > 0x7f800000) return sign | 0x7e00 | ((x >> 13) & 0x1ff);  // nan stays a (quiet) nan
  // From 65520, half-way above the largest half (65504), the nearest even is inf.
  if (x >= 0x477ff000) return sign | 0x7c00;
  if (x >= 0x38800000) {  // normal in f16; the rounding carry may bump the exponent
    const uint32_t r = x - (112u << 23);
    return sign | uint16_t((r + 0xfff + ((r >> 13) & 1)) >> 13);
  }
  const uint32_t exp = x >> 23;
  if (exp < 102) return sign;  // below half the smallest subnormal (2^-25): zero
  // Subnormal: round m * 2^(exp-126) to an integer, ties to even; 1024 is the smallest normal.
  const uint32_t m = (x & 0x7fffff) | 0x800000, s = 126 - exp;
  const uint32_t q = m >> s, rem = m & ((1u << s) - 1), half = 1u << (s - 1);
  return sign | uint16_t(q + (rem > half || (rem == half && (q & 1))));
}

float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

uint16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffff) > 0x7f800000) return uint16_t((x >> 16) | 0x40);  // keep nan a nan
  return uint16_t((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

// Converts `bytes` bytes of `d` to float32 at dst; returns the end of what it wrote.
float* decode(DType d, const unsigned char* src, size_t bytes, float* dst) {
  const size_t n = bytes / dtype_size(d);
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    double v;
    switch (d) {
      case DType::F16: std::memcpy(&h, src + 2 * i, 2), dst[i] = f16_to_f32(h); break;
      case DType::BF16: std::memcpy(&h, src + 2 * i, 2), dst[i] = bf16_to_f32(h); break;
      case DType::F64: std::memcpy(&v, src + 8 * i, 8), dst[i] = float(v); break;
      case DType::F32: std::memcpy(dst + i, src + 4 * i, 4); break;
    }
  }
  return dst + n;
}

SafeTensorsReader::Entry parse_entry(const std::string& path, const std::string& name, const json& t) {
  const std::string where = path + ": tensor " + quoted(name);
  if (!t.is_object()) fail(where, " is not a JSON object");
  for (const auto& [k, v] : t.items())
    if (k != "dtype" && k != "shape" && k != "data_offsets") fail(where, " has unexpected field ", quoted(k));
  for (const char* k : {"dtype", "shape", "data_offsets"})
    if (!t.contains(k)) fail(where, " has no '", k, "'");

  SafeTensorsReader::Entry e;
  e.name = name;
  const json& dt = t["dtype"];
  if (!dt.is_string()) fail(where, ": dtype is not a string");
  const std::string d = dt.get<std::string>();
  if (!parse_dtype(d, e.dtype)) {
    if (kOtherDtypes.count(d))
      fail(path, ": unsupported dtype ", d, " for tensor ", quoted(name), " (vitqk reads F32, F16, BF16, F64)");
    fail(path, ": unknown dtype ", quoted(d), " for tensor ", quoted(name));
  }

  const json& shape = t["shape"];
  if (!shape.is_array()) fail(where, ": shape is not an array");
  uint64_t numel = 1;
  for (const json& s : shape) {
    if (!s.is_number_unsigned()) fail(where, ": shape entry ", s.dump(), " is not a non-negative integer");
    const uint64_t dim = s.get<uint64_t>();
    if (dim > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel) || numel > uint64_t(INT64_MAX))
      fail(where, ": shape ", shape.dump(), " overflows the element count");
    e.shape.push_back(int64_t(dim));
  }
  e.numel = int64_t(numel);
  uint64_t bytes;
  if (__builtin_mul_overflow(numel, uint64_t(dtype_size(e.dtype)), &bytes))
    fail(where, ": shape ", shape.dump(), " overflows the byte size");

  const json& off = t["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    fail(where, ": data_offsets must be two non-negative integers, not ", off.dump());
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.begin > e.end) fail(where, ": data_offsets ", off.dump(), " end before they begin");
  if (e.end - e.begin != bytes)
    fail(where, ": data_offsets ", off.dump(), " span ", e.end - e.begin, " bytes but shape ", shape.dump(), " of ", d,
         " needs ", bytes);
  return e;
}

}  // namespace

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
  }
  return "?";
}

size_t dtype_size(DType d) {
  switch (d) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::F64: return 8;
  }
  return 0;
}

SafeTensorsReader::SafeTensorsReader(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(path_, ": cannot open: ", std::strerror(errno));
  try {
    struct stat st;
    if (::fstat(fd_, &st) != 0) fail(path_, ": cannot stat: ", std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail(path_, ": not a regular file");
    validate(uint64_t(st.st_size));
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

SafeTensorsReader::SafeTensorsReader(std::string name, std::string_view bytes)
    : path_(std::move(name)), memory_(bytes) {
  validate(bytes.size());
}

SafeTensorsReader::~SafeTensorsReader() {
  if (fd_ >= 0) ::close(fd_);
}

// Throws when the bytes are not there: the file may have shrunk since it was validated.
void SafeTensorsReader::read_at(void* dst, size_t size, uint64_t offset) const {
  auto* p = static_cast<char*>(dst);
  if (fd_ < 0) {
    if (offset > memory_.size() || size > memory_.size() - offset) fail(path_, ": file is truncated");
    std::memcpy(p, memory_.data() + offset, size);
    return;
  }
  while (size > 0) {
    const ssize_t n = ::pread(fd_, p, size, off_t(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path_, ": read failed: ", std::strerror(errno));
    if (n == 0) fail(path_, ": file is truncated (it changed after it was opened?)");
    p += n, size -= size_t(n), offset += uint64_t(n);
  }
}

void SafeTensorsReader::validate(uint64_t file_size) {
  if (file_size < 8) fail(path_, ": file is truncated (", file_size, " bytes, shorter than the 8-byte header size)");
  unsigned char le[8];
  read_at(le, 8, 0);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | le[i];
  if (n > kMaxHeader) fail(path_, ": header size ", n, " is too large (limit ", kMaxHeader, " bytes)");
  if (n > file_size - 8)
    fail(path_, ": header size ", n, " runs past the end of the file (", file_size, " bytes): truncated?");

  std::string text(n, '\0');
  read_at(text.data(), n, 8);
  // The parser would skip leading whitespace or a byte-order mark; the reference reader
  // requires '{' first.
  if (text.empty() || text[0] != '{') fail(path_, ": header is not a JSON object (it must start with '{')");
  // nlohmann stops at a NUL as if the input ended, accepting "{}\0garbage"; JSON has no NULs.
  if (text.find('\0') != std::string::npos) fail(path_, ": header is not valid JSON (it contains a NUL byte)");
  // Tensor objects and their arrays inside the root object: three levels.
  const json header = parse_json(text, 3, path_ + ": header");
  if (!header.is_object()) fail(path_, ": header is not a JSON object");

  for (const auto& [name, value] : header.items()) {
    if (name != "__metadata__") {
      entries_.push_back(parse_entry(path_, name, value));
      continue;
    }
    if (!value.is_object()) fail(path_, ": __metadata__ is not a JSON object");
    for (const auto& [k, v] : value.items()) {
      if (!v.is_string())
        fail(path_, ": __metadata__ must map strings to strings, but ", quoted(k), " is ", v.type_name());
      metadata_[k] = v.get<std::string>();
    }
  }

  // Sorted by offset the tensors must tile the data buffer exactly, like the reference
  // reader demands; empty tensors sort before the tensor they share an offset with.
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  for (size_t i = 0; i < entries_.size(); ++i) by_name_.emplace(entries_[i].name, i);
  data_start_ = 8 + n;
  const uint64_t data_size = file_size - data_start_;
  uint64_t at = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries_) {
    if (e.begin > at)
      fail(path_, ": gap in the data buffer: bytes [", at, ", ", e.begin, ") before tensor ", quoted(e.name),
           " belong to no tensor");
    if (e.begin < at)
      fail(path_, ": tensor ", quoted(e.name), " data_offsets [", e.begin, ", ", e.end, "] overlap tensor ",
           quoted(prev->name), " (which ends at ", at, ")");
    if (e.end > data_size)
      fail(path_, ": file is truncated: tensor ", quoted(e.name), " ends at data offset ", e.end,
           " but the data buffer has ", data_size, " bytes");
    at = e.end;
    prev = &e;
  }
  if (at != data_size)
    fail(path_, ": data buffer is ", data_size, " bytes but the tensors cover ", at,
         " (trailing bytes after the last tensor)");
}

const SafeTensorsReader::Entry* SafeTensorsReader::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

void SafeTensorsReader::read(const Entry& e, float* dst) const {
  const uint64_t start = data_start_ + e.begin;
  const size_t total = size_t(e.end - e.begin);
  if (e.dtype == DType::F32) {
    read_at(dst, total, start);
    return;
  }
  std::vector<unsigned char> buf(std::min(total, kChunkBytes));
  for (size_t done = 0; done < total;) {
    const size_t n = std::min(buf.size(), total - done);
    read_at(buf.data(), n, start + done);
    dst = decode(e.dtype, buf.data(), n, dst);
    done += n;
  }
}

std::vector<float> SafeTensorsReader::read(const Entry& e) const {
  std::vector<float> out(size_t(e.numel));
  read(e, out.data());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    fail(path, ": writing ", dtype_name(dtype), " is unsupported (use F32, F16 or BF16)");
  const size_t esize = dtype_size(dtype);

  // ordered_json keeps the caller's tensor order in the header, matching the data.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<uint64_t> numels;
  uint64_t offset = 0;
  for (const TensorView& t : tensors) {
    if (t.name == "__metadata__") fail(path, ": '__metadata__' cannot name a tensor");
    if (header.contains(t.name)) fail(path, ": duplicate tensor name ", quoted(t.name));
    uint64_t numel = 1, bytes;
    for (int64_t d : t.shape)
      if (d < 0 || __builtin_mul_overflow(numel, uint64_t(d), &numel))
        fail(path, ": tensor ", quoted(t.name), " has an invalid shape");
    if (__builtin_mul_overflow(numel, esize, &bytes) || __builtin_add_overflow(offset, bytes, &offset))
      fail(path, ": tensor ", quoted(t.name), " is too large");
    if (numel > 0 && !t.data) fail(path, ": tensor ", quoted(t.name), " has no data");
    header[t.name] = {{"dtype", dtype_name(dtype)}, {"shape", t.shape}, {"data_offsets", {offset - bytes, offset}}};
    numels.push_back(numel);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  AtomicFile f(path);
  unsigned char le[8];
  for (int i = 0; i < 8; ++i) le[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  f.write(le, 8);
  f.write(text.data(), text.size());

  std::vector<uint16_t> buf(kChunkBytes / 2);
  for (size_t k = 0; k < tensors.size(); ++k) {
    const float* src = tensors[k].data;
    if (dtype == DType::F32) {
      if (numels[k] > 0) f.write(src, size_t(numels[k]) * 4);
      continue;
    }
    for (uint64_t done = 0; done < numels[k];) {
      const size_t n = size_t(std::min<uint64_t>(buf.size(), numels[k] - done));
      for (size_t i = 0; i < n; ++i)
        buf[i] = dtype == DType::F16 ? f32_to_f16(src[done + i]) : f32_to_bf16(src[done + i]);
      f.write(buf.data(), n * 2);
      done += n;
    }
  }
  f.commit();
}

}  // namespace vitqk::io
