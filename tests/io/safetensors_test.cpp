#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "testing.h"

namespace vitqk::io {
namespace {

namespace fs = std::filesystem;

using testing::slurp;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char(n >> (8 * i));
  return s;
}

// A safetensors file from raw parts; `n` overrides the header size field.
std::string file_bytes(const std::string& header, const std::string& data, std::optional<uint64_t> n = {}) {
  return le64(n.value_or(header.size())) + header + data;
}

template <typename T>
std::string bytes_of(std::initializer_list<T> v) {
  std::string s(v.size() * sizeof(T), '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }
float from_bits(uint32_t b) { return std::bit_cast<float>(b); }

// The data buffer of a file this library wrote, as 16-bit words.
std::vector<uint16_t> data_words(const std::string& path) {
  const std::string f = slurp(path);
  uint64_t n;
  std::memcpy(&n, f.data(), 8);
  std::vector<uint16_t> w((f.size() - 8 - n) / 2);
  std::memcpy(w.data(), f.data() + 8 + n, w.size() * 2);
  return w;
}

class SafeTensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "vitqk_st_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string at(const std::string& name) const { return dir_ + "/" + name; }

  std::string craft(const std::string& bytes, const std::string& name = "t.safetensors") const {
    const std::string path = at(name);
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // Opening `bytes` must throw one line "<path>: ..." containing every word.
  void expect_rejected(const std::string& bytes, std::initializer_list<const char*> words) const {
    const std::string path = craft(bytes);
    try {
      SafeTensorsReader r(path);
      ADD_FAILURE() << "accepted a malformed file";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      for (const char* w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
    }
  }

  void expect_header_rejected(const std::string& header, const std::string& data,
                              std::initializer_list<const char*> words) const {
    expect_rejected(file_bytes(header, data), words);
  }

  size_t files_in_dir() const { return size_t(std::distance(fs::directory_iterator(dir_), fs::directory_iterator())); }

  std::string dir_;
};

const std::string kTwoFloats = bytes_of<float>({1.5f, -2.0f});

// ---- round trips and the written layout ----

TEST_F(SafeTensorsTest, RoundTripF32WithMetadata) {
  const std::vector<float> w = {1.0f, -2.5f, 3.25f, 1e-30f, -0.0f, 7e30f};
  const std::vector<float> b = {0.5f, -0.125f};
  const float s = 42.0f;
  const std::string path = at("m.safetensors");
  write_safetensors(path, {{"w", {2, 3}, w.data()}, {"empty", {0, 4}, nullptr}, {"b", {2}, b.data()}, {"s", {}, &s}},
                    {{"format", "pt"}, {"note", "a \"quoted\"\nline"}});

  const SafeTensorsReader r(path);
  EXPECT_EQ(r.path(), path);
  EXPECT_EQ(r.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "a \"quoted\"\nline"}}));
  ASSERT_EQ(r.entries().size(), 4u);
  // Stored in the order given: entries are sorted by offset, empty before its neighbour.
  EXPECT_EQ(r.entries()[0].name, "w");
  EXPECT_EQ(r.entries()[1].name, "empty");  // [24, 24) sorts before "b" at [24, 32)
  EXPECT_EQ(r.entries()[2].name, "b");
  EXPECT_EQ(r.entries()[2].begin, 24u);
  EXPECT_EQ(r.entries()[3].name, "s");
  const auto* e = r.find("empty");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->numel, 0);
  EXPECT_EQ(e->begin, e->end);
  EXPECT_EQ(e->shape, (std::vector<int64_t>{0, 4}));
  EXPECT_TRUE(r.read(*e).empty());
  EXPECT_EQ(r.find("nope"), nullptr);

