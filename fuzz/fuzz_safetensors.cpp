// The safetensors reader on any bytes: header validation, every tensor's data, and the
// model the file loads as (names, shapes, config, weights), as `vitqk forward` loads it.
#include "core/error.h"
#include "fuzz.h"
#include "io/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vitqk;
  try {
    const io::SafeTensorsReader r("fuzz.safetensors", fuzz::bytes(data, size));
    uint64_t covered = 0;
    for (const auto& e : r.entries()) {
      fuzz::require(r.read(e).size() == size_t(e.numel));
      covered += e.end - e.begin;
    }
    fuzz::require(covered <= size);
    const io::LoadedModel m = io::load_model(r);
    // Every weight came from the file: a model larger than the file's tensors is a bug.
    uint64_t numel = 0;
    for (const auto& e : r.entries()) numel += uint64_t(e.numel);
    fuzz::require(m.model.params.size() <= numel);
  } catch (const Error&) {
  }
  return 0;
}
