// Images against PIL 9.4 + torchvision 0.14: the references in tests/fixtures/images come from
// tools/gen_image_fixtures.py. Decoding and preprocessing must match bit for bit, JPEG too:
// vitqk decodes it with the libjpeg-turbo PIL uses, at PIL's settings.
#include "io/image.h"
#include "io/jpeg.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"

namespace vitqk::io {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) { return std::string(VITQK_FIXTURES) + "/images/" + name; }

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f) << path;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// Every line of a fixture manifest, split on spaces.
std::vector<std::istringstream> manifest(const std::string& name) {
  std::ifstream f(fixture(name));
  EXPECT_TRUE(f) << fixture(name);
  std::vector<std::istringstream> lines;
  for (std::string line; std::getline(f, line);) lines.emplace_back(line);
  EXPECT_FALSE(lines.empty()) << name;
  return lines;
}

struct ImageRef {
  std::string name;
  int width, height;
};

std::vector<ImageRef> images() {
  std::vector<ImageRef> r;
  for (auto& in : manifest("images.txt")) {
    ImageRef i;
    in >> i.name >> i.width >> i.height;
    r.push_back(i);
  }
  return r;
}

// PIL's decode: Image.open(name).convert('RGB' or 'L').
Image pil_decoded(const ImageRef& ref, int channels) {
  const std::vector<char> raw = read_bytes(fixture(ref.name + (channels == 3 ? ".rgb" : ".l")));
  Image img{ref.width, ref.height, channels, std::vector<uint8_t>(raw.begin(), raw.end())};
  EXPECT_EQ(img.pixels.size(), size_t(ref.width) * ref.height * channels) << ref.name;
  return img;
}

Image pil_decoded(const std::string& name, int channels) {
  for (const ImageRef& ref : images())
    if (ref.name == name) return pil_decoded(ref, channels);
  ADD_FAILURE() << name << " not in images.txt";
  return {};
}

struct Case {
  std::string name, image;
  int channels = 0;
  Preprocess pre;
  int c = 0, h = 0, w = 0;
  std::vector<float> expected;  // torchvision's output, CHW
};

std::vector<Case> cases() {
  std::vector<Case> r;
  for (auto& in : manifest("cases.txt")) {
    Case k;
    std::string interp;
    in >> k.name >> k.image >> k.channels >> k.pre.resize >> k.pre.resize_exact >> k.pre.crop >> interp;
    k.pre.interp = parse_interp(interp);
    for (float& m : k.pre.mean) in >> m;
    for (float& s : k.pre.std) in >> s;
    in >> k.c >> k.h >> k.w;
    EXPECT_TRUE(in) << k.name;
    const std::vector<char> raw = read_bytes(fixture(k.name + ".f32"));
    k.expected.resize(raw.size() / sizeof(float));
    std::memcpy(k.expected.data(), raw.data(), raw.size());
    EXPECT_EQ(k.expected.size(), size_t(k.c) * k.h * k.w) << k.name;
    r.push_back(std::move(k));
  }
  return r;
}

