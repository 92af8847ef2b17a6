// The vitqk binary end to end: good runs, and bad input refused with one line naming the
// file, a non-zero exit, and no output file left behind.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/peak.h"
#include "io/model_file.h"
#include "io/safetensors.h"
#include "testing.h"

namespace vitqk {
namespace {

namespace fs = std::filesystem;

struct Result {
  int status;
  std::string out, err;
};

Result run(const std::string& args) {
  const std::string dir = ::testing::TempDir();
  // ctest runs tests in parallel processes: each needs its own capture files.
  const std::string tag = std::to_string(getpid());
  const std::string out = dir + "/vitqk_cli_out." + tag, err = dir + "/vitqk_cli_err." + tag;
  const std::string cmd = std::string(VITQK_BINARY) + " " + args + " > " + out + " 2> " + err;
  const int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc), testing::slurp(out), testing::slurp(err)};
}

class Cli : public ::testing::Test {
 protected:
  std::string dir;
  void SetUp() override {
    dir = ::testing::TempDir() + "/vitqk_cli_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string model(int heads = 2) {
    ViTConfig c = testing::tiny_config(heads);
    ViT m(c);
    testing::randomize(m, 9);
    const std::string p = dir + "/model.safetensors";
    io::save_model(p, m);
    return p;
  }
  // A vitqk file with its last tensor (head.bias) left out.
  std::string model_missing_tensor() {
    ViT m(testing::tiny_config(2));
    std::vector<io::TensorView> views;
    for (const auto& p : m.layout.params()) views.push_back({p.name, p.shape, m.p(p.offset)});
    views.pop_back();
    const std::string p = dir + "/missing.safetensors";
    io::write_safetensors(p, views, {{"vitqk", config_to_json(m.cfg).dump()}});
    return p;
  }
  std::string pixels(int B, int C, int S) {
    std::vector<float> v(size_t(B) * C * S * S, 0.25f);
    const std::string p = dir + "/x.safetensors";
    io::write_safetensors(p, {{"pixel_values", {B, C, S, S}, v.data()}}, {});
    return p;
  }
  // Expect a clean refusal: exit 1, one line on stderr mentioning `needle`, no output file.
  void refused(const std::string& args, const std::string& needle, const std::string& output = "") {
    const Result r = run(args);
    EXPECT_EQ(r.status, 1) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    if (!output.empty()) {
      EXPECT_FALSE(fs::exists(output)) << output;
    }
    for (const auto& e : fs::directory_iterator(dir))
      EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << "temporary left: " << e.path();
  }
};

TEST_F(Cli, HelpOnEveryVerb) {
  for (const char* verb : {"info", "forward", "classify", "merge", "unmerge", "convert", "train", "eval", "bench"}) {
    const Result r = run(std::string(verb) + " --help");
    EXPECT_EQ(r.status, 0) << verb;
    EXPECT_NE(r.out.find("--"), std::string::npos) << verb;
  }
  EXPECT_EQ(run("--help").status, 0);
  EXPECT_NE(run("frobnicate").status, 0);
  EXPECT_NE(run("forward --model").status, 0);
  EXPECT_NE(run("info --preset vit-b16 --tokens abc").status, 0);
}

TEST_F(Cli, ForwardWritesLogitsAndMergeKeepsThem) {
  const std::string m = model(), x = pixels(2, 3, 16), y = dir + "/y.safetensors";
  Result r = run("forward --model " + m + " --input " + x + " --output " + y);
  ASSERT_EQ(r.status, 0) << r.err;
  const io::SafeTensorsReader out(y);
  ASSERT_NE(out.find("logits"), nullptr);
  EXPECT_EQ(out.find("logits")->shape, (std::vector<int64_t>{2, 7}));
  const std::vector<float> ref = out.read(*out.find("logits"));

  const std::string merged = dir + "/merged.safetensors";
  r = run("merge " + m + " " + merged + " --pairs qk,ov");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("largest logit difference"), std::string::npos);
  const std::string y2 = dir + "/y2.safetensors";
  ASSERT_EQ(run("forward --model " + merged + " --input " + x + " --output " + y2).status, 0);
  const io::SafeTensorsReader out2(y2);
  const std::vector<float> got = out2.read(*out2.find("logits"));
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-4);

  // --attention converts on load.
  const std::string y3 = dir + "/y3.safetensors";
  ASSERT_EQ(run("forward --attention factorized --ov factorized --model " + merged + " --input " + x + " --output " + y3).status, 0);
  const io::SafeTensorsReader out3(y3);
  const std::vector<float> got3 = out3.read(*out3.find("logits"));
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got3[i], ref[i], 1e-4);

  r = run("unmerge " + merged + " " + dir + "/back.safetensors");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("exact"), std::string::npos) << r.out;
}

