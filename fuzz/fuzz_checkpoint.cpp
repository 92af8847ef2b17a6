// Training checkpoints: the config they record, and a resume into the model the seeds were
// written for (fuzz::tiny_config), as `vitqk train --resume` does. The input is the header
// JSON, a NUL and the data (see fuzz::safetensors_file): the training state inside the header
// is what this target is about; fuzz_safetensors takes care of the framing.
#include "core/error.h"
#include "fuzz.h"
#include "train/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vitqk;
  static const ViTConfig kConfig = fuzz::tiny_config();
  try {
    const std::string file = fuzz::safetensors_file(fuzz::bytes(data, size));
    const io::SafeTensorsReader r("fuzz.safetensors", file);
    try {
      (void)checkpoint_config(r);
    } catch (const Error&) {
    }
    ViT m(kConfig);
    std::vector<float> adam_m, adam_v;
    TrainState s;
    load_checkpoint(r, m, adam_m, adam_v, s);
    fuzz::require(adam_m.size() == m.params.size() && adam_v.size() == m.params.size());
  } catch (const Error&) {
  }
  return 0;
}
