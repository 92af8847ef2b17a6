// The model config vitqk stores as JSON in __metadata__["vitqk"] (and reads from
// --model-config). A config that parses must survive the round trip unchanged, and its
// parameter layout must be computable.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fuzz.h"
#include "model/params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vitqk;
  try {
    const ViTConfig c = config_from_text(std::string(fuzz::bytes(data, size)), "fuzz.safetensors");
    const std::string text = config_to_json(c).dump();
    fuzz::require(config_to_json(config_from_text(text, "round trip")).dump() == text);
    (void)ParamLayout(c).size();
  } catch (const Error&) {
  }
  return 0;
}
