// Weight-name mapping and config inference on any tensor list. The input is text, one line
// per tensor, "name dim dim ..." (dims are decimal, up to 2^63 - 1 as safetensors allows), plus
// optional lines "vitqk <json>" (the file's __metadata__ config), "heads N" and "eps X" (the
// flags). A model that loads must not be larger than the tensors that describe it.
#include <charconv>
#include <map>
#include <sstream>

#include "core/error.h"
#include "fuzz.h"
#include "io/naming.h"
#include "model/params.h"

namespace {

// Decimal digits to a dimension; saturates like no file can, so absurd sizes get through.
int64_t dim_of(std::string_view s) {
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return -1;
    v = v > uint64_t(INT64_MAX) / 10 ? uint64_t(INT64_MAX) : std::min<uint64_t>(v * 10 + uint64_t(ch - '0'), INT64_MAX);
  }
  return int64_t(v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vitqk;
  std::vector<io::TensorSpec> specs;
  std::map<std::string, std::string> metadata;
  io::LoadOptions opts;
  std::istringstream in{std::string(fuzz::bytes(data, size))};
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string name;
    words >> name;
    if (name == "vitqk") {
      std::getline(words, metadata["vitqk"]);
    } else if (name == "heads") {
      words >> opts.heads;  // the CLI takes 1..256
      if (opts.heads < 1 || opts.heads > 256) return 0;
    } else if (name == "eps") {
      words >> opts.eps;
      if (!(opts.eps > 0)) return 0;
    } else {
      io::TensorSpec t{name, {}};
      for (std::string w; words >> w;) {
        const int64_t d = dim_of(w);
        if (d < 0) return 0;
        t.shape.push_back(d);
      }
      specs.push_back(std::move(t));
    }
  }
  try {
    const io::Inferred inf = io::infer_model(specs, metadata, opts, "fuzz.safetensors");
    // The reader guarantees every tensor's bytes are in the file; the model may not exceed them.
    uint64_t numel = 0;
    for (const auto& t : specs) {
      uint64_t n = 1;
      for (int64_t d : t.shape) n = __builtin_mul_overflow(n, uint64_t(d), &n) ? UINT64_MAX : n;
      numel = __builtin_add_overflow(numel, n, &numel) ? UINT64_MAX : numel;
    }
    fuzz::require(ParamLayout(inf.config).size() <= numel);
  } catch (const Error&) {
  }
  return 0;
}
