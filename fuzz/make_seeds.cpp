// Writes the seed corpora, <out>/<target>/: small valid files made by vitqk's own writers
// (images by stb_image_write, IDX by zlib: vitqk writes neither), plus the malformed cases the
// tests know. Deterministic; run from the repository root to refresh fuzz/corpus/:
//   build-fuzz/fuzz/make_seeds fuzz/corpus
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "fuzz.h"
#include "io/model_file.h"
#include "train/checkpoint.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace fs = std::filesystem;
using namespace vitqk;
using Bytes = std::string;

namespace {

fs::path out_dir;

void put(const std::string& target, const std::string& name, const Bytes& bytes) {
  fs::create_directories(out_dir / target);
  std::ofstream(out_dir / target / name, std::ios::binary) << bytes;
}

Bytes slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void fill(ViT& m, uint64_t seed) {
  Rng rng(seed);
  for (float& v : m.params) v = 0.5f * rng.normal();
}

ViTConfig with_forms(ViTConfig c, std::vector<Form> qk, std::vector<Form> ov) {
  c.depth = int(qk.size());
  c.qk = std::move(qk), c.ov = std::move(ov);
  return c;
}

// A file through the project's writer, read back as bytes.
template <typename Write>
Bytes written(Write write) {
  const fs::path tmp = fs::temp_directory_path() / ("vitqk_seed_" + std::to_string(::getpid()));
  write(tmp.string());
  Bytes b = slurp(tmp);
  fs::remove(tmp);
  return b;
}

Bytes safetensors(const std::string& header, const Bytes& data) {
  Bytes b(8, '\0');
  for (int i = 0; i < 8; ++i) b[i] = char(uint64_t(header.size()) >> (8 * i));
  return b + header + data;
}

void safetensors_seeds() {
  const ViTConfig tiny = fuzz::tiny_config();
  ViT plain(tiny), merged(with_forms(tiny, {Form::Merged}, {Form::Merged})),
      mixed(with_forms(tiny, {Form::Merged, Form::Factorized}, {Form::Factorized, Form::Merged}));
  fill(plain, 1), fill(merged, 2), fill(mixed, 3);
  put("safetensors", "timm_f32.safetensors", written([&](auto p) { io::save_model(p, plain); }));
  put("safetensors", "merged_bf16.safetensors",
      written([&](auto p) { io::save_model(p, merged, {}, io::DType::BF16); }));
  put("safetensors", "mixed_f16.safetensors", written([&](auto p) { io::save_model(p, mixed, {}, io::DType::F16); }));
  // No config metadata: everything inferred from the names and shapes (merged: heads too).
  put("safetensors", "no_metadata.safetensors", written([&](auto p) {
        std::vector<io::TensorView> views;
        for (const auto& q : merged.layout.params()) views.push_back({q.name, q.shape, merged.p(q.offset)});
        io::write_safetensors(p, views, {});
      }));
  const std::vector<float> pixels(16, 0.25f);
  put("safetensors", "pixel_values.safetensors",
      written([&](auto p) { io::write_safetensors(p, {{"pixel_values", {1, 1, 4, 4}, pixels.data()}}, {}); }));

  // The reader's known-bad cases (tests/io/safetensors_test.cpp).
  const Bytes two_floats("\0\0\xc0\x3f\0\0\0\xc0", 8);
  const std::pair<const char*, Bytes> bad[] = {
      {"bad_truncated", safetensors(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", two_floats.substr(0, 5))},
      {"bad_header_size", Bytes("\xff\xff\xff\xff\0\0\0\0{}", 10)},
      {"bad_nesting", safetensors(R"({"a":{"shape":[[1]]}})", "")},
      {"bad_dtype", safetensors(R"({"w":{"dtype":"I8","shape":[2],"data_offsets":[0,8]}})", two_floats)},
      {"bad_shape", safetensors(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", two_floats)},
      {"bad_overlap", safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                  two_floats + two_floats.substr(0, 4))},
      {"bad_duplicate", safetensors(R"({"__metadata__":{"k":"1","k":"2"}})", "")},
      {"bad_metadata", safetensors(R"({"__metadata__":{"epoch":1}})", "")},
      {"bad_config", safetensors(R"({"__metadata__":{"vitqk":"{\"depth\":2,\"qk\":[\"merged\"]}"}})", "")},
  };
  for (const auto& [name, bytes] : bad) put("safetensors", name, bytes);
}

// fuzz_naming's text form of a tensor list.
Bytes spec_text(const io::SafeTensorsReader& r) {
  Bytes t;
  for (const auto& e : r.entries()) {
    t += e.name;
    for (int64_t d : e.shape) t += " " + std::to_string(d);
    t += "\n";
  }
  return t;
}

void naming_seeds() {
  for (const char* name : {"timm_a", "hf_a", "tv_a", "tv_single", "timm_gray"}) {
    const io::SafeTensorsReader r(std::string(VITQK_FIXTURES) + "/models/" + name + ".safetensors");
    put("naming", std::string(name) + ".txt", spec_text(r) + (std::string(name) == "tv_single" ? "heads 1\n" : ""));
  }
  ViT merged(with_forms(fuzz::tiny_config(), {Form::Merged, Form::Factorized}, {Form::Factorized, Form::Merged}));
  const Bytes tiny = written([&](auto p) { io::save_model(p, merged); });
  const io::SafeTensorsReader r("tiny", tiny);
  put("naming", "tiny_mixed_metadata.txt", spec_text(r) + "vitqk " + r.metadata().at("vitqk") + "\n");
  put("naming", "tiny_mixed_flags.txt", spec_text(r) + "heads 2\neps 0.001\n");
  // Absurd shapes (tests/io/naming_test.cpp): must be refused without allocating.
  put("naming", "bad_absurd.txt",
      "patch_embed.proj.weight 1099511627776 3 8 8\npos_embed 1 1099511627777 64\ncls_token 1 1 64\n");
}

void config_seeds() {
  put("config_json", "tiny.json", config_to_json(fuzz::tiny_config()).dump());
  put("config_json", "fmnist.json", config_to_json(preset("fmnist")).dump());
  put("config_json", "mixed.json",
      config_to_json(with_forms(fuzz::tiny_config(), {Form::Merged, Form::Factorized}, {Form::Factorized, Form::Merged}))
          .dump());
  put("config_json", "partial.json", R"({"dim":8,"heads":2,"depth":1,"image_size":8,"patch_size":4})");
  put("config_json", "bad_forms.json", R"({"depth":2,"qk":["merged"]})");
  put("config_json", "bad_types.json", R"({"depth":"two","preprocess":{"resize":1e300,"mean":[1,2]}})");
  put("config_json", "bad_nesting.json", R"({"class_names":[[[[[[[[[["a"]]]]]]]]]]})");
}

Bytes idx(std::vector<uint32_t> dims, const Bytes& data) {
  Bytes b = {0, 0, 8, char(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b += char(d >> s);
  return b + data;
}

Bytes gzip(const Bytes& b) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  Bytes out(deflateBound(&z, uLong(b.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(b.data()));
  z.avail_in = uInt(b.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

void idx_seeds() {
  Bytes pixels;
  for (int i = 0; i < 3 * 5 * 4; ++i) pixels += char(i * 7);
  const Bytes images = idx({3, 5, 4}, pixels), labels = idx({3}, Bytes("\x01\x00\x02", 3));
  put("idx", "images.idx3", images);
  put("idx", "labels.idx1", labels);
  put("idx", "images.idx3.gz", gzip(images));
  put("idx", "labels.idx1.gz", gzip(labels));
  put("idx", "two_members.gz", gzip(labels.substr(0, 6)) + gzip(labels.substr(6)));
  // Known-bad (tests/io/idx_test.cpp): truncated, trailing data, huge declared sizes, wrong type.
  put("idx", "bad_truncated.gz", gzip(images).substr(0, 20));
  put("idx", "bad_trailing.gz", gzip(idx({3}, Bytes("\x01\x00\x02\x03", 4))));
  put("idx", "bad_huge.gz", gzip(idx({65536, 65536, 1}, pixels)));
  put("idx", "bad_type", Bytes("\0\0\x0d\x01\0\0\0\x02\0\0\0\0\0\0\0\0", 16));
}

void write_to(void* context, void* data, int size) { static_cast<Bytes*>(context)->append(static_cast<char*>(data), size); }

// The first 3 bytes of an image seed choose fuzz_image's preprocessing.
Bytes image_seed(uint8_t flags, uint8_t resize, uint8_t crop, const Bytes& file) {
  return Bytes{char(flags), char(resize), char(crop)} + file;
}

void image_seeds() {
  std::vector<uint8_t> rgba(16 * 12 * 4);
  for (size_t i = 0; i < rgba.size(); ++i) rgba[i] = uint8_t(i * 37 + i / 64);
  Bytes png, jpg, jpg_gray, bmp;
  stbi_write_png_to_func(write_to, &png, 16, 12, 4, rgba.data(), 16 * 4);
  stbi_write_jpg_to_func(write_to, &jpg, 16, 12, 4, rgba.data(), 90);
  stbi_write_jpg_to_func(write_to, &jpg_gray, 16, 12, 1, rgba.data(), 50);
  stbi_write_bmp_to_func(write_to, &bmp, 16, 12, 3, rgba.data());
  Bytes ppm = "P6\n5 3\n255\n";
  ppm.append(reinterpret_cast<const char*>(rgba.data()), 5 * 3 * 3);
  const Bytes fixtures = std::string(VITQK_FIXTURES) + "/images/";
  // flags: bit 0 RGB, bits 1-2 interpolation (0 nearest, 1 bilinear, 2 bicubic), bit 3 resize_exact.
  put("image", "rgba.png", image_seed(1 | 4, 20, 16, png));
  put("image", "rgb.jpg", image_seed(1 | 2, 8, 8, jpg));
  put("image", "gray.jpg", image_seed(0, 0, 10, jpg_gray));
  put("image", "rgb.bmp", image_seed(1 | 8, 24, 0, bmp));
  put("image", "rgb.ppm", image_seed(1, 4, 3, ppm));
  put("image", "moon_gray.png", image_seed(2, 32, 28, slurp(fixtures + "moon_64x48_gray.png")));
  put("image", "tiny.gif", image_seed(1 | 4, 30, 24, slurp(fixtures + "tiny_21x30.gif")));
  put("image", "progressive.jpg", image_seed(1 | 2, 32, 32, slurp(fixtures + "progressive_field.jpg")));
  put("image", "cmyk.jpg", image_seed(1 | 4, 24, 20, slurp(fixtures + "tiny_cmyk.jpg")));
  // Known-bad (tests/io/image_test.cpp): truncated, absurd dimensions, overfull Huffman table.
  put("image", "bad_truncated.png", image_seed(1, 8, 8, png.substr(0, png.size() / 2)));
  Bytes wide = png;
  wide[18] = char(0x01);  // IHDR width 16 -> 65552
  put("image", "bad_wide.png", image_seed(1, 8, 8, wide));
  Bytes dht = jpg;
  const size_t at = dht.find("\xFF\xC4");
  std::memset(dht.data() + at + 5, 0xFF, 16);  // 16 code lengths of 255 symbols each
  put("image", "bad_huffman.jpg", image_seed(1, 8, 8, dht));
}

void checkpoint_seeds() {
  ViT m(fuzz::tiny_config());
  fill(m, 4);
  std::vector<float> adam_m(m.params.size(), 0.01f), adam_v(m.params.size(), 0.001f);
  TrainState s;
  s.step = 12, s.epoch = 1, s.position = 2, s.loss_sum = 3.5, s.correct = 7, s.seen = 16;
  s.history = nlohmann::json::array({{{"epoch", 1}, {"step", 10}, {"train_loss", 1.2}, {"test_acc", 0.5}}});
  s.recipe = {{"model", config_to_json(m.cfg)}, {"data", "fuzz"}, {"epochs", 2}, {"batch", 4}, {"lr", 0.001}};
  const Bytes good = written([&](auto p) { save_checkpoint(p, m, adam_m, adam_v, s); });
  // fuzz_checkpoint takes "header, NUL, data" (fuzz::safetensors_file).
  put("checkpoint", "resume", fuzz::safetensors_parts(good));
  Bytes corrupt = good;
  corrupt[corrupt.size() - 3] ^= 0x40;  // the data no longer matches its CRC
  put("checkpoint", "bad_crc", fuzz::safetensors_parts(corrupt));
  put("checkpoint", "bad_model_file", fuzz::safetensors_parts(written([&](auto p) { io::save_model(p, m); })));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds OUT_DIR   (e.g. fuzz/corpus)\n";
    return 2;
  }
  out_dir = argv[1];
  try {
    safetensors_seeds();
    naming_seeds();
    config_seeds();
    idx_seeds();
    image_seeds();
    checkpoint_seeds();
  } catch (const std::exception& e) {
    std::cerr << "make_seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
