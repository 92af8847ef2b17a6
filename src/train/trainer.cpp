#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/rng.h"
#include "core/threads.h"
#include "dist/comm.h"
#include "io/atomic_file.h"
#include "io/model_file.h"
#include "ops/cross_entropy.h"
#include "train/checkpoint.h"
#include "train/progress.h"

namespace vitqk {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One thread's buffers for forward (and backward) passes of its slices of a batch.
struct ThreadBuffers {
  Activations act;
  BackwardBuffers bw;  // training only
  std::vector<float> pixels, dlogits;
  std::vector<int32_t> labels;

  void fit(const ViTConfig& c, int images) {
    pixels.resize(size_t(images) * c.in_chans * c.image_size * c.image_size);
    labels.resize(images), dlogits.resize(size_t(images) * c.num_classes);
  }
};

// Loss, accuracy and confusion of the evaluation set: each rank takes a contiguous share in
// chunks of `batch` images, one thread per chunk, and the sums meet in one all-reduce.
EvalResult evaluate_impl(const ViT& m, const Dataset& d, int batch, const dist::Comm& comm) {
  const ViTConfig& c = m.cfg;
  const int K = c.num_classes;
  const long lo = long(d.count) * comm.rank() / comm.size(), hi = long(d.count) * (comm.rank() + 1) / comm.size();
  const int chunks = int((hi - lo + batch - 1) / batch);
  std::vector<uint32_t> idx(d.count);
  std::iota(idx.begin(), idx.end(), 0u);
  // Per chunk: [loss sum, correct, confusion [true][predicted]], added in chunk order (doubles
  // count exactly up to 2^53).
  const size_t width = 2 + size_t(K) * K;
  std::vector<double> sums(size_t(chunks) * width, 0.0);
  std::vector<ThreadBuffers> workers(max_threads());
  parallel_tasks(chunks, [&](int t, int thread) {
    ThreadBuffers& w = workers[thread];
    w.fit(c, batch);
    const long i = lo + long(t) * batch;
    const int b = int(std::min<long>(batch, hi - i));
    make_batch(d, idx.data() + i, b, Augment{.enabled = false}, 0, 0, i, c.preprocess, w.pixels.data(),
               w.labels.data());
    vit_forward(m, w.pixels.data(), b, w.act);
    double* s = sums.data() + size_t(t) * width;
    int right = 0;
    s[0] = cross_entropy(w.act.logits, w.labels.data(), b, K, 0.0f, nullptr, &right) * b;
    s[1] = right;
    for (int j = 0; j < b; ++j) {
      const float* z = w.act.logits + long(j) * K;
      s[2 + size_t(w.labels[j]) * K + (std::max_element(z, z + K) - z)] += 1;
    }
  });
  for (int t = 1; t < chunks; ++t)
    for (size_t k = 0; k < width; ++k) sums[k] += sums[size_t(t) * width + k];
  sums.resize(width);
  comm.allreduce_sum(sums.data(), sums.size());
  EvalResult r;
  r.loss = d.count ? sums[0] / d.count : 0;
  r.accuracy = d.count ? sums[1] / d.count : 0;
  r.confusion.assign(K, std::vector<long>(K, 0));
  for (int k = 0; k < K; ++k) {
    long total = 0;
    for (int p = 0; p < K; ++p) total += r.confusion[k][p] = long(sums[2 + size_t(k) * K + p]);
    r.per_class.push_back(total ? double(r.confusion[k][k]) / total : 0.0);
  }
  return r;
}

// What must be identical for a resumed run to continue the same run.
nlohmann::json recipe_of(const ViTConfig& c, const TrainOptions& o, const std::string& data_desc, int ranks) {
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
          {"weight_init", o.weight_init == WeightInit::Jax ? "jax" : "timm"},
          {"ranks", ranks}};
}

void check_same(const std::string& ckpt, const std::string& what, const nlohmann::json& had,
                const nlohmann::json& now) {
  if (had != now)
    fail(ckpt, ": checkpoint was made with a different ", what, " (", had.dump(), ", now ", now.dump(),
         "); resume with the same settings or start afresh without --resume");
}

// Field by field, so that a changed --attention or width is named, not the whole config.
void check_same_model(const std::string& ckpt, const nlohmann::json& had, const nlohmann::json& want) {
  for (auto& [key, value] : want.items()) check_same(ckpt, "model " + key, had.value(key, nlohmann::json()), value);
}