std::vector<float> run(const Image& img, const Preprocess& pre) {
  const auto [w, h] = preprocess_size(img, pre);
  std::vector<float> out(size_t(img.channels) * w * h);
  preprocess(img, pre, out.data());
  return out;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

TEST(ImageDecode, MatchesPil) {
  for (const ImageRef& ref : images())
    for (int channels : {3, 1}) {
      SCOPED_TRACE(ref.name + " as " + std::to_string(channels) + " channel(s)");
      const Image ours = load_image(fixture(ref.name), channels), pil = pil_decoded(ref, channels);
      ASSERT_EQ(ours.width, pil.width);
      ASSERT_EQ(ours.height, pil.height);
      ASSERT_EQ(ours.channels, channels);
      ASSERT_EQ(ours.pixels.size(), pil.pixels.size());
      int worst = 0;
      for (size_t i = 0; i < ours.pixels.size(); ++i) worst = std::max(worst, std::abs(ours.pixels[i] - pil.pixels[i]));
      EXPECT_EQ(worst, 0);
    }
}

// Resize, crop and normalise on PIL's own decode: nothing but our arithmetic differs.
TEST(ImagePreprocess, MatchesTorchvisionBitForBit) {
  for (const Case& k : cases()) {
    SCOPED_TRACE(k.name);
    const Image img = pil_decoded(k.image, k.channels);
    EXPECT_EQ(preprocess_size(img, k.pre), (std::array{k.w, k.h}));
    EXPECT_EQ(preprocess_side(img, k.pre), k.w == k.h ? k.w : -1);
    const std::vector<float> out = run(img, k.pre);
    ASSERT_EQ(out.size(), k.expected.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < out.size(); ++i) mismatches += std::memcmp(&out[i], &k.expected[i], sizeof(float)) != 0;
    EXPECT_EQ(mismatches, 0u) << "max |diff| " << max_abs_diff(out, k.expected);
  }
}

// From the file, decoding included.
TEST(ImagePreprocess, WholePipelineFromFile) {
  for (const Case& k : cases()) {
    SCOPED_TRACE(k.name);
    const std::vector<float> out = run(load_image(fixture(k.image), k.channels), k.pre);
    ASSERT_EQ(out.size(), k.expected.size());
    EXPECT_EQ(max_abs_diff(out, k.expected), 0.0f);
  }
}

TEST(ImageResize, SweepMatchesPil) {
  int n = 0;
  for (auto& in : manifest("resize_sweep.txt")) {
    std::string image, interp;
    int channels, w, h;
    unsigned long crc;
    in >> image >> channels >> w >> h >> interp >> crc;
    SCOPED_TRACE(image + " -> " + std::to_string(w) + "x" + std::to_string(h) + " " + interp);
    const Image out = resize(pil_decoded(image, channels), w, h, parse_interp(interp));
    ASSERT_EQ(out.pixels.size(), size_t(w) * h * channels);
    EXPECT_EQ(crc32(0, out.pixels.data(), uInt(out.pixels.size())), crc);
    ++n;
  }
  EXPECT_GT(n, 100);
}

TEST(ImagePreprocess, DefaultsAreTorchvisionsImageNetConstants) {
  for (const Case& k : cases())
    if (k.name == "torchvision_street") {
      EXPECT_EQ(Preprocess{}.mean, k.pre.mean);
      EXPECT_EQ(Preprocess{}.std, k.pre.std);
      return;
    }
  FAIL() << "no torchvision_street case";
}

TEST(ImagePreprocess, OutputSizes) {
  const Image img{300, 200, 3, std::vector<uint8_t>(300 * 200 * 3)};
  Preprocess p;  // Resize(256) + CenterCrop(224)
  EXPECT_EQ(preprocess_size(img, p), (std::array{224, 224}));
  p.crop = 0;  // 300 * 256 / 200 = 384
  EXPECT_EQ(preprocess_size(img, p), (std::array{384, 256}));
  EXPECT_EQ(preprocess_side(img, p), -1);
  p.resize = 7;  // int(7 * 300 / 200) = int(10.5): truncated
  EXPECT_EQ(preprocess_size(img, p), (std::array{10, 7}));
  p.resize_exact = true;
  EXPECT_EQ(preprocess_side(img, p), 7);
  p.resize = 0;
  EXPECT_EQ(preprocess_size(img, p), (std::array{300, 200}));
  // A 16384x1 image resized by its short side to 256 would be 4194304x256: refused.
  const Image thin{16384, 1, 1, std::vector<uint8_t>(16384)};
  EXPECT_THROW(resize(thin, 16384 * 256, 256, Interp::Bilinear), Error);
}

// The crop is computed from the part of the resized image it keeps; it must be the very
// same as resizing everything and cropping.
TEST(ImagePreprocess, CropOfAResizeIsTheCropOfTheWholeResize) {
  Rng rng(5);
  for (int w : {1, 3, 40, 97})
    for (int h : {1, 2, 31, 64})
      for (Interp interp : {Interp::Nearest, Interp::Bilinear, Interp::Bicubic})
        for (auto [resize, crop] : {std::pair{24, 16}, {24, 24}, {20, 33}, {0, 10}, {7, 5}}) {
          SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h) + " " + interp_name(interp) + " resize " +
                       std::to_string(resize) + " crop " + std::to_string(crop));
          Image img{w, h, 3, std::vector<uint8_t>(size_t(w) * h * 3)};
          for (uint8_t& v : img.pixels) v = uint8_t(rng.below(256));
          Preprocess pre;
          pre.resize = resize, pre.crop = crop, pre.interp = interp;
          const auto [rw, rh] = resize > 0 ? std::array{w <= h ? resize : int(double(resize) * w / h),
                                                        w <= h ? int(double(resize) * h / w) : resize}
                                           : std::array{w, h};
          std::vector<float> whole(size_t(3) * crop * crop);
          to_tensor(center_crop(resize > 0 ? io::resize(img, rw, rh, interp) : img, crop, crop), pre.mean, pre.std,
                    whole.data());
          EXPECT_EQ(run(img, pre), whole);
        }
}