  const auto* we = r.find("w");
  ASSERT_NE(we, nullptr);
  EXPECT_EQ(we->dtype, DType::F32);
  EXPECT_EQ(we->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(we->numel, 6);
  const std::vector<float> wr = r.read(*we);
  ASSERT_EQ(wr.size(), w.size());
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(bits(wr[i]), bits(w[i])) << i;
  EXPECT_EQ(r.read(*r.find("b")), b);
  const auto* se = r.find("s");
  ASSERT_NE(se, nullptr);
  EXPECT_TRUE(se->shape.empty());
  EXPECT_EQ(se->numel, 1);
  EXPECT_EQ(r.read(*se), std::vector<float>{42.0f});
}

TEST_F(SafeTensorsTest, WrittenBytesAreExactlyTheSpecifiedLayout) {
  const std::string path = at("x.safetensors");
  write_safetensors(path, {{"x", {2}, std::vector<float>{1.5f, -2.0f}.data()}}, {{"format", "pt"}});
  std::string header = R"({"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(slurp(path), file_bytes(header, kTwoFloats));
}

TEST_F(SafeTensorsTest, NoMetadataKeyWhenMetadataEmptyAndHeaderPaddedToEight) {
  const std::string path = at("x.safetensors");
  const std::vector<float> v(5, 1.0f);
  for (int len = 1; len <= 9; ++len) {  // names of every length mod 8
    write_safetensors(path, {{std::string(size_t(len), 'n'), {5}, v.data()}}, {});
    const std::string f = slurp(path);
    uint64_t n;
    std::memcpy(&n, f.data(), 8);
    EXPECT_EQ(n % 8, 0u);
    const std::string header = f.substr(8, n);
    EXPECT_EQ(header.find("__metadata__"), std::string::npos);
    const size_t close = header.rfind('}');
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << "padding must be spaces";
    EXPECT_EQ(f.size(), 8 + n + 20);
    const SafeTensorsReader r(path);
    EXPECT_EQ(r.read(r.entries()[0]), v);
  }
}

TEST_F(SafeTensorsTest, RoundTripF16AndBF16) {
  // Values exact in both formats survive unchanged; others round to the nearest.
  const std::vector<float> exact = {0.0f, -0.0f, 1.0f, -2.0f, 0.5f, 3.0f, -96.0f, 0.25f};
  for (DType d : {DType::F16, DType::BF16}) {
    const std::string path = at(std::string(dtype_name(d)) + ".safetensors");
    write_safetensors(path, {{"a", {2, 4}, exact.data()}}, {{"k", "v"}}, d);
    const SafeTensorsReader r(path);
    EXPECT_EQ(r.metadata().at("k"), "v");
    ASSERT_EQ(r.entries().size(), 1u);
    EXPECT_EQ(r.entries()[0].dtype, d);
    EXPECT_EQ(r.entries()[0].end, 16u);
    const auto got = r.read(r.entries()[0]);
    for (size_t i = 0; i < exact.size(); ++i) EXPECT_EQ(bits(got[i]), bits(exact[i])) << dtype_name(d) << " " << i;
  }
}

TEST_F(SafeTensorsTest, LargeTensorsSpanSeveralChunks) {
  // Beyond 1 MiB the reader and writer convert in pieces: every piece must land in place.
  const size_t n = 1'300'000;
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = float(int(i % 511) - 255);  // exact in f16 and bf16
  for (DType d : {DType::F32, DType::F16, DType::BF16}) {
    const std::string path = at("big.safetensors");
    write_safetensors(path, {{"head", {3}, v.data()}, {"big", {int64_t(n)}, v.data()}}, {}, d);
    const SafeTensorsReader r(path);
    EXPECT_EQ(r.read(*r.find("big")), v) << dtype_name(d);
    EXPECT_EQ(r.read(*r.find("head")), std::vector<float>(v.begin(), v.begin() + 3)) << dtype_name(d);
  }
  // F64 through the reader only (the writer does not produce it).
  std::vector<double> dv(n);
  for (size_t i = 0; i < n; ++i) dv[i] = double(i) * 0.25;
  std::string data(n * 8, '\0');
  std::memcpy(data.data(), dv.data(), data.size());
  const std::string path = craft(file_bytes(R"({"d":{"dtype":"F64","shape":[)" + std::to_string(n) +
                                                R"(],"data_offsets":[0,)" + std::to_string(n * 8) + "]}}",
                                            data));
  const SafeTensorsReader r(path);
  const auto got = r.read(r.entries()[0]);
  for (size_t i = 0; i < n; i += 997) EXPECT_EQ(got[i], float(dv[i])) << i;
  EXPECT_EQ(got[n - 1], float(dv[n - 1]));
}

// ---- conversions, against hand-computed bit patterns ----

TEST_F(SafeTensorsTest, DecodesF16SpecialValues) {
  const std::vector<std::pair<uint16_t, uint32_t>> cases = {
      {0x0000, 0x00000000},  // +0
      {0x8000, 0x80000000},  // -0
      {0x0001, 0x33800000},  // smallest subnormal 2^-24
      {0x8001, 0xb3800000},  // its negative
      {0x0200, 0x38000000},  // 2^-15, subnormal
      {0x03ff, 0x387fc000},  // largest subnormal 1023 * 2^-24
      {0x0400, 0x38800000},  // smallest normal 2^-14
      {0x3c00, 0x3f800000},  // 1
      {0xc000, 0xc0000000},  // -2
      {0x3555, 0x3eaaa000},  // 0.333251953125
      {0x7bff, 0x477fe000},  // 65504, largest finite
      {0x7c00, 0x7f800000},  // +inf
      {0xfc00, 0xff800000},  // -inf
      {0x7e00, 0x7fc00000},  // quiet nan
      {0x7c01, 0x7f802000},  // signalling nan keeps its payload (stays a nan)
      {0xfe00, 0xffc00000},  // negative nan
  };
  std::string data, shape = std::to_string(cases.size());
  for (auto [h, f] : cases) data += std::string(reinterpret_cast<const char*>(&h), 2);
  const std::string path = craft(file_bytes(
      R"({"h":{"dtype":"F16","shape":[)" + shape + R"(],"data_offsets":[0,)" + std::to_string(data.size()) + "]}}",
      data));
  const SafeTensorsReader r(path);
  const auto got = r.read(r.entries()[0]);
  for (size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(bits(got[i]), cases[i].second) << std::hex << "f16 0x" << cases[i].first;
}

TEST_F(SafeTensorsTest, DecodesBF16AndF64) {
  const std::vector<std::pair<uint16_t, uint32_t>> cases = {
      {0x0000, 0x00000000}, {0x8000, 0x80000000}, {0x0001, 0x00010000},  // subnormal
      {0x3f80, 0x3f800000}, {0xc049, 0xc0490000}, {0x7f7f, 0x7f7f0000},  // largest finite
      {0x7f80, 0x7f800000}, {0xff80, 0xff800000}, {0x7fc1, 0x7fc10000},  // nan payload
  };
  std::string data;
  for (auto [h, f] : cases) data += std::string(reinterpret_cast<const char*>(&h), 2);
  const std::string doubles = bytes_of<double>({1.0, -0.1, 1e300, 1e-50, 3.0 + 3 * 0x1p-24});
  const std::string header = R"({"b":{"dtype":"BF16","shape":[9],"data_offsets":[0,18]},)"
                             R"("d":{"dtype":"F64","shape":[5],"data_offsets":[18,58]}})";
  const SafeTensorsReader r(craft(file_bytes(header, data + doubles)));
  const auto got = r.read(*r.find("b"));
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(bits(got[i]), cases[i].second) << i;
  const auto d = r.read(*r.find("d"));
  EXPECT_EQ(d[0], 1.0f);
  EXPECT_EQ(d[1], -0.1f);
  EXPECT_EQ(d[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(bits(d[3]), 0u);
  EXPECT_EQ(d[4], 3.0f + 0x1p-22f);  // 3 + 0.75 ulp rounds up, not down
}

TEST_F(SafeTensorsTest, EncodesF16RoundToNearestEven) {
  const std::vector<std::pair<float, uint16_t>> cases = {
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {1.0f, 0x3c00},
      {-2.0f, 0xc000},
      {0.1f, 0x2e66},
      {1.0f + 0x1p-11f, 0x3c00},             // tie between 0x3c00 and 0x3c01: even
      {1.0f + 3 * 0x1p-11f, 0x3c02},         // tie between 0x3c01 and 0x3c02: even
      {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01},  // just above the tie
      {65504.0f, 0x7bff},
      {65519.0f, 0x7bff},  // below the half-way point to 65536
      {65520.0f, 0x7c00},  // half-way: rounds to even, which is inf
      {1e10f, 0x7c00},
      {-1e10f, 0xfc00},
      {0x1p-14f, 0x0400},             // smallest normal
      {0x1p-24f, 0x0001},             // smallest subnormal
      {0x1p-25f, 0x0000},             // tie between 0 and 1: even (0)
      {0x1p-25f + 0x1p-35f, 0x0001},  // just above it
      {3 * 0x1p-25f, 0x0002},         // tie between 1 and 2: even (2)
      {5 * 0x1p-25f, 0x0002},         // tie between 2 and 3: even (2)
      {2047 * 0x1p-25f, 0x0400},      // tie between largest subnormal and smallest normal
      {1e-30f, 0x0000},
      {-1e-30f, 0x8000},
      {from_bits(0x00000001), 0x0000},  // f32 subnormal
      {std::numeric_limits<float>::infinity(), 0x7c00},
      {-std::numeric_limits<float>::infinity(), 0xfc00},
      {from_bits(0x7fc00000), 0x7e00},  // quiet nan
      {from_bits(0x7f800001), 0x7e00},  // signalling nan: still a nan, not inf
  };
  std::vector<float> v;
  for (auto [f, h] : cases) v.push_back(f);
  const std::string path = at("h.safetensors");
  write_safetensors(path, {{"v", {int64_t(v.size())}, v.data()}}, {}, DType::F16);
  const auto w = data_words(path);
  ASSERT_EQ(w.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(w[i], cases[i].second) << std::hex << "f32 0x" << bits(cases[i].first) << " gave 0x" << w[i];
}

TEST_F(SafeTensorsTest, EncodesBF16RoundToNearestEven) {
  const std::vector<std::pair<uint32_t, uint16_t>> cases = {
      {0x00000000, 0x0000},  // +0
      {0x80000000, 0x8000},  // -0
      {0x3f800000, 0x3f80},  // 1
      {0x3f808000, 0x3f80},  // tie: even stays
      {0x3f818000, 0x3f82},  // tie: odd rounds up
      {0x3f808001, 0x3f81},  // just above the tie
      {0x3f807fff, 0x3f80},  // just below
      {0x7f7fffff, 0x7f80},  // largest float rounds to inf
      {0x7f800000, 0x7f80},  // +inf
      {0xff800000, 0xff80},  // -inf
      {0x7fc00000, 0x7fc0},  // quiet nan
      {0x7f800001, 0x7fc0},  // signalling nan whose payload would round away: still a nan
      {0x00000001, 0x0000},  // tiny subnormal
      {0x00018000, 0x0002},  // subnormal tie to even
  };
  std::vector<float> v;
  for (auto [f, h] : cases) v.push_back(from_bits(f));
  const std::string path = at("b.safetensors");
  write_safetensors(path, {{"v", {int64_t(v.size())}, v.data()}}, {}, DType::BF16);
  const auto w = data_words(path);
  ASSERT_EQ(w.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(w[i], cases[i].second) << std::hex << "f32 0x" << cases[i].first << " gave 0x" << w[i];
}

TEST_F(SafeTensorsTest, F16EncodeDecodeIsIdentityOnEveryHalf) {
  // Every finite f16 value decodes and re-encodes to itself: a check of both directions.
  std::vector<uint16_t> all;
  for (uint32_t h = 0; h < 0x10000; ++h)
    if ((h & 0x7c00) != 0x7c00) all.push_back(uint16_t(h));
  std::string data(all.size() * 2, '\0');
  std::memcpy(data.data(), all.data(), data.size());
  const std::string src = craft(file_bytes(R"({"h":{"dtype":"F16","shape":[)" + std::to_string(all.size()) +
                                               R"(],"data_offsets":[0,)" + std::to_string(data.size()) + "]}}",
                                           data));
  const SafeTensorsReader r(src);
  const auto f = r.read(r.entries()[0]);
  const std::string out = at("again.safetensors");
  write_safetensors(out, {{"h", {int64_t(f.size())}, f.data()}}, {}, DType::F16);
  EXPECT_EQ(data_words(out), all);
}

// ---- accepted oddities ----

TEST_F(SafeTensorsTest, AcceptsEmptyFileHeaderPaddingAnyOrderAndEmptyTensors) {
  EXPECT_TRUE(SafeTensorsReader(craft(file_bytes("{}", ""))).entries().empty());
  EXPECT_TRUE(SafeTensorsReader(craft(file_bytes("{}      ", ""))).entries().empty());

  // Header order differs from data order; an empty tensor sits at the end of the buffer.
  const std::string header =
      R"({"__metadata__":{},"z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})"
      "                ";
  const SafeTensorsReader r(craft(file_bytes(header, kTwoFloats)));
  ASSERT_EQ(r.entries().size(), 3u);
  EXPECT_EQ(r.entries()[0].name, "a");
  EXPECT_EQ(r.entries()[1].name, "b");
  EXPECT_EQ(r.entries()[2].name, "z");
  EXPECT_TRUE(r.metadata().empty());
  EXPECT_EQ(r.read(*r.find("b")), std::vector<float>{-2.0f});
}

TEST_F(SafeTensorsTest, FromMemoryAsFromTheFile) {
  const std::vector<float> v = {1.5f, -2.0f, 0.25f};
  write_safetensors(at("m.safetensors"), {{"a", {3}, v.data()}, {"b", {1, 2}, v.data()}}, {{"k", "v"}}, DType::BF16);
  const std::string bytes = slurp(at("m.safetensors"));
  const SafeTensorsReader file(at("m.safetensors")), mem("in memory", bytes);
  ASSERT_EQ(mem.entries().size(), 2u);
  EXPECT_EQ(mem.metadata(), file.metadata());
  for (const char* name : {"a", "b"}) {
    EXPECT_EQ(mem.find(name)->shape, file.find(name)->shape);
    EXPECT_EQ(mem.read(*mem.find(name)), file.read(*file.find(name)));
  }
  try {
    SafeTensorsReader("in memory", std::string_view(bytes).substr(0, bytes.size() - 1));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("in memory: file is truncated", 0), 0u) << e.what();
  }
}

// ---- rejected files: every message names the file and the problem ----

TEST_F(SafeTensorsTest, RejectsTruncatedFiles) {
  expect_rejected("", {"truncated"});
  expect_rejected(std::string("\x10\0\0\0\0\0\0", 7), {"truncated"});
  // Header size says 40, only 10 header bytes present.
  expect_rejected(file_bytes("{\"a\":1}   ", "", 40), {"past the end"});
  // Data cut short.
  const std::string h = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_header_rejected(h, kTwoFloats.substr(0, 5), {"truncated", "\"x\""});
  expect_header_rejected(h, "", {"truncated"});
}

TEST_F(SafeTensorsTest, RejectsOversizedHeader) {
  expect_rejected(file_bytes("{}", "", 100'000'001), {"too large"});
  expect_rejected(file_bytes("{}", "", ~uint64_t(0)), {"too large"});
  expect_rejected(file_bytes("{}", "", 100'000'000), {"past the end"});  // at the limit, but not there
}

TEST_F(SafeTensorsTest, RejectsHeaderThatIsNotJson) {
  expect_header_rejected("{\"a\": ", "", {"not valid JSON"});
  expect_header_rejected("{not json}", "", {"not valid JSON"});
  expect_header_rejected(std::string("{}\0\0\0\0\0\0", 8), "", {"not valid JSON"});  // NUL padding
  expect_header_rejected(std::string("{}\0,\"x\":5}", 9), "", {"not valid JSON"});   // hidden after a NUL
  expect_header_rejected("{\"\xff\xfe\":1}", "", {"not valid JSON"});                // invalid UTF-8
  expect_header_rejected("{\"\xc0\xaf\":1}", "", {"not valid JSON"});                // overlong UTF-8
  expect_header_rejected("{\"\xed\xa0\x80\":1}", "", {"not valid JSON"});            // UTF-8 surrogate
  expect_header_rejected("", "", {"JSON object"});
}

TEST_F(SafeTensorsTest, RejectsJsonThatIsNotAnObject) {
  expect_header_rejected("[1,2]", "", {"not a JSON object"});
  expect_header_rejected("\"str\"", "", {"not a JSON object"});
  expect_header_rejected("42", "", {"not a JSON object"});
  expect_header_rejected(" {}", "", {"not a JSON object"});             // reference demands '{' first
  expect_header_rejected("\xef\xbb\xbf{}", "", {"not a JSON object"});  // byte-order mark
}

TEST_F(SafeTensorsTest, RejectsDeepNestingWithoutCrashing) {
  expect_header_rejected(R"({"a":{"shape":[[1]]}})", "", {"nests"});
  expect_header_rejected("{\"a\":" + std::string(200000, '['), "", {"nests"});
}

TEST_F(SafeTensorsTest, RejectsMalformedTensorEntries) {
  expect_header_rejected(R"({"x":5})", "", {"\"x\"", "not a JSON object"});
  expect_header_rejected(R"({"x":{"dtype":"F32","shape":[0]}})", "", {"\"x\"", "data_offsets"});
  expect_header_rejected(R"({"x":{"shape":[0],"data_offsets":[0,0]}})", "", {"\"x\"", "dtype"});
  expect_header_rejected(R"({"x":{"dtype":"F32","data_offsets":[0,0]}})", "", {"\"x\"", "shape"});
  expect_header_rejected(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"extra":1}})", "",
                         {"\"x\"", "unexpected", "extra"});
  expect_header_rejected(R"({"x":{"dtype":32,"shape":[0],"data_offsets":[0,0]}})", "", {"\"x\"", "dtype"});
  expect_header_rejected(R"({"x":{"dtype":"F32","shape":4,"data_offsets":[0,16]}})", "", {"\"x\"", "shape"});
  expect_header_rejected(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[0]}})", "", {"\"x\"", "data_offsets"});
  expect_header_rejected(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0,0]}})", "", {"data_offsets"});
  expect_header_rejected(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":{"a":0}}})", "", {"data_offsets"});
  expect_header_rejected(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", "", {"data_offsets"});
  expect_header_rejected(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}})", kTwoFloats.substr(0, 4),
                         {"data_offsets"});
}