// convert --dtype bf16 halves the file; forward --dtype bf16 stays within bf16's rounding of
// the fp32 logits (and is refused with a clear message where the CPU cannot run it).
TEST_F(Cli, Bf16ConvertAndForward) {
  const std::string m = model(), x = pixels(3, 3, 16), half = dir + "/half.safetensors";
  Result r = run("convert " + m + " " + half + " --dtype bf16");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("largest logit difference"), std::string::npos) << r.out;
  EXPECT_LT(fs::file_size(half), fs::file_size(m) * 6 / 10);
  const std::string y = dir + "/y.safetensors", yb = dir + "/yb.safetensors";
  ASSERT_EQ(run("forward --model " + m + " --input " + x + " --output " + y).status, 0);
  r = run("forward --dtype bf16 --model " + half + " --input " + x + " --output " + yb);
  if (!cpu_info().avx512_bf16) {
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("AVX512-BF16"), std::string::npos) << r.err;
    return;
  }
  ASSERT_EQ(r.status, 0) << r.err;
  const io::SafeTensorsReader a(y), b(yb);
  const std::vector<float> ref = a.read(*a.find("logits")), got = b.read(*b.find("logits"));
  double mx = 0, diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) mx = std::max(mx, double(std::fabs(ref[i]))), diff = std::max(diff, double(std::fabs(got[i] - ref[i])));
  EXPECT_LT(diff, 0.05 * std::max(1.0, mx));
  EXPECT_GT(diff, 0.0);
}