void check_resumable(const std::string& ckpt, const nlohmann::json& got, const nlohmann::json& want) {
  // A run continues under the number of processes that began it: from 4 on, the all-reduce
  // may add the ranks' sums in another order than one process's tree (1 and 2 agree bit for
  // bit, but one rule is simpler to state). Checkpoints without "ranks" come from one
  // process, those without "weight_init" from before jax became the default.
  const int was = got.value("ranks", 1), now = want.at("ranks").get<int>();
  if (was != now)
    fail(ckpt, ": checkpoint was made by ", was, was == 1 ? " process" : " processes", ", this run has ", now,
         "; resume it with the same number (", was == 1 ? "without mpirun" : cat("mpirun -np ", was),
         ") or start afresh without --resume");
  for (auto& [key, value] : want.items()) {
    const nlohmann::json had = got.value(key, key == "weight_init" ? nlohmann::json("timm") : nlohmann::json());
    if (key == "model" && had.is_object()) check_same_model(ckpt, had, value);
    if (key != "ranks") check_same(ckpt, key, had, value);
  }
}

void write_log(const std::string& path, const nlohmann::json& history) {
  std::string text;
  for (const auto& r : history) text += r.dump() + "\n";
  io::write_file_atomic(path, text);
}

// How many equal slices ("slots") a global batch of `batch` images is cut into for a model of
// `params` parameters under `ranks` processes. A slot's gradient is computed on one thread and
// the slots' gradients are added in a fixed pairwise tree, so a step's bits depend on the slot
// count alone: up to 16 slots (enough for 16 threads), a power of two dividing the batch,
// with at most 1 GiB of slot gradients. Every rank holds slots/ranks of them, a subtree of
// the tree; two ranks add their halves in one all-reduce, a + b, as one process adds the
// same two halves. So one process, any thread count and two ranks give the same bits. When
// ranks do not divide that count, each rank gets its own power of two.
int slot_count(int batch, size_t params, int ranks) {
  auto halvings = [&](int b) {
    int s = 1;
    while (s < 16 && b % (2 * s) == 0 && 2.0 * s * double(params) * sizeof(float) <= double(1 << 30)) s *= 2;
    return s;
  };
  const int s = halvings(batch);
  return s % ranks == 0 ? s : ranks * halvings(batch / ranks);
}

// Images per forward and backward pass in a slot: as many as fit in `rows` rows (images x
// tokens), at least one, dividing the slot. A whole slot at once writes megabytes of
// activations (1.2 MB per image of the default model) before reading them back, far past a
// core's L2 cache (1 MB on Zen 4); passes of 4 images made a training step of the default model
// 4-12% faster than passes of its 8 in two sets of interleaved runs (attention's products gained
// most), passes of 2 a little less. The parameter gradients continue their sums over the slot's
// rows from pass to pass (linear_backward), so a slot's gradient has the bits of one pass over
// all its images.
int images_per_pass(int per_slot, int tokens, int rows) {
  int best = 1;
  for (int k = 1; k <= per_slot; ++k)
    if (per_slot % k == 0 && long(k) * tokens <= rows) best = k;
  return best;
}

// Adds rows 1.. of `rows` (count a power of two, `stride` floats apart, n used) into row 0 by
// the pairwise tree ((0 + 1) + (2 + 3)) + ...
void tree_sum(float* rows, int count, size_t stride, size_t n) {
  constexpr size_t kChunk = 1 << 12;
#pragma omp parallel for schedule(static)
  for (size_t c0 = 0; c0 < n; c0 += kChunk) {
    const size_t c1 = std::min(n, c0 + kChunk);
    for (int step = 1; step < count; step *= 2)
      for (int i = 0; i + step < count; i += 2 * step) {
        float* dst = rows + size_t(i) * stride;
        const float* src = rows + size_t(i + step) * stride;
#pragma omp simd
        for (size_t k = c0; k < c1; ++k) dst[k] += src[k];
      }
  }
}

// One rank's part of a data-parallel optimiser step on a global batch: forward and backward of
// its slots, the slots' gradients added (see slot_count), one all-reduce summing the ranks'
// gradients (with the batch's loss, correct count and any rank's interruption riding at the
// end of the same buffer), then clipping and AdamW, identical on every rank, so the ranks'
// weights stay identical.
class Stepper {
 public:
  Stepper(ViT& m, const TrainOptions& o, const AdamWConfig& opt, const dist::Comm& comm)
      : adam_m(m.params.size(), 0.0f),
        adam_v(m.params.size(), 0.0f),
        m_(m),
        o_(o),
        opt_(opt),
        comm_(comm),
        slots_(slot_count(o.batch, m.params.size(), comm.size())),
        local_slots_(slots_ / comm.size()),
        per_slot_(o.batch / slots_),
        per_pass_(images_per_pass(per_slot_, m.cfg.tokens(), o.pass_rows)),
        stride_((m.params.size() + 3 + 15) / 16 * 16),
        grads_(size_t(local_slots_) * stride_),
        workers_(max_threads()) {}

