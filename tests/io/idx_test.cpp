#include "io/idx.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/error.h"

namespace vitqk::io {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

const std::string kFashion = "/usr/share/datasets/fashion-mnist";

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("vitqk_idx_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

Bytes idx(uint8_t type, std::vector<uint32_t> dims, const Bytes& data) {
  Bytes b = {0, 0, type, uint8_t(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

Bytes ramp(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(i * 7 + i / 251);
  return b;
}

void write_raw(const std::string& path, const Bytes& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

void write_gz(const std::string& path, const Bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, b.data(), unsigned(b.size())), int(b.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

Bytes read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// The error must be one line that starts with the file and says what is wrong.
void expect_error(const std::function<void()>& f, const std::string& path, const std::string& problem) {
  try {
    f();
    ADD_FAILURE() << "no error for " << path << " (expected '" << problem << "')";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind(path + ": ", 0), 0u) << m;
    EXPECT_NE(m.find(problem), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST(Idx, ReadsRawImagesAndLabels) {
  TempDir dir;
  const Bytes pixels = ramp(5 * 3 * 4), labels = {1, 0, 4, 2, 2};
  write_raw(dir / "img", idx(0x08, {5, 3, 4}, pixels));
  write_raw(dir / "lab", idx(0x08, {5}, labels));
  const IdxImages im = read_idx_images(dir / "img");
  EXPECT_EQ(im.count, 5);
  EXPECT_EQ(im.rows, 3);
  EXPECT_EQ(im.cols, 4);
  EXPECT_EQ(im.pixels, pixels);
  EXPECT_EQ(read_idx_labels(dir / "lab"), labels);
}

TEST(Idx, ReadsGzippedAcrossManyChunks) {
  TempDir dir;
  const Bytes pixels = ramp(100 * 100 * 300);  // 3 MB: several read chunks
  write_gz(dir / "img.gz", idx(0x08, {300, 100, 100}, pixels));
  const IdxImages im = read_idx_images(dir / "img.gz");
  EXPECT_EQ(im.count, 300);
  EXPECT_EQ(im.pixels, pixels);
}

TEST(Idx, GzipIsDetectedByContentNotName) {
  TempDir dir;
  const Bytes labels = {3, 1, 4, 1, 5};
  write_gz(dir / "labels", idx(0x08, {5}, labels));
  write_raw(dir / "raw.gz", idx(0x08, {5}, labels));
  EXPECT_EQ(read_idx_labels(dir / "labels"), labels);
  EXPECT_EQ(read_idx_labels(dir / "raw.gz"), labels);
}

TEST(Idx, EmptyArrayIsFine) {
  TempDir dir;
  write_raw(dir / "lab", idx(0x08, {0}, {}));
  EXPECT_TRUE(read_idx_labels(dir / "lab").empty());
}

TEST(Idx, RejectsWrongMagic) {
  TempDir dir;
  write_raw(dir / "text", Bytes{'h', 'e', 'l', 'l', 'o', '\n'});
  expect_error([&] { read_idx_labels(dir / "text"); }, dir / "text", "not an IDX file");
  write_raw(dir / "float", idx(0x0D, {2}, Bytes(8)));
  expect_error([&] { read_idx_labels(dir / "float"); }, dir / "float", "0x0d is not unsigned byte");
  write_raw(dir / "labels", idx(0x08, {4}, Bytes(4)));
  expect_error([&] { read_idx_images(dir / "labels"); }, dir / "labels", "has 1 dimensions, expected 3");
  write_raw(dir / "short", Bytes{0, 0});
  expect_error([&] { read_idx_labels(dir / "short"); }, dir / "short", "truncated header");
  write_raw(dir / "empty", Bytes{});
  expect_error([&] { read_idx_labels(dir / "empty"); }, dir / "empty", "truncated header");
}

TEST(Idx, GzThatIsNotGzip) {
  TempDir dir;
  write_raw(dir / "x.gz", Bytes{'n', 'o', 't', ' ', 'g', 'z', 'i', 'p'});
  expect_error([&] { read_idx_labels(dir / "x.gz"); }, dir / "x.gz", "not an IDX file");
}

TEST(Idx, CorruptGzip) {
  TempDir dir;
  write_gz(dir / "ok.gz", idx(0x08, {3000}, ramp(3000)));
  Bytes b = read_raw(dir / "ok.gz");
  for (size_t i = 20; i < b.size() - 8; ++i) b[i] ^= 0x5a;
  write_raw(dir / "bad.gz", b);
  expect_error([&] { read_idx_labels(dir / "bad.gz"); }, dir / "bad.gz", "corrupt gzip data");
}

TEST(Idx, RejectsTruncatedData) {
  TempDir dir;
  write_raw(dir / "raw", idx(0x08, {10, 28, 28}, ramp(9 * 28 * 28)));
  expect_error([&] { read_idx_images(dir / "raw"); }, dir / "raw", "file is 7072 bytes, its header (10 x 28 x 28) declares 7856");
  write_raw(dir / "long", idx(0x08, {3}, ramp(4)));
  expect_error([&] { read_idx_labels(dir / "long"); }, dir / "long", "declares 11");

  write_gz(dir / "short.gz", idx(0x08, {10, 28, 28}, ramp(9 * 28 * 28)));
  expect_error([&] { read_idx_images(dir / "short.gz"); }, dir / "short.gz", "truncated");
  write_gz(dir / "long.gz", idx(0x08, {3}, ramp(4)));
  expect_error([&] { read_idx_labels(dir / "long.gz"); }, dir / "long.gz", "data continues after the 3 bytes");

  // A gzip stream cut short: zlib reports it as an early end of data.
  write_gz(dir / "full.gz", idx(0x08, {200, 28, 28}, ramp(200 * 28 * 28)));
  Bytes gz = read_raw(dir / "full.gz");
  gz.resize(gz.size() / 2);
  write_raw(dir / "cut.gz", gz);
  expect_error([&] { read_idx_images(dir / "cut.gz"); }, dir / "cut.gz", "truncated");
}

TEST(Idx, RejectsHugeDeclaredSizes) {
  TempDir dir;
  write_raw(dir / "huge", idx(0x08, {0xffffffffu, 0xffffffffu, 0xffffffffu}, ramp(100)));
  expect_error([&] { read_idx_images(dir / "huge"); }, dir / "huge", "more than the 2147483647");
  write_gz(dir / "huge.gz", idx(0x08, {65536, 65536, 1}, ramp(100)));
  expect_error([&] { read_idx_images(dir / "huge.gz"); }, dir / "huge.gz", "more than the 2147483647");
  // A zero count must not let the other dimensions escape the limit.
  write_raw(dir / "zero", idx(0x08, {0, 0xffffffffu, 1}, {}));
  expect_error([&] { read_idx_images(dir / "zero"); }, dir / "zero", "more than the");
  write_raw(dir / "flat", idx(0x08, {5, 0, 28}, {}));
  expect_error([&] { read_idx_images(dir / "flat"); }, dir / "flat", "images of size 0 x 28");
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif

// Exits 0 if reading `path` throws Error within 256 MiB more address space than the
// process has now: a reader that allocated what the header declares would fail otherwise.
[[noreturn]] void read_in_small_address_space(const std::string& path) {
  long pages = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f || std::fscanf(f, "%ld", &pages) != 1) _exit(3);
  std::fclose(f);
  const rlim_t limit = rlim_t(pages) * sysconf(_SC_PAGESIZE) + (rlim_t(256) << 20);
  const rlimit r = {limit, limit};
  if (setrlimit(RLIMIT_AS, &r) != 0) _exit(4);
  try {
    read_idx_images(path);
  } catch (const Error&) {
    _exit(0);
  } catch (...) {
    _exit(2);
  }
  _exit(1);
}

// Headers that declare just under the limit while holding a few bytes.
TEST(Idx, LargeDeclaredSizeIsNotAllocated) {
  if (kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: no RLIMIT_AS";
  TempDir dir;
  const std::vector<uint32_t> dims = {32767, 256, 256};  // 2147418112 bytes
  write_raw(dir / "raw", idx(0x08, dims, ramp(1000)));
  write_gz(dir / "gz", idx(0x08, dims, ramp(1000)));
  for (const std::string name : {"raw", "gz"})
    EXPECT_EXIT(read_in_small_address_space(dir / name), ::testing::ExitedWithCode(0), "") << name;
}

TEST(Idx, FromMemoryAsFromTheFile) {
  TempDir dir;
  const Bytes raw = idx(0x08, {4, 2, 3}, ramp(24));
  write_gz(dir / "img.gz", raw);
  const Bytes gz = read_raw(dir / "img.gz");
  for (const Bytes& b : {raw, gz}) {
    const IdxArray a = read_idx(b.data(), b.size(), 3, "mem");
    EXPECT_EQ(a.dims, (std::vector<uint32_t>{4, 2, 3}));
    EXPECT_EQ(a.data, ramp(24));
  }
  expect_error([&] { read_idx(gz.data(), gz.size() - 10, 3, "mem"); }, "mem", "truncated");
}

// gzip writes one member per call when appending; zlib's gzread read them all, so must we.
TEST(Idx, ConcatenatedGzipMembersAndTrailingBytes) {
  TempDir dir;
  const Bytes whole = idx(0x08, {6}, ramp(6));
  write_gz(dir / "a.gz", Bytes(whole.begin(), whole.begin() + 7));
  write_gz(dir / "b.gz", Bytes(whole.begin() + 7, whole.end()));
  Bytes two = read_raw(dir / "a.gz");
  const Bytes b = read_raw(dir / "b.gz");
  two.insert(two.end(), b.begin(), b.end());
  write_raw(dir / "two.gz", two);
  EXPECT_EQ(read_idx_labels(dir / "two.gz"), ramp(6));
  two.insert(two.end(), {'j', 'u', 'n', 'k'});
  write_raw(dir / "junk.gz", two);
  expect_error([&] { read_idx_labels(dir / "junk.gz"); }, dir / "junk.gz", "after the end of the gzip stream");
}

TEST(Idx, MissingFileAndDirectory) {
  TempDir dir;
  expect_error([&] { read_idx_labels(dir / "nope"); }, dir / "nope", "no such file");
  fs::create_directories(dir / "sub");
  expect_error([&] { read_idx_labels(dir / "sub"); }, dir / "sub", "is a directory");
}

TEST(Idx, RealFashionMnistHeaders) {
  if (!fs::is_directory(kFashion)) GTEST_SKIP() << kFashion << " absent (apt-get install dataset-fashion-mnist)";
  const IdxImages train = read_idx_images(kFashion + "/train-images-idx3-ubyte.gz");
  EXPECT_EQ(train.count, 60000);
  EXPECT_EQ(train.rows, 28);
  EXPECT_EQ(train.cols, 28);
  EXPECT_EQ(train.pixels.size(), 60000u * 28 * 28);
  const IdxImages test = read_idx_images(kFashion + "/t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(test.count, 10000);
  // Test image 0 is an ankle boot; a few pixels read independently with Python's gzip.
  EXPECT_EQ(test.pixels[20 * 28 + 17], 255);
  EXPECT_EQ(test.pixels[7 * 28 + 25], 37);
  EXPECT_EQ(test.pixels[19 * 28 + 0], 70);
  EXPECT_EQ(read_idx_labels(kFashion + "/train-labels-idx1-ubyte.gz").size(), 60000u);
  const Bytes labels = read_idx_labels(kFashion + "/t10k-labels-idx1-ubyte.gz");
  ASSERT_EQ(labels.size(), 10000u);
  EXPECT_EQ(Bytes(labels.begin(), labels.begin() + 10), (Bytes{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
}

}  // namespace
}  // namespace vitqk::io
