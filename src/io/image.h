#pragma once
// Images in, model input out: decoding (libjpeg-turbo, stb_image) and the preprocessing each ecosystem
// trains with, reproduced bit for bit from PIL + torchvision so that `classify` sees
// exactly what PyTorch sees.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace vitqk::io {

// 8-bit pixels, interleaved, row-major: pixel (x, y) channel c at ((y * width + x) * channels + c).
struct Image {
  int width = 0, height = 0, channels = 0;  // channels: 1 (L) or 3 (RGB)
  std::vector<uint8_t> pixels;
};

enum class Interp { Nearest, Bilinear, Bicubic };

struct Preprocess {
  // resize > 0: torchvision Resize(resize): the shorter side becomes `resize`, aspect kept
  // (timm, torchvision). resize_exact: both sides become `resize` (Hugging Face
  // ViTImageProcessor). resize == 0: no resize.
  int resize = 256;
  bool resize_exact = false;
  int crop = 224;  // center crop to crop x crop; 0: none
  Interp interp = Interp::Bilinear;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
};

// Decodes a JPEG/PNG/BMP/GIF(first frame)/PNM file to 8-bit RGB (channels = 3) or L
// (channels = 1). Throws vitqk::Error "<path>: <problem>" for unreadable files, files that
// are not images, and absurd dimensions.
Image load_image(const std::string& path, int channels);
Image decode_image(const uint8_t* data, size_t size, int channels, const std::string& name);
// The {width, height} a file declares, after every check decode_image makes before it decodes:
// from the headers alone, cheap.
std::array<int, 2> image_size(const uint8_t* data, size_t size, const std::string& name);

// PIL's Image.resize(..., resample) for 8-bit images (antialiased convolution with
// PIL's fixed-point arithmetic), which torchvision's Resize calls on PIL images.
Image resize(const Image& img, int width, int height, Interp interp);
// torchvision CenterCrop: offsets round((h - crop) / 2).
Image center_crop(const Image& img, int width, int height);
// ToTensor + Normalize: CHW float, (v / 255 - mean) / std, channel count of the image.
void to_tensor(const Image& img, const std::array<float, 3>& mean, const std::array<float, 3>& std,
               float* out);
// The whole pipeline: resize, crop, to_tensor. `out` holds channels * side * side floats
// where side is pre.crop (or the resized size when there is no crop); channels * width *
// height (preprocess_size) when an aspect-keeping resize without crop leaves it non-square.
void preprocess(const Image& img, const Preprocess& pre, float* out);
// The output side length of preprocess() for this image; -1 when the output is not square.
int preprocess_side(const Image& img, const Preprocess& pre);
// The output {width, height} of preprocess() for this image.
std::array<int, 2> preprocess_size(const Image& img, const Preprocess& pre);

std::string interp_name(Interp i);
Interp parse_interp(const std::string& name);  // throws Error on unknown names

}  // namespace vitqk::io
