#include "train/data.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/rng.h"
#include "io/idx.h"

namespace vitqk {

namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kFashionMnistClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// Splits of a run's randomness: the data order and the augmentation must not replay the
// stream that Rng(seed) gives the weight initialisation.
constexpr uint64_t kOrderStream = 0x6f72646572ULL, kAugmentStream = 0x6175676dULL;

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t mix(uint64_t h, uint64_t v) { return splitmix(h ^ splitmix(v)); }

void keep_first(Dataset& d, int limit) {
  if (limit <= 0 || limit >= d.count) return;
  d.count = limit;
  d.pixels.resize(size_t(limit) * d.image_bytes());
  d.labels.resize(limit);
  d.pixels.shrink_to_fit();
  d.labels.shrink_to_fit();
}

std::string shape_text(const Dataset& d) { return cat(d.width, "x", d.height, "x", d.channels); }

std::string describe(const std::string& what, const DataSplits& s) {
  return cat(what, ": ", s.train.count, " train + ", s.test.count, " test images, ", shape_text(s.train), ", ",
             s.train.num_classes(), " classes");
}

void require_images(const Dataset& d, const std::string& dir, const char* split) {
  if (d.count == 0) fail(dir, ": no ", split, " images");
}

// ---- Folders of IDX files ----

// The first of `stems` present in dir, raw or gzipped; "" if none.
std::string find_idx(const fs::path& dir, std::initializer_list<const char*> stems) {
  for (const char* stem : stems)
    for (const char* ext : {"", ".gz"}) {
      const fs::path p = dir / (std::string(stem) + ext);
      if (fs::is_regular_file(p)) return p.string();
    }
  return "";
}

std::string require_idx(const fs::path& dir, std::initializer_list<const char*> stems) {
  const std::string p = find_idx(dir, stems);
  if (p.empty()) {
    std::string names;
    for (const char* s : stems) names += (names.empty() ? "" : " or ") + std::string(s) + "[.gz]";
    fail(dir.string(), ": no ", names);
  }
  return p;
}

bool is_idx_dir(const fs::path& dir) { return !find_idx(dir, {"train-images-idx3-ubyte"}).empty(); }

std::vector<std::string> read_class_names(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open");
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    names.push_back(line);
  }
  while (!names.empty() && names.back().empty()) names.pop_back();
  if (names.empty()) fail(path, ": no class names");
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i].empty()) fail(path, ": line ", i + 1, " is empty (one class name per line)");
  return names;
}

Dataset read_idx_split(const std::string& images, const std::string& labels) {
  io::IdxImages im = io::read_idx_images(images);
  const std::vector<uint8_t> lab = io::read_idx_labels(labels);
  if (lab.size() != size_t(im.count))
    fail(labels, ": ", lab.size(), " labels, but ", images, " holds ", im.count, " images");
  Dataset d;
  d.count = im.count, d.channels = 1, d.height = im.rows, d.width = im.cols;
  d.pixels = std::move(im.pixels);
  d.labels.assign(lab.begin(), lab.end());
  return d;
}

void check_labels(const Dataset& d, const std::string& labels_path, const std::string& why) {
  for (int i = 0; i < d.count; ++i)
    if (d.labels[i] >= d.num_classes())
      fail(labels_path, ": label ", d.labels[i], " at index ", i, " is out of range (", why, ")");
}