// A thin image resized by its short side took half a gigabyte for the pixels the crop then
// threw away (1x2909 to 248x721432: 537 MB), and 1x16384 was refused outright.
TEST(ImagePreprocess, ThinImagesAreCroppedWithoutResizingEverything) {
  const Image thin{1, 16384, 3, std::vector<uint8_t>(16384 * 3, 200)};
  Preprocess pre;  // Resize(256) + CenterCrop(224): 256x4194304, then 224x224
  const std::vector<float> out = run(thin, pre);
  ASSERT_EQ(out.size(), 3u * 224 * 224);
  for (size_t i = 0; i < out.size(); ++i) {
    const int c = int(i / (224 * 224));
    ASSERT_EQ(out[i], (200 / 255.0f - pre.mean[c]) / pre.std[c]) << i;
  }
}

TEST(ImageInterp, NamesRoundTrip) {
  for (Interp i : {Interp::Nearest, Interp::Bilinear, Interp::Bicubic}) EXPECT_EQ(parse_interp(interp_name(i)), i);
  EXPECT_THROW(parse_interp("lanczos"), Error);
}

// Bad input: each refused with a one-line vitqk::Error naming the file.
class ImageErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("vitqk_image_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string file(const std::string& name, const std::vector<char>& bytes) {
    const std::string p = (dir_ / name).string();
    write_bytes(p, bytes);
    return p;
  }

  static void expect_refused(const std::string& path, const std::string& problem, int channels = 3) {
    try {
      load_image(path, channels);
      ADD_FAILURE() << path << " was accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
      EXPECT_NE(msg.find(problem), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }

  fs::path dir_;
};

TEST_F(ImageErrors, MissingEmptyDirectoryText) {
  expect_refused((dir_ / "nope.png").string(), "cannot open");
  expect_refused(file("empty.png", {}), "empty file");
  expect_refused(dir_.string(), "cannot read");
  const std::string text = "just some text, not an image\n";
  expect_refused(file("x.txt", {text.begin(), text.end()}), "not an image (unknown image type)");
}

TEST_F(ImageErrors, Truncated) {
  for (const std::string name : {"street_300x200.png", "field_256x192.jpg", "tiny_21x30.gif", "bars_40x25.bmp"}) {
    const std::vector<char> whole = read_bytes(fixture(name));
    for (size_t keep : {whole.size() / 2, whole.size() - 8, size_t(40), size_t(12)}) {
      SCOPED_TRACE(name + " cut to " + std::to_string(keep) + " bytes");
      expect_refused(file("cut_" + name, {whole.begin(), whole.begin() + long(keep)}), "");
    }
  }
}

// Patches big-endian or little-endian integers into a copy of a real file's header.
std::vector<char> patched(std::vector<char> b, size_t at, uint32_t v, int bytes, bool big_endian) {
  for (int i = 0; i < bytes; ++i) b[at + i] = char(v >> 8 * (big_endian ? bytes - 1 - i : i));
  return b;
}

TEST(Image, TopDownBmpDecodesAsTheBottomUpOne) {
  // A negative height is BMP's top-down row order: the same picture, rows stored first to last.
  const std::vector<char> up = read_bytes(fixture("bars_40x25.bmp"));
  auto le32 = [&](size_t at) { return uint32_t(uint8_t(up[at])) | uint32_t(uint8_t(up[at + 1])) << 8 |
                                      uint32_t(uint8_t(up[at + 2])) << 16 | uint32_t(uint8_t(up[at + 3])) << 24; };
  const size_t data = le32(10), w = le32(18), h = le32(22), stride = (w * 3 + 3) / 4 * 4;
  ASSERT_EQ(le32(28) & 0xFFFF, 24u) << "the fixture is 24-bit";
  std::vector<char> down(up);
  for (size_t r = 0; r < h; ++r)
    std::copy_n(up.begin() + long(data + (h - 1 - r) * stride), stride, down.begin() + long(data + r * stride));
  const int32_t neg = -int32_t(h);
  std::memcpy(down.data() + 22, &neg, 4);
  const auto decode = [](const std::vector<char>& b) {
    return decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), 3, "x.bmp");
  };
  const Image a = decode(up), b = decode(down);
  EXPECT_EQ(b.height, int(h));
  EXPECT_EQ(a.pixels, b.pixels);
}

