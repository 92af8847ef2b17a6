// vitqk classify: real JPEG/PNG images in, top-k labels out, with the preprocessing the
// model's ecosystem trains with (or flags).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli/common.h"
#include "core/error.h"
#include "io/image.h"

namespace vitqk::cli {

namespace {

std::vector<std::string> read_labels(const std::string& path, int classes) {
  std::ifstream f(path);
  if (!f) fail(path, ": cannot open labels file");
  std::vector<std::string> labels;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  if (int(labels.size()) != classes)
    fail(path, ": ", labels.size(), " labels for a model with ", classes, " classes");
  return labels;
}

}  // namespace

void add_classify(CLI::App& root) {
  auto* app = root.add_subcommand("classify", "Classify JPEG/PNG images with a model");
  static ModelFlags model;
  static ThreadFlag threads;
  static DtypeFlag dtype;
  static std::vector<std::string> images;
  static std::string labels_path, interp;
  static int top_k = 5, resize = -1, crop = -1;
  static std::vector<float> mean, stdev;
  static bool resize_exact = false, json = false;
  model.add(app);
  threads.add(app);
  dtype.add(app);
  app->add_option("images", images, "Image files (JPEG, PNG, BMP, GIF, PNM)")->required();
  app->add_option("-k,--top-k", top_k, "How many classes to print per image")->check(CLI::Range(1, 1000000))->capture_default_str();
  app->add_option("--labels", labels_path, "Text file with one class name per line")->check(CLI::ExistingFile);
  app->add_option("--resize", resize, "Resize the shorter side to this (0: no resize; default: the model's)")
      ->check(CLI::Range(0, 16384));
  app->add_flag("--resize-exact", resize_exact, "Resize both sides to --resize (Hugging Face style)");
  app->add_option("--crop", crop, "Centre crop size (0: none; default: the model's)")->check(CLI::Range(0, 16384));
  app->add_option("--interpolation", interp, "nearest, bilinear or bicubic (default: the model's)")
      ->check(CLI::IsMember({"nearest", "bilinear", "bicubic"}));
  app->add_option("--mean", mean, "Per-channel mean (3 values)")->expected(3);
  app->add_option("--std", stdev, "Per-channel standard deviation (3 values)")->expected(3);
  app->add_flag("--json", json, "Print JSON instead of text");
  app->callback([] {
    threads.apply();
    const PackedViT m = model.load_packed(dtype.precision());
    const ViTConfig& c = m.cfg;
    io::Preprocess pre = c.preprocess;
    if (resize >= 0) pre.resize = resize;
    if (resize_exact) pre.resize_exact = true;
    if (crop >= 0) pre.crop = crop;
    if (!interp.empty()) pre.interp = io::parse_interp(interp);
    if (!mean.empty()) std::copy(mean.begin(), mean.end(), pre.mean.begin());
    if (!stdev.empty()) std::copy(stdev.begin(), stdev.end(), pre.std.begin());
    for (float s : pre.std)
      if (!(s > 0)) fail("--std: values must be positive");

    std::vector<std::string> labels = c.class_names;
    if (!labels_path.empty()) labels = read_labels(labels_path, c.num_classes);
    if (c.num_classes == 0) fail(model.path, ": model has no classification head");

    const long in = long(c.in_chans) * c.image_size * c.image_size;
    std::vector<float> pixels(in * images.size());
    for (size_t i = 0; i < images.size(); ++i) {
      const io::Image img = io::load_image(images[i], c.in_chans);
      const auto [w, h] = io::preprocess_size(img, pre);
      if (w != c.image_size || h != c.image_size)
        fail(images[i], ": preprocessing gives ", w, "x", h, " pixels, the model takes ", c.image_size, "x",
             c.image_size, " (set --resize/--crop)");
      io::preprocess(img, pre, pixels.data() + in * i);
    }
    const int K = c.num_classes;
    std::vector<float> logits(size_t(K) * images.size());
    run_batched(m, pixels.data(), long(images.size()), logits.data());

    nlohmann::json out = nlohmann::json::array();
    const int k = std::min(top_k, K);
    for (size_t i = 0; i < images.size(); ++i) {
      const float* z = logits.data() + i * K;
      const float mx = *std::max_element(z, z + K);
      std::vector<double> p(K);
      double s = 0;
      for (int j = 0; j < K; ++j) s += p[j] = std::exp(double(z[j]) - mx);
      for (double& v : p) v /= s;
      std::vector<int> order(K);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) { return p[a] > p[b]; });
      auto name = [&](int j) { return labels.empty() ? "class " + std::to_string(j) : labels[j]; };
      nlohmann::json top = nlohmann::json::array();
      if (!json) std::cout << images[i] << "\n";
      for (int r = 0; r < k; ++r) {
        const int j = order[r];
        top.push_back({{"class", j}, {"label", name(j)}, {"probability", p[j]}});
        if (!json)
          std::cout << "  " << std::fixed << std::setprecision(4) << p[j] << "  " << name(j) << " (" << j << ")\n";
      }
      out.push_back({{"image", images[i]}, {"top", top}});
    }
    if (json) std::cout << out.dump(2) << "\n";
  });
}

}  // namespace vitqk::cli
