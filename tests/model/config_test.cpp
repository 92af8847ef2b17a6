#include "model/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "testing.h"

namespace vitqk {
namespace {

// Parsing `text` must fail with one line naming the file and containing `needle`.
void expect_refused(const std::string& text, const std::string& needle) {
  try {
    config_from_text(text, "m.safetensors");
    ADD_FAILURE() << "accepted " << text;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("m.safetensors: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(Config, JsonRoundTrip) {
  ViTConfig c = testing::tiny_config();
  c.qk[1] = Form::Merged;
  c.eps = 1e-5f;
  c.preprocess.mean = {0.1f, 0.2f, 0.3f};
  c.class_names = {"a", "b", "c", "d", "e", "f", "g"};
  const std::string text = config_to_json(c).dump();
  EXPECT_EQ(config_to_json(config_from_text(text, "m")).dump(), text);
}

// Found by fuzzing: nlohmann's get<int>() of 1e300 (undefined behaviour, UBSan's report).
TEST(Config, NumbersAreRangeCheckedBeforeConversion) {
  expect_refused(R"({"preprocess":{"resize":1e300}})", "'resize' is not an integer");
  expect_refused(R"({"preprocess":{"crop":4294967296}})", "'crop' out of range");
  expect_refused(R"({"dim":18446744073709551615})", "'dim' out of range");
  expect_refused(R"({"depth":-9223372036854775808})", "'depth' out of range");
  expect_refused(R"({"eps":1e300})", "'eps' out of range");
  expect_refused(R"({"preprocess":{"mean":[0,1e39,0]}})", "'mean' out of range");
  expect_refused(R"({"preprocess":{"std":[1,1]}})", "'std' must be 3 numbers");
  expect_refused(R"({"preprocess":{"std":[1,0,1]}})", "std positive");
  expect_refused(R"({"preprocess":{"resize":16385}})", "preprocess sizes out of range");
}

// Found while writing fuzz_config_json (a hand-made input; the fuzzer had not got there in a
// minute): tokens() overflowed an int (100000^2) inside validate() itself.
TEST(Config, HugeSizesAreRefusedWithoutOverflow) {
  expect_refused(R"({"image_size":100000,"patch_size":1})", "out of the supported range");
  expect_refused(R"({"image_size":1000000000,"patch_size":1})", "out of the supported range");
  expect_refused(R"({"image_size":65536,"patch_size":65536,"in_chans":64})", "out of the supported range");
  expect_refused(R"({"image_size":4096,"patch_size":16})", "out of the supported range");  // 65537 tokens
  EXPECT_EQ(config_from_text(R"({"image_size":4080,"patch_size":16})", "m").tokens(), 65026);
}

TEST(Config, MalformedJsonIsRefused) {
  expect_refused("{not json", "not valid JSON");
  expect_refused(R"({"depth":1,"depth":2})", "duplicate key \"depth\"");
  expect_refused(R"({"class_names":[[[[[[[[["a"]]]]]]]]]})", "nests JSON deeper");
  expect_refused("[1, 2]", "not a JSON object");
}

}  // namespace
}  // namespace vitqk