  // The batch at st.position of `order` (the epoch's order of d).
  void step(const Dataset& d, const uint32_t* order, int epoch, TrainState& st) {
    const ViTConfig& c = m_.cfg;
    const size_t n = m_.params.size();
    const long image_floats = long(c.in_chans) * c.image_size * c.image_size;
    parallel_tasks(local_slots_, [&](int j, int thread) {
      ThreadBuffers& w = workers_[thread];
      w.act.keep_all = true;
      w.fit(c, per_slot_);
      const long first = st.position * o_.batch + long(comm_.rank() * local_slots_ + j) * per_slot_;
      make_batch(d, order + first, per_slot_, o_.augment, o_.seed, epoch, first, c.preprocess, w.pixels.data(),
                 w.labels.data());
      float* g = grads_.data() + size_t(j) * stride_;
      std::fill(g, g + n, 0.0f);
      double loss = 0;
      int right = 0;
      for (int i = 0; i < per_slot_; i += per_pass_) {
        vit_forward(m_, w.pixels.data() + i * image_floats, per_pass_, w.act);
        // dlogits are of the slot's mean loss; the batch's mean is their mean over the slots.
        cross_entropy_slice(w.act.logits, w.labels.data() + i, per_pass_, per_slot_, c.num_classes,
                            o_.label_smoothing, w.dlogits.data(), &loss, &right);
        for (long k = 0; k < long(per_pass_) * c.num_classes; ++k) w.dlogits[k] /= float(slots_);
        vit_backward(m_, w.dlogits.data(), w.act, g, w.bw);
      }
      g[n] = float(loss / per_slot_), g[n + 1] = float(right), g[n + 2] = 0.0f;
    });
    tree_sum(grads_.data(), local_slots_, stride_, n + 3);
    float* grads = grads_.data();
    stop_requested = interrupted();
    if (comm_.size() > 1) {
      grads[n + 2] = stop_requested;
      if (sync) {
        const auto t0 = Clock::now();
        comm_.barrier();
        wait_s += seconds_since(t0);
      }
      const auto t0 = Clock::now();
      comm_.allreduce_sum(grads, n + 3);
      allreduce_s += seconds_since(t0);
      stop_requested = grads[n + 2] > 0;
    }
    // Every rank holds the same summed loss here, so all of them stop together.
    if (!std::isfinite(grads[n]))
      throw dist::AgreedError(cat("training diverged at step ", st.step + 1, " (epoch ", epoch + 1, "): the loss is ",
                                  std::isnan(grads[n]) ? "NaN" : "infinite", "; lower --lr (", opt_.lr,
                                  ") or keep --clip on"));
    st.loss_sum += grads[n] / slots_, st.correct += std::lround(grads[n + 1]), st.seen += o_.batch;
    clip_grad_norm(grads, n, opt_.clip);
    const float lr = lr_at(opt_, st.step);
    ++st.step;
    adamw_step(m_.layout, m_.params.data(), grads, adam_m.data(), adam_v.data(), st.step, lr, opt_);
  }

  std::vector<float> adam_m, adam_v;
  bool stop_requested = false;  // Ctrl-C or SIGTERM on any rank during the last step
  double allreduce_s = 0, wait_s = 0;
  bool sync = false;  // barrier before the all-reduce, so that its time is the transfer alone

 private:
  ViT& m_;
  const TrainOptions& o_;
  const AdamWConfig& opt_;
  const dist::Comm& comm_;
  int slots_, local_slots_, per_slot_, per_pass_;
  size_t stride_;
  // This rank's slots' gradients, each followed by the slot's loss, correct count and (after
  // the tree) the interruption flag; the tree and the all-reduce leave the batch's in slot 0.
  std::vector<float> grads_;
  std::vector<ThreadBuffers> workers_;
};

// Ranks stop together, or their collectives would no longer match.
bool interrupted_anywhere(const dist::Comm& comm) {
  double any = interrupted();
  comm.allreduce_sum(&any, 1);
  return any > 0;
}

nlohmann::json data_checksums(const DataSplits& d) {
  nlohmann::json sums = nlohmann::json::array();
  for (const Dataset* s : {&d.train, &d.test})
    sums.push_back({dist::checksum(s->pixels.data(), s->pixels.size()),
                    dist::checksum(s->labels.data(), s->labels.size() * sizeof(int32_t))});
  return sums;
}

}  // namespace

