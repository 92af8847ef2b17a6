#include "train/data.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/error.h"
#include "core/rng.h"

// Static: another test file may carry its own copy of the implementation.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace vitqk {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("vitqk_data_" + std::to_string(getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }
  // Creates the parent folders of `rel`.
  std::string operator/(const std::string& rel) const {
    const fs::path p = path_ / rel;
    fs::create_directories(p.parent_path());
    return p.string();
  }

 private:
  fs::path path_;
};

void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

Bytes idx(std::vector<uint32_t> dims, const Bytes& data) {
  Bytes b = {0, 0, 0x08, uint8_t(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void write_idx_gz(const std::string& path, const Bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, b.data(), unsigned(b.size())), int(b.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

Bytes random_bytes(size_t n, uint64_t seed, int lo = 0) {
  Rng rng(seed);
  Bytes b(n);
  for (auto& v : b) v = uint8_t(lo + rng.below(uint32_t(256 - lo)));
  return b;
}

void write_png(const std::string& path, int w, int h, int comp, const Bytes& pixels) {
  ASSERT_EQ(pixels.size(), size_t(w) * h * comp);
  ASSERT_NE(stbi_write_png(path.c_str(), w, h, comp, pixels.data(), w * comp), 0) << path;
}

// A w x h image, every byte `v` (all channels equal when comp is 3 unless `tint`).
void write_flat_png(const std::string& path, int w, int h, int comp, uint8_t v, bool tint = false) {
  Bytes px(size_t(w) * h * comp, v);
  if (tint) px[0] = uint8_t(v + 1);
  write_png(path, w, h, comp, px);
}

void expect_error(const std::function<void()>& f, const std::string& start, const std::string& problem) {
  try {
    f();
    ADD_FAILURE() << "no error (expected '" << start << ": ..." << problem << "')";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind(start + ": ", 0), 0u) << m;
    EXPECT_NE(m.find(problem), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

// ---- Fashion-MNIST ----

const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

bool have_fashion() { return fs::is_directory(kFashionMnistDir); }

const DataSplits& fashion() {
  static const DataSplits d = load_data("fashion-mnist");
  return d;
}

TEST(DataFashionMnist, CountsShapeAndClasses) {
  if (!have_fashion()) GTEST_SKIP() << kFashionMnistDir << " absent (apt-get install dataset-fashion-mnist)";
  const DataSplits& d = fashion();
  for (const Dataset* s : {&d.train, &d.test}) {
    EXPECT_EQ(s->channels, 1);
    EXPECT_EQ(s->height, 28);
    EXPECT_EQ(s->width, 28);
    EXPECT_EQ(s->class_names, kFashionNames);
    EXPECT_EQ(s->pixels.size(), size_t(s->count) * 28 * 28);
    EXPECT_EQ(s->labels.size(), size_t(s->count));
  }
  EXPECT_EQ(d.train.count, 60000);
  EXPECT_EQ(d.test.count, 10000);
  EXPECT_NE(d.description.find("Fashion-MNIST"), std::string::npos) << d.description;
  EXPECT_NE(d.description.find("60000 train + 10000 test"), std::string::npos) << d.description;
}

TEST(DataFashionMnist, LabelHistogramAndKnownImages) {
  if (!have_fashion()) GTEST_SKIP() << kFashionMnistDir << " absent";
  const DataSplits& d = fashion();
  std::vector<int> train(10), test(10);
  for (int32_t l : d.train.labels) train.at(l)++;
  for (int32_t l : d.test.labels) test.at(l)++;
  EXPECT_EQ(train, std::vector<int>(10, 6000));
  EXPECT_EQ(test, std::vector<int>(10, 1000));
  // Values read independently with Python's gzip module.
  EXPECT_EQ(d.test.labels[0], 9);
  EXPECT_EQ(d.test.class_names[d.test.labels[0]], "Ankle boot");
  EXPECT_EQ(d.test.pixels[20 * 28 + 17], 255);
  EXPECT_EQ(d.test.pixels[19 * 28 + 0], 70);
  long sum = 0;
  for (int i = 0; i < 784; ++i) sum += d.test.pixels[i];
  EXPECT_EQ(sum, 33456);
  EXPECT_EQ(std::vector<int32_t>(d.train.labels.begin(), d.train.labels.begin() + 10),
            (std::vector<int32_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
}

TEST(DataFashionMnist, LimitsKeepTheFirstImages) {
  if (!have_fashion()) GTEST_SKIP() << kFashionMnistDir << " absent";
  const DataSplits small = load_data(kFashionMnistDir, 100, 50);
  const DataSplits& full = fashion();
  EXPECT_EQ(small.train.count, 100);
  EXPECT_EQ(small.test.count, 50);
  EXPECT_EQ(small.train.class_names, kFashionNames);  // found by path as well as by name
  EXPECT_EQ(small.train.labels, std::vector<int32_t>(full.train.labels.begin(), full.train.labels.begin() + 100));
  EXPECT_EQ(small.test.pixels, Bytes(full.test.pixels.begin(), full.test.pixels.begin() + 50 * 784));
}

// ---- IDX folders ----

TEST(DataIdx, FolderWithClassesTxtAndTestPrefix) {
  TempDir dir;
  const Bytes train_px = random_bytes(6 * 4 * 5, 1), test_px = random_bytes(3 * 4 * 5, 2);
  write_bytes(dir / "train-images-idx3-ubyte", idx({6, 4, 5}, train_px));
  write_idx_gz(dir / "train-labels-idx1-ubyte.gz", idx({6}, {0, 1, 2, 2, 1, 0}));
  write_idx_gz(dir / "test-images-idx3-ubyte.gz", idx({3, 4, 5}, test_px));
  write_bytes(dir / "test-labels-idx1-ubyte", idx({3}, {2, 0, 1}));
  std::ofstream(dir / "classes.txt") << "circle\r\nsquare\r\ntriangle\r\n\n";
  const DataSplits d = load_data(dir.str());
  EXPECT_EQ(d.train.class_names, (std::vector<std::string>{"circle", "square", "triangle"}));
  EXPECT_EQ(d.train.count, 6);
  EXPECT_EQ(d.train.height, 4);
  EXPECT_EQ(d.train.width, 5);
  EXPECT_EQ(d.train.channels, 1);
  EXPECT_EQ(d.train.pixels, train_px);
  EXPECT_EQ(d.test.pixels, test_px);
  EXPECT_EQ(d.test.labels, (std::vector<int32_t>{2, 0, 1}));
  EXPECT_EQ(d.test.class_names, d.train.class_names);
}

TEST(DataIdx, NumericClassNamesWithoutClassesTxt) {
  TempDir dir;
  write_bytes(dir / "train-images-idx3-ubyte", idx({3, 2, 2}, random_bytes(12, 3)));
  write_bytes(dir / "train-labels-idx1-ubyte", idx({3}, {0, 3, 1}));
  write_bytes(dir / "t10k-images-idx3-ubyte", idx({2, 2, 2}, random_bytes(8, 4)));
  write_bytes(dir / "t10k-labels-idx1-ubyte", idx({2}, {4, 0}));
  const DataSplits d = load_data(dir.str());
  EXPECT_EQ(d.train.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
}

void write_small_idx_set(const TempDir& dir, const Bytes& train_labels, const Bytes& test_labels) {
  write_bytes(dir / "train-images-idx3-ubyte", idx({4, 2, 2}, random_bytes(16, 5)));
  write_bytes(dir / "train-labels-idx1-ubyte", idx({uint32_t(train_labels.size())}, train_labels));
  write_bytes(dir / "t10k-images-idx3-ubyte", idx({3, 2, 2}, random_bytes(12, 6)));
  write_bytes(dir / "t10k-labels-idx1-ubyte", idx({uint32_t(test_labels.size())}, test_labels));
}

TEST(DataIdx, LabelOutOfRangeNamesFileAndIndex) {
  TempDir dir;
  write_small_idx_set(dir, {0, 1, 2, 1}, {1, 0, 3});
  std::ofstream(dir / "classes.txt") << "a\nb\nc\n";
  expect_error([&] { load_data(dir.str()); }, dir / "t10k-labels-idx1-ubyte", "label 3 at index 2 is out of range");
}

TEST(DataIdx, CountMismatchBetweenImagesAndLabels) {
  TempDir dir;
  write_small_idx_set(dir, {0, 1, 2}, {1, 0, 1});
  expect_error([&] { load_data(dir.str()); }, dir / "train-labels-idx1-ubyte", "3 labels, but");
}

TEST(DataIdx, MissingTestFiles) {
  TempDir dir;
  write_small_idx_set(dir, {0, 1, 2, 1}, {1, 0, 1});
  fs::remove(dir / "t10k-images-idx3-ubyte");
  expect_error([&] { load_data(dir.str()); }, dir.str(),
               "no t10k-images-idx3-ubyte[.gz] or test-images-idx3-ubyte[.gz]");
}

TEST(DataIdx, BrokenFileIsNamed) {
  TempDir dir;
  write_small_idx_set(dir, {0, 1, 2, 1}, {1, 0, 1});
  write_bytes(dir / "train-images-idx3-ubyte", Bytes{'n', 'o', 'p', 'e', '!'});
  expect_error([&] { load_data(dir.str()); }, dir / "train-images-idx3-ubyte", "not an IDX file");
}

TEST(DataSpec, EmptyMissingOrNotADirectory) {
  TempDir dir;
  expect_error([&] { load_data(dir.str()); }, dir.str(), "neither IDX files");
  expect_error([&] { load_data(dir / "absent"); }, dir / "absent", "no such directory");
  write_bytes(dir / "file", {1, 2, 3});
  expect_error([&] { load_data(dir / "file"); }, dir / "file", "not a directory");
}

// ---- Image folders ----

TEST(DataFolder, TrainAndValFoldersRgb) {
  TempDir dir;
  const Bytes cat0 = random_bytes(5 * 6 * 3, 10), dog0 = random_bytes(5 * 6 * 3, 11);
  write_png(dir / "train/dog/b.png", 6, 5, 3, dog0);
  write_flat_png(dir / "train/dog/a.png", 6, 5, 3, 40, true);
  write_png(dir / "train/cat/x.png", 6, 5, 3, cat0);
  write_flat_png(dir / "train/ant/1.PNG", 6, 5, 3, 90, true);
  write_flat_png(dir / "val/dog/q.png", 6, 5, 3, 7, true);
  write_bytes(dir / "train/dog/notes.txt", {'h', 'i'});
  fs::create_directories(dir.str() + "/train/.cache");
  const DataSplits d = load_data(dir.str());
  EXPECT_EQ(d.train.class_names, (std::vector<std::string>{"ant", "cat", "dog"}));
  EXPECT_EQ(d.train.channels, 3);
  EXPECT_EQ(d.train.width, 6);
  EXPECT_EQ(d.train.height, 5);
  ASSERT_EQ(d.train.count, 4);
  // Interleaved: the first file of each class, then the second of those that have one.
  EXPECT_EQ(d.train.labels, (std::vector<int32_t>{0, 1, 2, 2}));
  EXPECT_EQ(Bytes(d.train.pixels.begin() + 90, d.train.pixels.begin() + 180), cat0);
  EXPECT_EQ(Bytes(d.train.pixels.begin() + 270, d.train.pixels.end()), dog0);
  EXPECT_EQ(d.test.count, 1);
  EXPECT_EQ(d.test.labels, std::vector<int32_t>{2});
  EXPECT_NE(d.description.find("(train/ + val/)"), std::string::npos) << d.description;
}

TEST(DataFolder, GrayscaleWhenEveryPixelIsGray) {
  TempDir dir;
  const Bytes g = random_bytes(4 * 3, 12);
  Bytes rgb;
  for (uint8_t v : g) rgb.insert(rgb.end(), {v, v, v});
  write_png(dir / "train/a/0.png", 3, 4, 1, g);
  write_png(dir / "train/b/0.png", 3, 4, 3, rgb);  // gray content stored as RGB
  write_flat_png(dir / "test/a/0.png", 3, 4, 1, 200);
  const DataSplits d = load_data(dir.str());
  EXPECT_EQ(d.train.channels, 1);
  EXPECT_EQ(d.test.channels, 1);
  EXPECT_EQ(Bytes(d.train.pixels.begin(), d.train.pixels.begin() + 12), g);
  EXPECT_EQ(Bytes(d.train.pixels.begin() + 12, d.train.pixels.end()), g);
  EXPECT_EQ(d.test.pixels, Bytes(12, 200));

  // One coloured pixel anywhere (here in the test split) makes the whole set RGB.
  write_flat_png(dir / "test/b/1.png", 3, 4, 3, 50, true);
  const DataSplits c = load_data(dir.str());
  EXPECT_EQ(c.train.channels, 3);
  EXPECT_EQ(c.test.channels, 3);
  EXPECT_EQ(c.train.pixels.size(), 2u * 4 * 3 * 3);
}

TEST(DataFolder, FlatFolderHoldsOutEveryTenthImage) {
  TempDir dir;
  // The pixel value names the image: class * 100 + index in sorted order.
  for (int i = 0; i < 23; ++i) write_flat_png(dir / cat("a/", char('a' + i), ".png"), 2, 2, 1, uint8_t(i));
  for (int i = 0; i < 10; ++i) write_flat_png(dir / cat("b/img", i, ".png"), 2, 2, 1, uint8_t(100 + i));
  const DataSplits d = load_data(dir.str());
  EXPECT_EQ(d.train.class_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.train.count, 30);
  ASSERT_EQ(d.test.count, 3);
  std::vector<int> held;
  for (int i = 0; i < d.test.count; ++i) held.push_back(d.test.pixels[size_t(i) * 4]);
  EXPECT_EQ(held, (std::vector<int>{9, 109, 19}));
  EXPECT_EQ(d.test.labels, (std::vector<int32_t>{0, 1, 0}));
  for (int i = 0; i < d.train.count; ++i) EXPECT_NE(d.train.pixels[size_t(i) * 4] % 10, 9);
}

TEST(DataFolder, TooFewImagesToHoldOut) {
  TempDir dir;
  for (int i = 0; i < 9; ++i) write_flat_png(dir / cat("a/", i, ".png"), 2, 2, 1, 1);
  expect_error([&] { load_data(dir.str()); }, dir.str(), "no test images");
}

TEST(DataFolder, LimitCoversEveryClass) {
  TempDir dir;
  for (const char* c : {"x", "y", "z"})
    for (int i = 0; i < 4; ++i) write_flat_png(dir / cat("train/", c, "/", i, ".png"), 2, 2, 1, 1);
  write_flat_png(dir / "test/x/0.png", 2, 2, 1, 1);
  const DataSplits d = load_data(dir.str(), 3, 1);
  EXPECT_EQ(d.train.labels, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(d.test.count, 1);
}

TEST(DataFolder, MixedSizesNameTheOffendingFile) {
  TempDir dir;
  write_flat_png(dir / "train/a/0.png", 4, 4, 1, 1);
  write_flat_png(dir / "train/b/0.png", 4, 4, 1, 1);
  write_flat_png(dir / "test/b/0.png", 4, 5, 1, 1);
  expect_error([&] { load_data(dir.str()); }, dir / "test/b/0.png", "image is 4x5, but");
}

TEST(DataFolder, UnreadableImageIsNamed) {
  TempDir dir;
  write_flat_png(dir / "train/a/0.png", 4, 4, 1, 1);
  write_bytes(dir / "train/a/1.png", {'n', 'o', 't', ' ', 'p', 'n', 'g'});
  write_flat_png(dir / "test/a/0.png", 4, 4, 1, 1);
  expect_error([&] { load_data(dir.str()); }, dir / "train/a/1.png", "");
}

TEST(DataFolder, TestClassMustBeATrainingClass) {
  TempDir dir;
  write_flat_png(dir / "train/a/0.png", 4, 4, 1, 1);
  write_flat_png(dir / "test/zebra/0.png", 4, 4, 1, 1);
  expect_error([&] { load_data(dir.str()); }, dir / "test/zebra", "has no folder in");
}

TEST(DataFolder, EmptyClassFolderIsAnError) {
  TempDir dir;
  write_flat_png(dir / "train/a/0.png", 4, 4, 1, 1);
  fs::create_directories(dir.str() + "/train/b");
  write_flat_png(dir / "test/a/0.png", 4, 4, 1, 1);
  expect_error([&] { load_data(dir.str()); }, dir / "train/b", "no .png, .jpg or .jpeg images");
}

// ---- Order and batches ----

TEST(EpochOrder, PermutationThatDependsOnSeedAndEpoch) {
  const std::vector<uint32_t> a = epoch_order(1000, 7, 3);
  EXPECT_EQ(a, epoch_order(1000, 7, 3));
  EXPECT_NE(a, epoch_order(1000, 7, 4));
  EXPECT_NE(a, epoch_order(1000, 8, 3));
  std::vector<uint32_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_TRUE(epoch_order(0, 1, 1).empty());
}

// Random pixels in 1..255: no pixel looks like padding, so each placement is recognisable.
Dataset synthetic(int count, int channels, int height, int width) {
  Dataset d;
  d.count = count, d.channels = channels, d.height = height, d.width = width;
  d.pixels = random_bytes(size_t(count) * d.image_bytes(), 99, 1);
  for (int i = 0; i < count; ++i) d.labels.push_back(i % 4);
  d.class_names = {"a", "b", "c", "d"};
  return d;
}

io::Preprocess norm3() {
  io::Preprocess p;
  p.mean = {0.2f, 0.5f, 0.7f};
  p.std = {0.3f, 0.25f, 0.1f};
  return p;
}

// Image `index` of `d`, shifted so that output (y, x) reads source (y + dy, X + dx) with X
// the (possibly mirrored) x, zero outside, normalised: the reference for one placement.
std::vector<float> placed(const Dataset& d, uint32_t index, int dy, int dx, bool flip, const io::Preprocess& p) {
  const int C = d.channels, H = d.height, W = d.width;
  std::vector<float> out(size_t(C) * H * W);
  for (int c = 0; c < C; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        const int sy = y + dy, sx = (flip ? W - 1 - x : x) + dx;
        const bool in = sy >= 0 && sy < H && sx >= 0 && sx < W;
        const uint8_t v = in ? d.pixels[index * d.image_bytes() + (size_t(sy) * W + sx) * C + c] : 0;
        out[(size_t(c) * H + y) * W + x] = (float(v) / 255.0f - p.mean[c]) / p.std[c];
      }
  return out;
}

struct Batch {
  std::vector<float> pixels;
  std::vector<int32_t> labels;
  bool operator==(const Batch&) const = default;
};

Batch batch(const Dataset& d, const std::vector<uint32_t>& idx, long first, int n, const Augment& aug, uint64_t seed,
            int epoch) {
  const size_t floats = d.image_bytes();
  Batch b{std::vector<float>(n * floats), std::vector<int32_t>(n)};
  make_batch(d, idx.data() + first, n, aug, seed, epoch, first, norm3(), b.pixels.data(), b.labels.data());
  return b;
}

TEST(MakeBatch, WithoutAugmentationIsPlainNormalisation) {
  const Dataset d = synthetic(10, 3, 5, 7);
  const std::vector<uint32_t> idx = {3, 0, 9, 9, 4};
  const Batch b = batch(d, idx, 0, 5, Augment{.enabled = false}, 1, 0);
  const size_t floats = d.image_bytes();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(b.labels[i], d.labels[idx[i]]);
    const std::vector<float> want = placed(d, idx[i], 0, 0, false, norm3());
    EXPECT_EQ(0, std::memcmp(want.data(), b.pixels.data() + i * floats, floats * sizeof(float))) << i;
  }
  // Enabled but with nothing to do: the same.
  EXPECT_EQ(batch(d, idx, 0, 5, Augment{.enabled = true, .pad = 0, .flip = false}, 1, 0), b);
}

TEST(MakeBatch, AugmentationIsACropAndFlipOfTheImage) {
  const Dataset d = synthetic(200, 1, 12, 10);
  const std::vector<uint32_t> idx = epoch_order(d.count, 5, 0);
  const Batch b = batch(d, idx, 0, d.count, Augment{.pad = 4}, 5, 1);
  const size_t floats = d.image_bytes();
  int flipped = 0, shifted = 0, untouched = 0;
  for (int i = 0; i < d.count; ++i) {
    bool found = false;
    for (int dy = -4; dy <= 4 && !found; ++dy)
      for (int dx = -4; dx <= 4 && !found; ++dx)
        for (bool flip : {false, true}) {
          const std::vector<float> want = placed(d, idx[i], dy, dx, flip, norm3());
          if (std::memcmp(want.data(), b.pixels.data() + i * floats, floats * sizeof(float)) == 0) {
            found = true;
            flipped += flip, shifted += dy != 0 || dx != 0, untouched += !flip && dy == 0 && dx == 0;
            break;
          }
        }
    EXPECT_TRUE(found) << "sample " << i << " is no crop/flip of its image";
  }
  EXPECT_GT(flipped, 60);
  EXPECT_LT(flipped, 140);
  EXPECT_GT(shifted, 150);
  EXPECT_LT(untouched, 20);
}

TEST(MakeBatch, EpochsBeforeFromEpochAreNotAugmented) {
  const Dataset d = synthetic(64, 1, 8, 8);
  const std::vector<uint32_t> idx = epoch_order(d.count, 1, 0);
  const Batch plain = batch(d, idx, 0, 64, Augment{.enabled = false}, 1, 0);
  EXPECT_EQ(batch(d, idx, 0, 64, Augment{.from_epoch = 1}, 1, 0), plain);
  EXPECT_NE(batch(d, idx, 0, 64, Augment{.from_epoch = 0}, 1, 0).pixels, plain.pixels);
  EXPECT_NE(batch(d, idx, 0, 64, Augment{.from_epoch = 1}, 1, 1).pixels,
            batch(d, idx, 0, 64, Augment{.enabled = false}, 1, 1).pixels);
}

const Augment kCropFlip{.pad = 4};

TEST(MakeBatch, SameSeedSameBytesOtherSeedOrEpochOther) {
  const Dataset d = synthetic(64, 3, 8, 8);
  const std::vector<uint32_t> idx = epoch_order(d.count, 1, 0);
  const Batch a = batch(d, idx, 0, 64, kCropFlip, 1, 1);
  EXPECT_EQ(a, batch(d, idx, 0, 64, kCropFlip, 1, 1));
  EXPECT_NE(a.pixels, batch(d, idx, 0, 64, kCropFlip, 2, 1).pixels);
  EXPECT_NE(a.pixels, batch(d, idx, 0, 64, kCropFlip, 1, 2).pixels);
  EXPECT_EQ(a.labels, batch(d, idx, 0, 64, kCropFlip, 1, 2).labels);
}

TEST(MakeBatch, IndependentOfBatchSplitAndThreadCount) {
  const Dataset d = synthetic(50, 3, 9, 9);
  const std::vector<uint32_t> idx = epoch_order(d.count, 3, 2);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Batch whole = batch(d, idx, 0, 50, kCropFlip, 3, 2);
  omp_set_num_threads(4);
  EXPECT_EQ(whole, batch(d, idx, 0, 50, kCropFlip, 3, 2));
  // Positions 0..6, 7..29, 30..49 as three batches, as a resumed run would make them.
  Batch parts;
  for (auto [first, n] : std::vector<std::pair<long, int>>{{0, 7}, {7, 23}, {30, 20}}) {
    const Batch p = batch(d, idx, first, n, kCropFlip, 3, 2);
    parts.pixels.insert(parts.pixels.end(), p.pixels.begin(), p.pixels.end());
    parts.labels.insert(parts.labels.end(), p.labels.begin(), p.labels.end());
  }
  omp_set_num_threads(threads);
  EXPECT_EQ(whole, parts);
}

TEST(MakeBatch, RejectsIndexOutsideTheData) {
  const Dataset d = synthetic(4, 1, 2, 2);
  const std::vector<uint32_t> idx = {0, 4};
  EXPECT_THROW(batch(d, idx, 0, 2, Augment{}, 0, 0), Error);
}

}  // namespace
}  // namespace vitqk