TEST_F(SafeTensorsTest, RejectsUnknownAndUnsupportedDtypes) {
  auto entry = [](const std::string& d) {
    return R"({"w":{"dtype":")" + d + R"(","shape":[2],"data_offsets":[0,8]}})";
  };
  expect_header_rejected(entry("F33"), kTwoFloats, {"unknown dtype", "F33", "\"w\""});
  expect_header_rejected(entry("f32"), kTwoFloats, {"unknown dtype"});  // names are case-sensitive
  for (const char* d : {"I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "BOOL", "F8_E4M3", "F8_E5M2"})
    expect_header_rejected(entry(d), kTwoFloats, {"unsupported dtype", d, "for tensor \"w\""});
}

TEST_F(SafeTensorsTest, RejectsBadShapes) {
  auto entry = [](const std::string& shape, const std::string& offsets = "[0,8]") {
    return R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}";
  };
  expect_header_rejected(entry("[-2]"), kTwoFloats, {"\"w\"", "non-negative integer"});
  expect_header_rejected(entry("[2.0]"), kTwoFloats, {"\"w\"", "non-negative integer"});
  expect_header_rejected(entry("[1.5]"), kTwoFloats, {"non-negative integer"});
  expect_header_rejected(entry("[\"2\"]"), kTwoFloats, {"non-negative integer"});
  expect_header_rejected(entry("[null]"), kTwoFloats, {"non-negative integer"});
  expect_header_rejected(entry("[18446744073709551616]"), kTwoFloats, {"non-negative integer"});  // > u64
  expect_header_rejected(entry("[4294967296,4294967296]"), kTwoFloats, {"\"w\"", "overflow"});
  expect_header_rejected(entry("[9223372036854775808]"), kTwoFloats, {"overflow"});  // > i64
  expect_header_rejected(entry("[4611686018427387904]"), kTwoFloats, {"overflow"});  // numel fits, bytes do not
  expect_header_rejected(entry("[3]"), kTwoFloats, {"\"w\"", "8 bytes", "needs 12"});
  expect_header_rejected(entry("[1]"), kTwoFloats, {"needs 4"});
  expect_header_rejected(entry("[]"), kTwoFloats, {"needs 4"});  // a scalar is one element
}

TEST_F(SafeTensorsTest, HostileShapeIsRefusedWithoutAllocating) {
  // Claims a terabyte; the file holds 8 bytes. Must fail on the size check, not on memory.
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[250000000000],"data_offsets":[0,1000000000000]}})", kTwoFloats,
                         {"truncated", "\"w\""});
}