TEST_F(ImageErrors, AbsurdDimensions) {
  const std::vector<char> png = read_bytes(fixture("street_300x200.png"));
  const std::vector<char> bmp = read_bytes(fixture("bars_40x25.bmp"));
  // PNG IHDR: width at 16, height at 20. BMP: width at 18, height at 22.
  expect_refused(file("wide.png", patched(png, 16, 100000, 4, true)), "out of range");
  expect_refused(file("huge.png", patched(patched(png, 16, 16384, 4, true), 20, 16385, 4, true)), "out of range");
  expect_refused(file("many.png", patched(patched(png, 16, 16384, 4, true), 20, 16384, 4, true)), "out of range");
  expect_refused(file("vast.png", patched(patched(png, 16, 100000, 4, true), 20, 100000, 4, true)), "out of range");
  expect_refused(file("huge.bmp", patched(patched(bmp, 18, 60000, 4, false), 22, 60000, 4, false)), "out of range");
  const std::vector<char> gif = read_bytes(fixture("tiny_21x30.gif"));  // logical screen at 6
  expect_refused(file("huge.gif", patched(patched(gif, 6, 65535, 2, false), 8, 65535, 2, false)), "out of range");
  // JPEG: the SOF0 marker (FF C0) holds height and width after length and precision.
  std::vector<char> jpg = read_bytes(fixture("field_256x192.jpg"));
  const auto sof = std::search(jpg.begin(), jpg.end(), "\xFF\xC0", "\xFF\xC0" + 2) - jpg.begin();
  ASSERT_LT(size_t(sof), jpg.size());
  expect_refused(file("huge.jpg", patched(patched(jpg, sof + 5, 65000, 2, true), sof + 7, 65000, 2, true)),
                 "out of range");
}

// A file too small for its declared size is refused before the decoder allocates for it: they
// allocate the whole image (and stb_image a PNG's declared data chunk) before they read the data.
TEST_F(ImageErrors, DeclaredSizeTheFileCannotHold) {
  const std::vector<char> png = read_bytes(fixture("street_300x200.png"));
  // 16384 x 10000 RGB needs 491 MB of raw rows, at least 476 KB of deflate; the file has 54 KB.
  expect_refused(file("big.png", patched(patched(png, 16, 16384, 4, true), 20, 10000, 4, true)), "cannot fit");
  const std::string pgm = "P5\n16000 10000\n255\n";
  expect_refused(file("big.pgm", {pgm.begin(), pgm.end()}), "cannot fit");
  std::vector<char> jpg = read_bytes(fixture("field_256x192.jpg"));
  const auto sof = std::search(jpg.begin(), jpg.end(), "\xFF\xC0", "\xFF\xC0" + 2) - jpg.begin();
  expect_refused(file("big.jpg", patched(patched(jpg, sof + 5, 16000, 2, true), sof + 7, 10000, 2, true)),
                 "cannot fit");
  // Found by fuzzing: a 120-byte PNG whose data chunk claims 2 GB.
  std::vector<char> idat = png;
  const auto at = std::search(idat.begin(), idat.end(), "IDAT", "IDAT" + 4) - idat.begin() - 4;
  expect_refused(file("idat.png", patched(idat, at, 0x7e813d7c, 4, true)), "chunk runs past the end");
}

// Found by fuzzing: stb_image 2.27 overflows an int on a PNM header number of 10+ digits.
TEST_F(ImageErrors, PnmHeaderNumbersThatOverflow) {
  const std::string ppm = "P6 # comment\n 36666666666666666666 2\n255\n";
  expect_refused(file("long.ppm", {ppm.begin(), ppm.end()}), "more than 9 digits");
  const std::string ok = "P5\n#c\n000000002 1 255\n\x10\x20";
  EXPECT_EQ(load_image(file("ok.pgm", {ok.begin(), ok.end()}), 1).pixels, (std::vector<uint8_t>{0x10, 0x20}));
}

// Found by fuzzing: an empty data chunk made stb_image copy zero bytes to a null pointer
// (UBSan's report); it is valid PNG and decodes as without it.
TEST_F(ImageErrors, EmptyPngDataChunkIsHarmless) {
  const std::vector<char> png = read_bytes(fixture("moon_64x48_gray.png"));
  const auto at = std::search(png.begin(), png.end(), "IDAT", "IDAT" + 4) - png.begin() - 4;
  std::vector<char> with_empty(png.begin(), png.begin() + at);
  const char empty[12] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', char(0x35), char(0xAF), char(0x06), char(0x1E)};  // CRC of "IDAT"
  with_empty.insert(with_empty.end(), empty, empty + 12);
  with_empty.insert(with_empty.end(), png.begin() + at, png.end());
  EXPECT_EQ(load_image(file("empty_idat.png", with_empty), 1).pixels, load_image(fixture("moon_64x48_gray.png"), 1).pixels);
}

