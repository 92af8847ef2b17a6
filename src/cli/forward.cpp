// vitqk forward: logits for a batch of preprocessed images, file to file.
#include <iostream>

#include "cli/common.h"
#include "core/error.h"
#include "io/safetensors.h"

namespace vitqk::cli {

void add_forward(CLI::App& root) {
  auto* app = root.add_subcommand("forward", "Run a model on a tensor of images (pixel_values -> logits)");
  static ModelFlags model;
  static ThreadFlag threads;
  static DtypeFlag dtype;
  static std::string input, output;
  model.add(app);
  threads.add(app);
  dtype.add(app);
  app->add_option("-i,--input", input, "safetensors file with float32 'pixel_values' [B, C, H, W]")
      ->required()
      ->check(CLI::ExistingFile);
  app->add_option("-o,--output", output, "safetensors file to write with float32 'logits' [B, classes]")->required();
  app->callback([] {
    threads.apply();
    const PackedViT m = model.load_packed(dtype.precision());
    const ViTConfig& c = m.cfg;

    const io::SafeTensorsReader in(input);
    const auto* px = in.find("pixel_values");
    if (!px) fail(input, ": no tensor 'pixel_values'");
    const std::vector<int64_t> want{c.in_chans, c.image_size, c.image_size};
    if (px->shape.size() != 4 || std::vector<int64_t>(px->shape.begin() + 1, px->shape.end()) != want)
      fail(input, ": 'pixel_values' must have shape [B, ", c.in_chans, ", ", c.image_size, ", ", c.image_size,
           "] for this model");
    const long B = px->shape[0];
    std::vector<float> pixels = in.read(*px);
    std::vector<float> logits(size_t(B) * c.out_dim());
    run_batched(m, pixels.data(), B, logits.data());
    io::write_safetensors(output, {{"logits", {B, c.out_dim()}, logits.data()}}, {{"format", "pt"}});
    std::cerr << "wrote " << output << ": logits [" << B << ", " << c.out_dim() << "]\n";
  });
}

}  // namespace vitqk::cli