TEST_F(Cli, InfoJsonHasTheThreeForms) {
  const Result r = run("info --preset vit-b16 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["factorized"]["params"].get<int64_t>(), 86567656);
  const int64_t L = 12, H = 12, d = 768;
  EXPECT_EQ(j["merged"]["params"].get<int64_t>() - 86567656, L * ((H - 2) * d * d + (H - 2) * d));
  EXPECT_EQ(j["auto"]["params"].get<int64_t>(), 86567656);  // multi-head ViT-B stays factorized
  EXPECT_GT(j["merged"]["macs"].get<int64_t>(), j["factorized"]["macs"].get<int64_t>());
  const Result t = run("info --preset vit-b16");
  EXPECT_NE(t.out.find("86.57M"), std::string::npos) << t.out;
}

TEST_F(Cli, BadModelFilesAreRefused) {
  const std::string good = model(), x = pixels(1, 3, 16), y = dir + "/y.safetensors";
  const std::string bytes = testing::slurp(good);
  auto variant = [&](const std::string& name, const std::string& content) {
    const std::string p = dir + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  };
  const std::string fwd = " --input " + x + " --output " + y;
  refused("forward --model " + variant("trunc.safetensors", bytes.substr(0, bytes.size() - 100)) + fwd, "trunc.safetensors", y);
  refused("forward --model " + variant("tiny.safetensors", bytes.substr(0, 5)) + fwd, "tiny.safetensors", y);
  std::string past = bytes;
  past[0] = '\xff', past[1] = '\xff', past[2] = '\x0f';
  refused("forward --model " + variant("past.safetensors", past) + fwd, "past.safetensors", y);
  std::string nonjson = bytes;
  nonjson[8] = '#';
  refused("forward --model " + variant("nonjson.safetensors", nonjson) + fwd, "nonjson.safetensors", y);
  refused("forward --model " + variant("text.safetensors", "hello world, not a model at all\n") + fwd, "text.safetensors", y);
  refused("forward --model " + model_missing_tensor() + fwd, "missing tensor", y);
  refused("forward --model " + good + " --input " + pixels(1, 3, 15) + " --output " + y, "pixel_values", y);
  refused("forward --model " + good + " --input " + good + " --output " + y, "pixel_values", y);
  refused("classify --model " + good + " " + variant("notimage.png", "this is not a png"), "notimage.png");
  refused("forward --model " + good + " --input " + x + " --output " + y + " --heads 3",
          "the file records 2 attention heads; --heads 3 contradicts it", y);
  // A timm file records no head count: --heads is taken, and checked against the width.
  refused("info " + testing::fixture("models/timm_a.safetensors") + " --heads 5", "width 48 is not divisible by 5 heads");
  refused("unmerge " + good + " " + y, "no merged layers to unmerge", y);
  refused("unmerge " + testing::fixture("models/timm_a.safetensors") + " " + y, "no merged layers to unmerge", y);
  refused("info --preset vit-b16 --tokens 100 --image-size 64", "not both");
  // eval built its batches at the model's size from images of another: it segfaulted.
  if (testing::have_fashion_mnist())
    refused("eval --model " + good + " --data fashion-mnist --limit 64", "fashion-mnist: images are 28x28x1, the model takes 16x16x3");
}


TEST_F(Cli, BadFlagsAreRefusedInOneLine) {
  const std::string m = model(), x = pixels(1, 3, 16), y = dir + "/y.safetensors";
  refused("train --lr nan", "--lr: 'nan': must be a positive number");
  refused("train --lr -1", "--lr: '-1': must be a positive number");  // not CLI11's 309-digit bound
  refused("train --label-smoothing nan", "must be a finite number");
  refused("train --wd inf", "--wd: 'inf'");
  refused("train --min-lr 1", "--min-lr 1 is above --lr");
  // Flags a bench mode does not read are refused, not ignored.
  refused("bench --train --preset fmnist --dtype bf16", "bench --train: training runs in fp32");
  refused("bench --attention-grid --quick --batch 8", "bench --attention-grid: --batch does not apply");
  refused("bench --attention-grid --quick --attention merged", "--attention does not apply");
  refused("classify --model " + m + " --mean inf 1 1 x.png", "--mean: 'inf'");
  refused("frobnicate", "unknown command 'frobnicate' (commands: info,");
  refused("train --bogus", "--bogus (see vitqk train --help)");
  refused("forward --model " + m + " --input " + x + " --output /dev/null", "/dev/null: not a regular file");
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "/dev/null was replaced";
}

TEST_F(Cli, NonFiniteWeightsAreRefusedByName) {
  ViT bad(testing::tiny_config(2));
  testing::randomize(bad, 9);
  const ParamInfo* q = bad.layout.find("blocks.0.attn.qkv.weight");
  ASSERT_NE(q, nullptr);
  bad.p(q->offset)[5] = NAN;
  const std::string m = dir + "/nan.safetensors", x = pixels(1, 3, 16), y = dir + "/y.safetensors";
  io::save_model(m, bad);
  const std::string needle = "nan.safetensors: tensor 'blocks.0.attn.qkv.weight' holds NaN (element 5)";
  refused("forward --model " + m + " --input " + x + " --output " + y, needle, y);
  refused("merge " + m + " " + y, needle, y);  // an SVD of NaNs aborted the process
  refused("convert " + m + " " + y + " --dtype bf16", needle, y);
}


TEST_F(Cli, UnmergingOnLoadSaysWhatItTruncated) {
  // A merged model not made by merging (random, as training makes them) has full-rank heads.
  ViTConfig c = testing::tiny_config(2);
  c.qk.assign(c.depth, Form::Merged);
  ViT merged(c);
  testing::randomize(merged, 11);
  const std::string m = dir + "/merged.safetensors", x = pixels(1, 3, 16), y = dir + "/y.safetensors";
  io::save_model(m, merged);
  const Result r = run("forward --model " + m + " --input " + x + " --output " + y + " --attention factorized");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("converting to factorized on load truncated " + std::to_string(2 * c.depth) + " of " +
                       std::to_string(2 * c.depth) + " heads"),
            std::string::npos)
      << r.err;
  // Merging is exact: nothing to say.
  const Result f = run("forward --model " + model() + " --input " + x + " --output " + y + " --attention merged");
  EXPECT_EQ(f.status, 0) << f.err;
  EXPECT_EQ(f.err.find("truncated"), std::string::npos) << f.err;
}

}  // namespace
}  // namespace vitqk