TEST_F(SafeTensorsTest, RejectsBadOffsets) {
  const std::string four = kTwoFloats.substr(0, 4);
  auto two = [](const std::string& a, const std::string& b) {
    return R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)" + a +
           R"(},"b":{"dtype":"F32","shape":[2],"data_offsets":)" + b + "}}";
  };
  const std::string data16 = kTwoFloats + kTwoFloats, data20 = data16 + four;
  // end before begin
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", kTwoFloats,
                         {"\"a\"", "end before"});
  // out of range: past the end of the data, or far beyond it
  expect_header_rejected(two("[0,8]", "[8,16]"), kTwoFloats, {"\"b\"", "truncated"});
  expect_header_rejected(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551600,18446744073709551608]}})", kTwoFloats,
      {"gap"});
  // overlap
  expect_header_rejected(two("[0,8]", "[4,12]"), data16.substr(0, 12), {"overlap", "\"a\"", "\"b\""});
  expect_header_rejected(two("[0,8]", "[0,8]"), kTwoFloats, {"overlap"});
  // gaps: at the start, between tensors
  expect_header_rejected(two("[4,12]", "[12,20]"), data20, {"gap", "[0, 4)"});
  expect_header_rejected(two("[0,8]", "[12,20]"), data20, {"gap", "[8, 12)", "\"b\""});
  // buffer longer than the tensors
  expect_header_rejected(two("[0,8]", "[8,16]"), data20, {"trailing", "20"});
  expect_header_rejected("{}", four, {"trailing"});
  // the same, but otherwise valid, is accepted
  EXPECT_NO_THROW(SafeTensorsReader(craft(file_bytes(two("[8,16]", "[0,8]"), data16))));
}