// Batches are built at the model's input size: images of another size would overrun them.
void check_images_fit(const Dataset& d, const ViTConfig& c, const std::string& what) {
  if (d.height != c.image_size || d.width != c.image_size || d.channels != c.in_chans)
    fail(what, ": images are ", d.width, "x", d.height, "x", d.channels, ", the model takes ", c.image_size, "x",
         c.image_size, "x", c.in_chans);
}

EvalResult evaluate(const ViT& m, const Dataset& d, const std::string& what, int batch) {
  check_images_fit(d, m.cfg, what);
  if (d.num_classes() != m.cfg.num_classes)
    fail(what, ": data has ", d.num_classes(), " classes, the model ", m.cfg.num_classes);
  return evaluate_impl(m, d, batch, dist::single_process());
}

std::string checkpoint_path(const std::string& out) { return out + "/checkpoint.safetensors"; }

std::vector<nlohmann::json> train(const ViTConfig& c0, const TrainOptions& o) {
  const dist::Comm& comm = dist::world();
  const int ranks = comm.size();
  const bool writer = comm.rank() == 0;  // the one process that prints and writes files

  // Each rank loads the data itself; a problem on any rank stops them all.
  DataSplits loaded;
  const DataSplits& data = o.preloaded ? *o.preloaded : loaded;
  dist::collectively(comm, [&] {
    if (o.batch % ranks != 0)
      fail("--batch ", o.batch, " is the global batch, split evenly over the ", ranks,
           " processes: make it a multiple of ", ranks);
    if (!o.preloaded) loaded = load_data(o.data, o.limit_train, o.limit_test);
    const Dataset& tr = data.train;
    check_images_fit(tr, c0, o.data);
    if (o.batch > tr.count) fail("--batch ", o.batch, " is larger than the training set (", tr.count, " images)");
  });
  const Dataset& tr = data.train;
  ViTConfig c = c0;
  if (tr.num_classes() != c.num_classes) c.num_classes = tr.num_classes();
  c.class_names = tr.class_names;

  const long steps_per_epoch = tr.count / o.batch;  // the last partial batch is dropped, as timm does
  AdamWConfig opt = o.opt;
  opt.total_steps = steps_per_epoch * o.epochs;
  opt.warmup_steps = long(o.warmup_epochs * steps_per_epoch);

  const std::string ckpt = checkpoint_path(o.out), model_path = o.out + "/model.safetensors",
                    log_path = o.out + "/log.jsonl";

  TrainState st;
  st.recipe = recipe_of(c, o, data.description, ranks);
  if (ranks > 1) {
    nlohmann::json mine = st.recipe;
    mine["data_checksums"] = data_checksums(data);
    dist::require_same(comm, mine, "every process must run the same command on the same data");
  }

  ViT m(c);
  Stepper stepper(m, o, opt, comm);
  dist::collectively(comm, [&] {
    if (!writer) return;
    std::filesystem::create_directories(o.out);
    if (o.resume && std::filesystem::exists(ckpt)) {
      const nlohmann::json want = st.recipe;
      // Before its tensors are read: a model of another shape would fail there, less clearly.
      check_same_model(ckpt, config_to_json(checkpoint_config(ckpt)), want.at("model"));
      load_checkpoint(ckpt, m, stepper.adam_m, stepper.adam_v, st);
      check_resumable(ckpt, st.recipe, want);
      std::fprintf(stderr, "resuming %s at epoch %d, step %ld\n", ckpt.c_str(), st.epoch + 1, st.step);
    } else {
      if (std::filesystem::exists(ckpt) && !o.resume)
        std::fprintf(stderr, "note: %s exists; starting afresh (use --resume to continue it)\n", ckpt.c_str());
      init_params(m, o.seed, o.merged_init, o.weight_init);
    }
  });
  if (ranks > 1) {  // every rank continues from rank 0's weights, moments and place in the run
    for (std::vector<float>* v : {&m.params, &stepper.adam_m, &stepper.adam_v})
      comm.broadcast(v->data(), v->size() * sizeof(float), 0);
    st = state_from_json(dist::broadcast_json(comm, state_to_json(st)), "rank 0's training state");
  }

  // Rank 0 writes the state of every rank: first check that they are the same.
  auto save = [&] {
    if (ranks > 1)
      dist::require_same(comm, {{"weights_crc32", dist::checksum(m.params.data(), m.params.size() * sizeof(float))}},
                         cat("the ranks' weights diverged by step ", st.step));
    if (writer) save_checkpoint(ckpt, m, stepper.adam_m, stepper.adam_v, st);
  };

  while (st.epoch < o.epochs) {
    if (interrupted_anywhere(comm)) throw Interrupted(cat("interrupted; ", ckpt, " is saved: --resume continues it"));
    const std::vector<uint32_t> order = epoch_order(tr.count, o.seed, st.epoch);
    Progress bar("epoch " + std::to_string(st.epoch + 1) + "/" + std::to_string(o.epochs), steps_per_epoch,
                 o.progress && writer);
    const auto t0 = Clock::now();
    long images = 0;
    stepper.allreduce_s = 0;
    for (; st.position < steps_per_epoch; ++st.position) {
      stepper.step(tr, order.data(), st.epoch, st);
      images += o.batch;
      char extra[96];
      std::snprintf(extra, sizeof extra, "loss %.4f  %.0f img/s", st.loss_sum / (st.position + 1),
                    images / seconds_since(t0));
      bar.update(st.position + 1, extra);
      const bool stop = stepper.stop_requested;
      if ((stop || (o.save_every > 0 && st.step % o.save_every == 0)) && st.position + 1 < steps_per_epoch) {
        ++st.position;  // the checkpoint says where to continue
        save();
        if (stop) throw Interrupted(cat("interrupted; ", ckpt, " is saved: --resume continues it"));
        --st.position;
      }
    }
    const double train_secs = seconds_since(t0);
    const EvalResult ev = evaluate_impl(m, data.test, 256, comm);
    nlohmann::json rec = {{"epoch", st.epoch + 1},
                          {"step", st.step},
                          {"train_loss", st.loss_sum / steps_per_epoch},
                          {"train_acc", st.seen ? double(st.correct) / st.seen : 0.0},
                          {"test_loss", ev.loss},
                          {"test_acc", ev.accuracy},
                          {"images_per_s", images > 0 ? images / train_secs : 0.0},
                          {"lr", lr_at(opt, st.step - 1)}};
    if (ranks > 1) rec["ranks"] = ranks, rec["allreduce_s"] = stepper.allreduce_s;
    char extra[128];
    std::snprintf(extra, sizeof extra, "loss %.4f  test %.2f%%", st.loss_sum / steps_per_epoch, 100 * ev.accuracy);
    bar.finish(extra);
    st.history.push_back(rec);
    ++st.epoch;
    st.position = 0, st.loss_sum = 0, st.correct = 0, st.seen = 0;
    // Checkpoint first: log.jsonl and model.safetensors are rebuilt from it if we die here.
    save();
    if (writer) write_log(log_path, st.history), io::save_model(model_path, m);
  }
  // A run that died after its last checkpoint, resumed, still leaves a complete log and model.
  if (writer) write_log(log_path, st.history), io::save_model(model_path, m);
  return std::vector<nlohmann::json>(st.history.begin(), st.history.end());
}

