#include "train/trainer.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/threads.h"
#include "io/atomic_file.h"
#include "io/model_file.h"
#include "ops/cross_entropy.h"
#include "train/checkpoint.h"
#include "train/progress.h"

namespace vitqk {

namespace {

using Clock = std::chrono::steady_clock;

// Labels of a batch of the evaluation set, in order.
EvalResult evaluate_impl(const ViT& m, const Dataset& d, int batch) {
  const ViTConfig& c = m.cfg;
  const int K = c.num_classes;
  const long in = long(c.in_chans) * c.image_size * c.image_size;
  EvalResult r;
  r.confusion.assign(K, std::vector<long>(K, 0));
  std::vector<float> pixels(size_t(batch) * in);
  std::vector<int32_t> labels(batch);
  std::vector<uint32_t> idx(d.count);
  for (int i = 0; i < d.count; ++i) idx[i] = uint32_t(i);
  Activations a;
  double loss = 0;
  long correct = 0;
  for (int i = 0; i < d.count; i += batch) {
    const int b = std::min(batch, d.count - i);
    make_batch(d, idx.data() + i, b, Augment{.enabled = false}, 0, 0, i, c.preprocess, pixels.data(), labels.data());
    vit_forward(m, pixels.data(), b, a);
    int right = 0;
    loss += cross_entropy(a.logits, labels.data(), b, K, 0.0f, nullptr, &right) * b;
    correct += right;
    for (int j = 0; j < b; ++j) {
      const float* z = a.logits + long(j) * K;
      r.confusion[labels[j]][std::max_element(z, z + K) - z]++;
    }
  }
  r.loss = d.count ? loss / d.count : 0;
  r.accuracy = d.count ? double(correct) / d.count : 0;
  for (int k = 0; k < K; ++k) {
    long total = 0;
    for (long v : r.confusion[k]) total += v;
    r.per_class.push_back(total ? double(r.confusion[k][k]) / total : 0.0);
  }
  return r;
}

// What must be identical for a resumed run to continue the same run.
nlohmann::json recipe_of(const ViTConfig& c, const TrainOptions& o, const std::string& data_desc) {
  return {{"model", config_to_json(c)},
          {"data", data_desc},
          {"limit_train", o.limit_train},
          {"limit_test", o.limit_test},
          {"epochs", o.epochs},
          {"batch", o.batch},
          {"lr", o.opt.lr},
          {"min_lr", o.opt.min_lr},
          {"wd", o.opt.wd},
          {"clip", o.opt.clip},
          {"warmup_epochs", o.warmup_epochs},
          {"label_smoothing", o.label_smoothing},
          {"seed", o.seed},
          {"augment", o.augment.enabled},
          {"crop_pad", o.augment.pad},
          {"flip", o.augment.flip},
          {"augment_from_epoch", o.augment.from_epoch + 1},
          {"merged_init", o.merged_init == MergedInit::Random ? "random" : "product"},
          {"threads", max_threads()}};
}

void write_log(const std::string& path, const nlohmann::json& history) {
  std::string text;
  for (const auto& r : history) text += r.dump() + "\n";
  io::write_file_atomic(path, text);
}

}  // namespace

EvalResult evaluate(const ViT& m, const Dataset& d, int batch) {
  if (d.num_classes() != m.cfg.num_classes)
    fail("data has ", d.num_classes(), " classes, the model ", m.cfg.num_classes);
  return evaluate_impl(m, d, batch);
}

std::vector<nlohmann::json> train(const ViTConfig& c0, const TrainOptions& o) {
  const DataSplits loaded = o.preloaded ? DataSplits{} : load_data(o.data, o.limit_train, o.limit_test);
  const DataSplits& data = o.preloaded ? *o.preloaded : loaded;
  const Dataset& tr = data.train;
  ViTConfig c = c0;
  if (tr.height != c.image_size || tr.width != c.image_size || tr.channels != c.in_chans)
    fail(o.data, ": images are ", tr.width, "x", tr.height, "x", tr.channels, ", the model takes ", c.image_size, "x",
         c.image_size, "x", c.in_chans);
  if (tr.num_classes() != c.num_classes) c.num_classes = tr.num_classes();
  c.class_names = tr.class_names;
  if (o.batch > tr.count) fail("--batch ", o.batch, " is larger than the training set (", tr.count, " images)");

  const long steps_per_epoch = tr.count / o.batch;  // the last partial batch is dropped, as timm does
  AdamWConfig opt = o.opt;
  opt.total_steps = steps_per_epoch * o.epochs;
  opt.warmup_steps = long(o.warmup_epochs * steps_per_epoch);

  std::filesystem::create_directories(o.out);
  const std::string ckpt = o.out + "/checkpoint.safetensors", model_path = o.out + "/model.safetensors",
                    log_path = o.out + "/log.jsonl";

  ViT m(c);
  std::vector<float> adam_m(m.params.size(), 0.0f), adam_v(m.params.size(), 0.0f);
  TrainState st;
  st.recipe = recipe_of(c, o, data.description);
  if (o.resume && std::filesystem::exists(ckpt)) {
    const nlohmann::json want = st.recipe;
    load_checkpoint(ckpt, m, adam_m, adam_v, st);
    for (auto& [key, value] : want.items())
      if (st.recipe.value(key, nlohmann::json()) != value)
        fail(ckpt, ": checkpoint was made with a different ", key, " (", st.recipe.value(key, nlohmann::json()).dump(),
             ", now ", value.dump(), "); resume with the same settings or start afresh without --resume");
    std::fprintf(stderr, "resuming %s at epoch %d, step %ld\n", ckpt.c_str(), st.epoch + 1, st.step);
  } else {
    if (std::filesystem::exists(ckpt) && !o.resume)
      std::fprintf(stderr, "note: %s exists; starting afresh (use --resume to continue it)\n", ckpt.c_str());
    init_params(m, o.seed, o.merged_init);
  }

  Activations act;
  act.keep_all = true;
  BackwardBuffers bw;
  std::vector<float> grads(m.params.size());
  const long in = long(c.in_chans) * c.image_size * c.image_size;
  std::vector<float> pixels(size_t(o.batch) * in), dlogits(size_t(o.batch) * c.num_classes);
  std::vector<int32_t> labels(o.batch);

  while (st.epoch < o.epochs) {
    if (interrupted()) throw Interrupted(cat("interrupted; ", ckpt, " is saved: --resume continues it"));
    const std::vector<uint32_t> order = epoch_order(tr.count, o.seed, st.epoch);
    Progress bar("epoch " + std::to_string(st.epoch + 1) + "/" + std::to_string(o.epochs), steps_per_epoch, o.progress);
    const auto t0 = Clock::now();
    long images = 0;
    for (; st.position < steps_per_epoch; ++st.position) {
      const long first = st.position * o.batch;
      make_batch(tr, order.data() + first, o.batch, o.augment, o.seed, st.epoch, first, c.preprocess, pixels.data(),
                 labels.data());
      vit_forward(m, pixels.data(), o.batch, act);
      int right = 0;
      st.loss_sum += cross_entropy(act.logits, labels.data(), o.batch, c.num_classes, o.label_smoothing,
                                   dlogits.data(), &right);
      st.correct += right, st.seen += o.batch;
      std::fill(grads.begin(), grads.end(), 0.0f);
      vit_backward(m, dlogits.data(), act, grads.data(), bw);
      clip_grad_norm(grads.data(), grads.size(), opt.clip);
      const float lr = lr_at(opt, st.step);
      ++st.step;
      adamw_step(m.layout, m.params.data(), grads.data(), adam_m.data(), adam_v.data(), st.step, lr, opt);
      images += o.batch;
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      char extra[96];
      std::snprintf(extra, sizeof extra, "loss %.4f  %.0f img/s", st.loss_sum / (st.position + 1), images / secs);
      bar.update(st.position + 1, extra);
      const bool stop = interrupted();
      if ((stop || (o.save_every > 0 && st.step % o.save_every == 0)) && st.position + 1 < steps_per_epoch) {
        ++st.position;  // the checkpoint says where to continue
        save_checkpoint(ckpt, m, adam_m, adam_v, st);
        if (stop) throw Interrupted(cat("interrupted; ", ckpt, " is saved: --resume continues it"));
        --st.position;
      }
    }
    const double train_secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const EvalResult ev = evaluate_impl(m, data.test, 256);
    nlohmann::json rec = {{"epoch", st.epoch + 1},
                          {"step", st.step},
                          {"train_loss", st.loss_sum / steps_per_epoch},
                          {"train_acc", st.seen ? double(st.correct) / st.seen : 0.0},
                          {"test_loss", ev.loss},
                          {"test_acc", ev.accuracy},
                          {"images_per_s", images > 0 ? images / train_secs : 0.0},
                          {"lr", lr_at(opt, st.step - 1)}};
    char extra[128];
    std::snprintf(extra, sizeof extra, "loss %.4f  test %.2f%%", st.loss_sum / steps_per_epoch, 100 * ev.accuracy);
    bar.finish(extra);
    st.history.push_back(rec);
    ++st.epoch;
    st.position = 0, st.loss_sum = 0, st.correct = 0, st.seen = 0;
    // Checkpoint first: log.jsonl and model.safetensors are rebuilt from it if we die here.
    save_checkpoint(ckpt, m, adam_m, adam_v, st);
    write_log(log_path, st.history);
    io::save_model(model_path, m);
  }
  // A run that died after its last checkpoint, resumed, still leaves a complete log and model.
  write_log(log_path, st.history);
  io::save_model(model_path, m);
  return std::vector<nlohmann::json>(st.history.begin(), st.history.end());
}

}  // namespace vitqk