TEST_F(SafeTensorsTest, RejectsDuplicateNames) {
  const std::string e = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  const std::string f = R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})";
  expect_header_rejected("{\"a\":" + e + ",\"a\":" + f + "}", kTwoFloats, {"duplicate", "\"a\""});
  expect_header_rejected(R"({"a":{"dtype":"F16","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kTwoFloats,
                         {"duplicate", "dtype"});
  expect_header_rejected(R"({"__metadata__":{"k":"1","k":"2"}})", "", {"duplicate", "\"k\""});
  expect_header_rejected(R"({"__metadata__":{},"__metadata__":{}})", "", {"duplicate"});
}

TEST_F(SafeTensorsTest, RejectsMetadataThatIsNotStringToString) {
  expect_header_rejected(R"({"__metadata__":[1]})", "", {"__metadata__", "object"});
  expect_header_rejected(R"({"__metadata__":"x"})", "", {"__metadata__", "object"});
  expect_header_rejected(R"({"__metadata__":{"epoch":1}})", "", {"__metadata__", "strings", "\"epoch\""});
  expect_header_rejected(R"({"__metadata__":{"k":null}})", "", {"__metadata__", "strings"});
  expect_header_rejected(R"({"__metadata__":{"k":{}}})", "", {"__metadata__", "strings"});
}

