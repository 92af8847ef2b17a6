#pragma once
// Image classification data for training: loading (Fashion-MNIST, IDX folders, image
// folders) and batches that are a pure function of (seed, epoch, position), so a run split
// or resumed anywhere sees the same images, in the same order, augmented the same way.
#include <cstdint>
#include <string>
#include <vector>

#include "io/image.h"

namespace vitqk {

struct Dataset {
  int count = 0, channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;  // count images of height * width * channels, HWC interleaved
  std::vector<int32_t> labels;  // count, each in [0, num_classes())
  std::vector<std::string> class_names;

  int num_classes() const { return int(class_names.size()); }
  size_t image_bytes() const { return size_t(height) * width * channels; }
};

struct DataSplits {
  Dataset train, test;
  std::string description;  // what was loaded; identifies the data in a checkpoint's recipe
};

// Where `load_data("fashion-mnist")` looks (Debian's dataset-fashion-mnist).
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// `spec` is one of:
//  - "fashion-mnist": the IDX folder kFashionMnistDir;
//  - a folder of IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte and
//    t10k-... (or test-...), each optionally gzipped (name + ".gz"). Class names come from
//    an optional classes.txt (one per line), else they are "0".."K-1" with K the largest
//    label + 1 (Fashion-MNIST's own names for kFashionMnistDir);
//  - an image folder: DIR/train/CLASS/*.{png,jpg,jpeg} with DIR/test/CLASS/* (or DIR/val/),
//    or just DIR/CLASS/*, of which every tenth file of each class (by sorted name) is held
//    out as the test split. Class names are the sorted folder names of the training split.
//    All images must have the same size. The data is grayscale (1 channel) when every pixel
//    of every image has R = G = B, else RGB: so a grayscale set stored as RGB files is still
//    one channel. Images are interleaved across classes (the first file of each class, then
//    the second, ...) so that a limit still covers every class.
// limit_train / limit_test > 0 keep only the first N images of that split.
// Throws Error "<path>: <problem>".
DataSplits load_data(const std::string& spec, int limit_train = 0, int limit_test = 0);

struct Augment {
  bool enabled = true;
  // First (0-based) epoch that is augmented. Measured on Fashion-MNIST: one epoch of the
  // default model reaches 81.2% without augmentation, 79.3% with flips, 65.2% with pad-4 crops
  // and flips; augmentation is a regulariser for longer runs, not for the first pass.
  int from_epoch = 1;
  // torchvision RandomCrop(size, padding=pad): zero padding, before normalising. Off by
  // default: Fashion-MNIST is centred, and shifts cost the default model accuracy (epoch 2 of
  // 10: 82.5% with flips alone, 77.9% with pad 1 as well).
  int pad = 0;
  bool flip = true;  // RandomHorizontalFlip(p=0.5), after the crop
};

// The order of the training set in `epoch`: a permutation of [0, count) that depends only
// on (seed, epoch).
std::vector<uint32_t> epoch_order(int count, uint64_t seed, int epoch);

// Fills `n` samples, images d[indices[i]]: pixels_out gets n * C * H * W floats (CHW per
// image), (v / 255 - mean[c]) / std[c] with mean and std from `norm` (its resize and crop
// are ignored: the data already has the model's size), labels_out n labels. Sample i is at
// position first_position + i of the epoch, and its augmentation depends only on (seed,
// epoch, position): the same however the epoch is cut into batches, resumed, or threaded.
void make_batch(const Dataset& d, const uint32_t* indices, int n, const Augment& aug, uint64_t seed, int epoch,
                long first_position, const io::Preprocess& norm, float* pixels_out, int32_t* labels_out);

}  // namespace vitqk
