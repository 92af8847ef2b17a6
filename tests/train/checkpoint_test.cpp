#include "train/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/model_file.h"
#include "testing.h"

namespace vitqk {
namespace {

namespace fs = std::filesystem;

class Checkpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "vitqk_ckpt_" + std::to_string(::getpid()) + ".safetensors";
    testing::randomize(m_, 3);
    s_.step = 12, s_.epoch = 1, s_.position = 2, s_.loss_sum = 3.5, s_.correct = 7, s_.seen = 16;
    s_.history = nlohmann::json::array({{{"epoch", 1}, {"test_acc", 0.5}}});
    s_.recipe = {{"model", config_to_json(m_.cfg)}, {"batch", 4}};
    save_checkpoint(path_, m_, std::vector<float>(m_.params.size(), 0.25f), std::vector<float>(m_.params.size(), 0.5f),
                    s_);
    file_ = testing::slurp(path_);
  }
  void TearDown() override { fs::remove(path_); }

  // The checkpoint with `from` replaced by `to` in its header (the header size fixed up).
  std::string edited(const std::string& from, const std::string& to) const {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | uint8_t(file_[i]);
    std::string header = file_.substr(8, n);
    const size_t at = header.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    header.replace(at, from.size(), to);
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = char(uint64_t(header.size()) >> (8 * i));
    return out + header + file_.substr(8 + n);
  }

  void expect_refused(const std::string& bytes, const std::string& needle) {
    try {
      const io::SafeTensorsReader r("ckpt", bytes);
      ViT m(m_.cfg);
      std::vector<float> am, av;
      TrainState s;
      load_checkpoint(r, m, am, av, s);
      ADD_FAILURE() << "accepted; expected '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("ckpt: ", 0), 0u) << e.what();
    }
  }

  ViT m_{testing::tiny_config()};
  TrainState s_;
  std::string path_, file_;
};

TEST_F(Checkpoint, RoundTripFromFileAndMemory) {
  ViT m(m_.cfg);
  std::vector<float> am, av;
  TrainState s;
  load_checkpoint(path_, m, am, av, s);
  EXPECT_EQ(m.params, m_.params);
  EXPECT_EQ(am, std::vector<float>(m.params.size(), 0.25f));
  EXPECT_EQ(s.step, 12);
  EXPECT_EQ(s.epoch, 1);
  EXPECT_EQ(s.history, s_.history);
  EXPECT_EQ(s.recipe, s_.recipe);
  EXPECT_EQ(config_to_json(checkpoint_config(io::SafeTensorsReader("ckpt", file_))), config_to_json(m_.cfg));
}

// Found while writing fuzz_checkpoint (a hand-made input on it; UBSan's report): nlohmann's
// get<long>() of 1e300 is undefined behaviour.
TEST_F(Checkpoint, StateNumbersAreRangeChecked) {
  expect_refused(edited("\\\"step\\\":12", "\\\"step\\\":1e300"), "'step' is not an integer");
  expect_refused(edited("\\\"epoch\\\":1", "\\\"epoch\\\":4294967296"), "'epoch' is not an integer");
  expect_refused(edited("\\\"seen\\\":16", "\\\"seen\\\":-16"), "'seen' is not an integer");
  expect_refused(edited("\\\"loss_sum\\\":3.5", "\\\"loss_sum\\\":\\\"x\\\""), "'loss_sum' is not a number");
  expect_refused(edited("\\\"history\\\":[", "\\\"history\\\":{\\\"a\\\":[]},\\\"x\\\":["), "history");
  expect_refused(edited("\\\"crc32\\\":[", "\\\"crc32\\\":[[[[[[[[["), "nests JSON deeper");
}

// A model built from a checkpoint's config is filled from the file, so the file must hold it.
TEST_F(Checkpoint, ConfigMustMatchTheStoredParameters) {
  try {
    checkpoint_config(io::SafeTensorsReader("ckpt", edited("\\\"mlp_dim\\\":64", "\\\"mlp_dim\\\":65536")));
    FAIL() << "accepted a config larger than the stored parameters";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not of its config's size"), std::string::npos) << e.what();
  }
  std::string model;
  {
    io::save_model(path_, m_);
    model = testing::slurp(path_);
  }
  EXPECT_THROW(checkpoint_config(io::SafeTensorsReader("model", model)), Error);  // no 'params'
}

}  // namespace
}  // namespace vitqk