TEST_F(SafeTensorsTest, HostileNamesKeepTheMessageOnOneLine) {
  expect_header_rejected("{\"bad\\nname\":{\"dtype\":\"X\",\"shape\":[1],\"data_offsets\":[0,4]}}", "",
                         {"unknown dtype"});
}

TEST_F(SafeTensorsTest, RejectsMissingFileAndDirectory) {
  const std::string missing = at("missing.safetensors");
  try {
    SafeTensorsReader r(missing);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(missing + ": cannot open", 0), 0u) << e.what();
  }
  EXPECT_THROW(SafeTensorsReader r(dir_), Error);
}

// ---- files that change under the reader ----

TEST_F(SafeTensorsTest, FileTruncatedAfterOpenThrowsOnRead) {
  const std::vector<float> v(1000, 3.0f);
  for (DType d : {DType::F32, DType::F16}) {
    const std::string path = at("t.safetensors");
    write_safetensors(path, {{"v", {1000}, v.data()}}, {}, d);
    const SafeTensorsReader r(path);
    fs::resize_file(path, fs::file_size(path) - 100);
    std::vector<float> dst(1000);
    try {
      r.read(r.entries()[0], dst.data());
      ADD_FAILURE() << "read past the end of a truncated file";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
      EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
    }
  }
}