DataSplits load_idx_dir(const fs::path& dir, int limit_train, int limit_test) {
  const std::string train_images = require_idx(dir, {"train-images-idx3-ubyte"}),
                    train_labels = require_idx(dir, {"train-labels-idx1-ubyte"}),
                    test_images = require_idx(dir, {"t10k-images-idx3-ubyte", "test-images-idx3-ubyte"}),
                    test_labels = require_idx(dir, {"t10k-labels-idx1-ubyte", "test-labels-idx1-ubyte"});
  DataSplits s;
  s.train = read_idx_split(train_images, train_labels);
  s.test = read_idx_split(test_images, test_labels);
  require_images(s.train, dir.string(), "training");
  require_images(s.test, dir.string(), "test");
  if (s.test.height != s.train.height || s.test.width != s.train.width)
    fail(test_images, ": images are ", shape_text(s.test), ", those of ", train_images, " ", shape_text(s.train));

  std::error_code ec;
  const fs::path classes = dir / "classes.txt";
  const bool fashion = fs::equivalent(dir, kFashionMnistDir, ec);
  std::vector<std::string> names;
  std::string why;
  if (fs::exists(classes)) {
    names = read_class_names(classes.string());
    why = cat(classes.string(), " lists ", names.size(), " classes");
  } else if (fashion) {
    names = kFashionMnistClasses;
    why = "Fashion-MNIST has 10 classes";
  } else {
    int32_t top = 0;
    for (const Dataset* d : {&s.train, &s.test})
      for (int32_t v : d->labels) top = std::max(top, v);
    for (int k = 0; k <= top; ++k) names.push_back(std::to_string(k));
  }
  s.train.class_names = s.test.class_names = names;
  check_labels(s.train, train_labels, why);
  check_labels(s.test, test_labels, why);
  keep_first(s.train, limit_train);
  keep_first(s.test, limit_test);
  s.description = describe(cat("IDX folder ", fs::weakly_canonical(dir).string(), fashion ? " (Fashion-MNIST)" : ""), s);
  return s;
}

// ---- Image folders ----

bool hidden(const fs::path& p) { return p.filename().string().starts_with("."); }

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// Sorted by name, so that everything downstream (labels, hold-out, limits) is reproducible.
std::vector<fs::path> sorted_entries(const fs::path& dir, bool dirs) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (hidden(e.path())) continue;
    if (dirs ? e.is_directory() : e.is_regular_file() && is_image_name(e.path())) out.push_back(e.path());
  }
  if (ec) fail(dir.string(), ": cannot list (", ec.message(), ")");
  std::sort(out.begin(), out.end());
  return out;
}

struct Sample {
  std::string path;
  int32_t label;
};
using PerClass = std::vector<std::vector<std::string>>;  // file paths of each class, sorted

std::vector<std::string> class_folders(const fs::path& dir) {
  std::vector<std::string> names;
  for (const fs::path& p : sorted_entries(dir, true)) names.push_back(p.filename().string());
  return names;
}

PerClass list_files(const fs::path& dir, const std::vector<std::string>& classes, bool require_each) {
  PerClass files(classes.size());
  for (size_t k = 0; k < classes.size(); ++k) {
    const fs::path folder = dir / classes[k];
    if (!fs::is_directory(folder)) continue;
    for (const fs::path& p : sorted_entries(folder, false)) files[k].push_back(p.string());
    if (require_each && files[k].empty()) fail(folder.string(), ": no .png, .jpg or .jpeg images");
  }
  return files;
}

// The first file of every class, then the second, ...: a limit keeps every class.
std::vector<Sample> interleave(const PerClass& files, int limit) {
  std::vector<Sample> out;
  size_t longest = 0;
  for (const auto& f : files) longest = std::max(longest, f.size());
  for (size_t i = 0; i < longest; ++i)
    for (size_t k = 0; k < files.size(); ++k)
      if (i < files[k].size()) out.push_back({files[k][i], int32_t(k)});
  if (limit > 0 && size_t(limit) < out.size()) out.resize(limit);
  return out;
}

// Decoding is the slow part, so it runs in parallel; errors are reported for the first
// failing file in dataset order, whatever the thread timing.
std::vector<io::Image> decode_all(const std::vector<Sample>& samples) {
  const long n = long(samples.size());
  std::vector<io::Image> images(n);
  std::vector<std::string> errors(n);
#pragma omp parallel for schedule(dynamic, 16)
  for (long i = 0; i < n; ++i) {
    try {
      images[i] = io::load_image(samples[i].path, 3);
    } catch (const Error& e) {
      errors[i] = e.what();
    } catch (const std::exception& e) {
      errors[i] = samples[i].path + ": " + e.what();
    }
  }
  for (const std::string& e : errors)
    if (!e.empty()) throw Error(e);
  return images;
}

// The first image decoded: every other one must have its size.
struct SizeReference {
  std::string path;
  int width = 0, height = 0;
};