// Corrupt Huffman tables, each once a memory error in stb_image 2.27 (found by fuzzing): libjpeg
// refuses them all.
TEST_F(ImageErrors, CorruptJpegTables) {
  std::vector<char> jpg = read_bytes(fixture("field_256x192.jpg"));
  const auto dht = std::search(jpg.begin(), jpg.end(), "\xFF\xC4", "\xFF\xC4" + 2) - jpg.begin();
  ASSERT_LT(size_t(dht), jpg.size());
  std::fill_n(jpg.begin() + dht + 5, 16, char(0xFF));  // 16 code lengths of 255 symbols each
  expect_refused(file("dht.jpg", jpg), "corrupt JPEG (Bogus Huffman table definition)");
  std::vector<char> undefined = read_bytes(fixture("field_256x192.jpg"));
  const auto sos = std::search(undefined.begin(), undefined.end(), "\xFF\xDA", "\xFF\xDA" + 2) - undefined.begin();
  ASSERT_EQ(undefined[sos + 4], 3);  // three components; the third's tables follow its id
  undefined[sos + 10] = 0x13;        // DC table 1 (defined), AC table 3 (not)
  expect_refused(file("undefined_table.jpg", undefined), "corrupt JPEG (Huffman table 0x03 was not defined)");
  // Fill bytes before the start marker: not a JPEG to libjpeg, nor to PIL (it wants FF D8 FF).
  std::vector<char> fill = read_bytes(fixture("field_256x192.jpg"));
  fill.insert(fill.begin(), char(0xFF));
  expect_refused(file("fill.jpg", fill), "not an image");
}

// Found by fuzzing: a baseline scan whose codes run past the data made stb_image 2.27 shift
// by more than 31 bits (UBSan's report). libjpeg decodes it, as PIL does, to the same pixels
// (the CRC-32 of PIL's Image.open(f).convert("RGB").tobytes()).
TEST_F(ImageErrors, JpegCodesPastTheData) {
  const std::vector<char> seed = read_bytes(std::string(VITQK_FUZZ_CORPUS) + "/image/crash-jpeg-shift-past-data");
  ASSERT_GT(seed.size(), 3u);  // the fuzzer's 3 bytes of preprocessing, then the file
  const Image img = load_image(file("shift.jpg", {seed.begin() + 3, seed.end()}), 3);
  ASSERT_EQ(img.width, 16);
  ASSERT_EQ(img.height, 1548);
  EXPECT_EQ(crc32(0, img.pixels.data(), uInt(img.pixels.size())), 1905648250u);
}

// Each progressive scan rereads the whole image: thousands of them in a small file would take
// minutes. Repeating the last scan of a real file goes past the limit.
TEST_F(ImageErrors, TooManyJpegScans) {
  const std::vector<char> jpg = read_bytes(fixture("progressive_field.jpg"));
  const auto last = std::find_end(jpg.begin(), jpg.end(), "\xFF\xDA", "\xFF\xDA" + 2) - jpg.begin();
  const auto eoi = long(jpg.size()) - 2;
  std::vector<char> many(jpg.begin(), jpg.begin() + eoi);
  for (int i = 0; i < kMaxJpegScans; ++i) many.insert(many.end(), jpg.begin() + last, jpg.begin() + eoi);
  many.insert(many.end(), jpg.begin() + eoi, jpg.end());
  expect_refused(file("scans.jpg", many), "more than 1000 scans");
}

TEST_F(ImageErrors, TooLargeFileAndBadChannels) {
  const std::string big = file("big.png", {});
  fs::resize_file(big, (size_t(256) << 20) + 1);  // sparse: nothing is written
  expect_refused(big, "larger than 256 MiB");
  expect_refused(fixture("street_300x200.png"), "channels", 2);
  const std::vector<char> png = read_bytes(fixture("street_300x200.png"));
  EXPECT_THROW(decode_image(reinterpret_cast<const uint8_t*>(png.data()), 10, 3, "mem"), Error);
}

}  // namespace
}  // namespace vitqk::io