TrainBench bench_training(const ViTConfig& c, int batch, int steps, int warmup) {
  const dist::Comm& comm = dist::world();
  dist::collectively(comm, [&] {
    if (batch % comm.size() != 0)
      fail("--batch ", batch, " is the global batch: make it a multiple of the ", comm.size(), " processes");
  });
  // Random pixels and labels: the speed does not depend on what the images show.
  Dataset d;
  d.count = batch, d.channels = c.in_chans, d.height = d.width = c.image_size;
  d.pixels.resize(size_t(batch) * d.image_bytes());
  Rng rng(7);
  for (uint8_t& p : d.pixels) p = uint8_t(rng.below(256));
  for (int i = 0; i < batch; ++i) d.labels.push_back(int32_t(rng.below(uint32_t(c.num_classes))));
  ViT m(c);
  init_params(m, 1);
  TrainOptions o;
  o.batch = batch;
  AdamWConfig opt = o.opt;
  opt.total_steps = warmup + steps;
  Stepper stepper(m, o, opt, comm);
  stepper.sync = true;
  std::vector<uint32_t> order(batch);
  std::iota(order.begin(), order.end(), 0u);
  TrainState st;
  for (int i = 0; i < warmup; ++i) stepper.step(d, order.data(), 0, st);
  stepper.allreduce_s = stepper.wait_s = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) stepper.step(d, order.data(), 0, st);
  const double total = seconds_since(t0);
  TrainBench r;
  r.ranks = comm.size(), r.threads = max_threads(), r.batch = batch, r.steps = steps, r.params = m.params.size();
  r.step_s = total / steps, r.wait_s = stepper.wait_s / steps, r.allreduce_s = stepper.allreduce_s / steps;
  return r;
}

}  // namespace vitqk