// RGB, whatever the files hold: the choice of one or three channels waits for every image.
Dataset decode_split(const std::vector<Sample>& samples, SizeReference& ref) {
  std::vector<io::Image> images = decode_all(samples);
  Dataset d;
  d.count = int(samples.size()), d.channels = 3;
  for (size_t i = 0; i < images.size(); ++i) {
    const io::Image& im = images[i];
    if (ref.path.empty()) ref = {samples[i].path, im.width, im.height};
    if (im.width != ref.width || im.height != ref.height)
      fail(samples[i].path, ": image is ", im.width, "x", im.height, ", but ", ref.path, " is ", ref.width, "x",
           ref.height, " (all images of a dataset must have the same size)");
    d.pixels.insert(d.pixels.end(), im.pixels.begin(), im.pixels.end());
    d.labels.push_back(samples[i].label);
  }
  d.width = ref.width, d.height = ref.height;
  return d;
}

bool is_gray(const Dataset& d) {
  for (size_t i = 0; i < d.pixels.size(); i += 3)
    if (d.pixels[i] != d.pixels[i + 1] || d.pixels[i] != d.pixels[i + 2]) return false;
  return true;
}

void to_gray(Dataset& d) {
  for (size_t i = 0; i < d.pixels.size() / 3; ++i) d.pixels[i] = d.pixels[3 * i];
  d.pixels.resize(d.pixels.size() / 3);
  d.pixels.shrink_to_fit();
  d.channels = 1;
}

DataSplits decode_splits(const PerClass& train, const PerClass& test, const std::vector<std::string>& classes,
                         int limit_train, int limit_test) {
  const std::vector<Sample> train_samples = interleave(train, limit_train), test_samples = interleave(test, limit_test);
  SizeReference ref;
  DataSplits s;
  s.train = decode_split(train_samples, ref);
  s.test = decode_split(test_samples, ref);
  if (is_gray(s.train) && is_gray(s.test)) to_gray(s.train), to_gray(s.test);
  s.train.class_names = s.test.class_names = classes;
  return s;
}

size_t total(const PerClass& files) {
  size_t n = 0;
  for (const auto& f : files) n += f.size();
  return n;
}

DataSplits load_split_folders(const fs::path& dir, int limit_train, int limit_test) {
  const fs::path train_dir = dir / "train", test_dir = fs::is_directory(dir / "test") ? dir / "test" : dir / "val";
  if (!fs::is_directory(test_dir)) fail(dir.string(), ": has train/ but no test/ or val/");
  const std::vector<std::string> classes = class_folders(train_dir);
  if (classes.empty()) fail(train_dir.string(), ": no class folders");
  for (const std::string& c : class_folders(test_dir))
    if (!std::binary_search(classes.begin(), classes.end(), c))
      fail((test_dir / c).string(), ": class '", c, "' has no folder in ", train_dir.string());
  const PerClass train = list_files(train_dir, classes, true), test = list_files(test_dir, classes, false);
  if (total(test) == 0) fail(test_dir.string(), ": no test images");
  DataSplits s = decode_splits(train, test, classes, limit_train, limit_test);
  s.description = describe(cat("image folder ", fs::weakly_canonical(dir).string(), " (", train_dir.filename().string(),
                               "/ + ", test_dir.filename().string(), "/)"),
                           s);
  return s;
}

// Every tenth file of each class (the 10th, 20th, ... by name) is held out: spread over the
// class rather than its tail, in case names follow capture order.
DataSplits load_class_folders(const fs::path& dir, int limit_train, int limit_test) {
  const std::vector<std::string> classes = class_folders(dir);
  if (classes.empty())
    fail(dir.string(), ": neither IDX files (train-images-idx3-ubyte[.gz], ...) nor class folders of images");
  const PerClass all = list_files(dir, classes, true);
  PerClass train(classes.size()), test(classes.size());
  for (size_t k = 0; k < classes.size(); ++k)
    for (size_t i = 0; i < all[k].size(); ++i) (i % 10 == 9 ? test : train)[k].push_back(all[k][i]);
  if (total(test) == 0)
    fail(dir.string(), ": no test images (every 10th image of each class is held out: some class needs 10 or more)");
  DataSplits s = decode_splits(train, test, classes, limit_train, limit_test);
  s.description = describe(cat("image folder ", fs::weakly_canonical(dir).string(), " (every 10th image held out)"), s);
  return s;
}