TEST_F(SafeTensorsTest, ReaderKeepsTheFileItValidatedWhenReplaced) {
  const std::string path = at("m.safetensors");
  const std::vector<float> old_v = {1, 2, 3, 4}, new_v = {9};
  write_safetensors(path, {{"w", {4}, old_v.data()}}, {});
  const SafeTensorsReader r(path);
  write_safetensors(path, {{"w", {1}, new_v.data()}}, {});  // atomic rename over the old file
  EXPECT_EQ(r.read(*r.find("w")), old_v);
  const SafeTensorsReader fresh(path);
  EXPECT_EQ(fresh.read(*fresh.find("w")), new_v);
}

// ---- writer refusals leave nothing behind ----

TEST_F(SafeTensorsTest, WriterRefusesBadInputAndLeavesNoFiles) {
  const std::string path = at("w.safetensors");
  const std::vector<float> v(4, 1.0f);
  auto expect_refused = [&](const std::vector<TensorView>& t, DType d, const char* word) {
    try {
      write_safetensors(path, t, {}, d);
      ADD_FAILURE() << "accepted: " << word;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
      EXPECT_NE(msg.find(word), std::string::npos) << msg;
    }
    EXPECT_EQ(files_in_dir(), 0u) << word;
  };
  expect_refused({{"a", {4}, v.data()}}, DType::F64, "unsupported");
  expect_refused({{"a", {4}, v.data()}, {"a", {4}, v.data()}}, DType::F32, "duplicate");
  expect_refused({{"a", {-1, 4}, v.data()}}, DType::F32, "shape");
  expect_refused({{"a", {int64_t(1) << 62, 8}, v.data()}}, DType::F32, "shape");
  expect_refused({{"a", {int64_t(1) << 62}, v.data()}}, DType::F32, "too large");
  expect_refused({{"a", {4}, nullptr}}, DType::F32, "no data");
  expect_refused({{"__metadata__", {4}, v.data()}}, DType::F32, "__metadata__");
}

TEST_F(SafeTensorsTest, WriteToMissingDirectoryLeavesNothing) {
  const std::string path = at("nodir/w.safetensors");
  const std::vector<float> v(4, 1.0f);
  try {
    write_safetensors(path, {{"a", {4}, v.data()}}, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
  }
  EXPECT_EQ(files_in_dir(), 0u);
}

TEST_F(SafeTensorsTest, OverwriteReplacesWholeFile) {
  const std::string path = at("w.safetensors");
  const std::vector<float> big(1000, 1.0f), small = {2.0f};
  write_safetensors(path, {{"a", {1000}, big.data()}}, {{"k", "v"}});
  write_safetensors(path, {{"b", {1}, small.data()}}, {});
  const SafeTensorsReader r(path);  // would fail on trailing bytes if the old file were only overwritten
  ASSERT_EQ(r.entries().size(), 1u);
  EXPECT_EQ(r.entries()[0].name, "b");
  EXPECT_TRUE(r.metadata().empty());
  EXPECT_EQ(files_in_dir(), 1u);
}

}  // namespace
}  // namespace vitqk::io