// ---- Batches ----

// What augmentation does to one sample: the crop window's offset from the image, and a flip.
struct Placement {
  int dy = 0, dx = 0;
  bool flip = false;
};

Placement draw_placement(const Augment& aug, uint64_t seed, int epoch, long position) {
  Rng rng(mix(mix(mix(seed, kAugmentStream), uint64_t(epoch)), uint64_t(position)));
  Placement p;
  p.dy = int(rng.below(uint32_t(2 * aug.pad + 1))) - aug.pad;
  p.dx = int(rng.below(uint32_t(2 * aug.pad + 1))) - aug.pad;
  p.flip = aug.flip && (rng.next() >> 63);
  return p;
}

using Lut = std::array<std::array<float, 256>, 3>;

// The same float operations as ToTensor + Normalize, done once per byte value.
Lut normalisation(const io::Preprocess& norm, int channels) {
  Lut lut{};
  for (int c = 0; c < channels; ++c)
    for (int v = 0; v < 256; ++v) lut[c][v] = (float(v) / 255.0f - norm.mean[c]) / norm.std[c];
  return lut;
}

// Crop, flip and normalise one HWC image into CHW floats; outside the image is 0 (padding).
void write_sample(const Dataset& d, uint32_t index, const Placement& p, const Lut& lut, float* out) {
  const int C = d.channels, H = d.height, W = d.width;
  const uint8_t* src = d.pixels.data() + index * d.image_bytes();
  for (int c = 0; c < C; ++c)
    for (int y = 0; y < H; ++y) {
      float* row = out + (size_t(c) * H + y) * W;
      const int sy = y + p.dy;
      for (int x = 0; x < W; ++x) {
        const int sx = (p.flip ? W - 1 - x : x) + p.dx;
        const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
        row[x] = lut[c][inside ? src[(size_t(sy) * W + sx) * C + c] : 0];
      }
    }
}

}  // namespace

DataSplits load_data(const std::string& spec, int limit_train, int limit_test) {
  if (spec == "fashion-mnist" && !fs::is_directory(kFashionMnistDir))
    fail("fashion-mnist: ", kFashionMnistDir,
         " not found; install it with `apt-get install dataset-fashion-mnist`, or pass --data DIR");
  const fs::path dir = spec == "fashion-mnist" ? fs::path(kFashionMnistDir) : fs::path(spec);
  if (!fs::exists(dir)) fail(spec, ": no such directory (expected fashion-mnist, a folder of IDX files or of images)");
  if (!fs::is_directory(dir)) fail(spec, ": not a directory (expected fashion-mnist, a folder of IDX files or of images)");
  if (is_idx_dir(dir)) return load_idx_dir(dir, limit_train, limit_test);
  if (fs::is_directory(dir / "train")) return load_split_folders(dir, limit_train, limit_test);
  return load_class_folders(dir, limit_train, limit_test);
}

std::vector<uint32_t> epoch_order(int count, uint64_t seed, int epoch) {
  std::vector<uint32_t> order(std::max(count, 0));
  for (size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
  Rng rng(mix(mix(seed, kOrderStream), uint64_t(epoch)));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(uint32_t(i))]);
  return order;
}

void make_batch(const Dataset& d, const uint32_t* indices, int n, const Augment& aug, uint64_t seed, int epoch,
                long first_position, const io::Preprocess& norm, float* pixels_out, int32_t* labels_out) {
  for (int i = 0; i < n; ++i)
    if (indices[i] >= uint32_t(d.count)) fail("batch index ", indices[i], " outside the ", d.count, " images");
  if (aug.enabled && aug.pad < 0) fail("augmentation padding ", aug.pad, " is negative");
  const bool augmented = aug.enabled && epoch >= aug.from_epoch;
  const Lut lut = normalisation(norm, d.channels);
  const size_t floats = size_t(d.channels) * d.height * d.width;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i) {
    const Placement p = augmented ? draw_placement(aug, seed, epoch, first_position + i) : Placement{};
    write_sample(d, indices[i], p, lut, pixels_out + i * floats);
    labels_out[i] = d.labels[indices[i]];
  }
}

}  // namespace vitqk
