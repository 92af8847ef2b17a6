#include "measure/peers.h"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace vitqk {

namespace {

namespace fs = std::filesystem;

std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string last_line(const std::string& text) {
  std::string line, last;
  std::istringstream in(text);
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  return last;
}

// Runs `command` (a shell command line) with stdout and stderr captured in work_dir; the
// peer's JSON result, or its error.
PeerResult run_peer(const std::string& engine, const std::string& command, const std::string& work_dir,
                    const std::string& tag) {
  PeerResult r;
  r.engine = engine;
  const std::string out = work_dir + "/" + tag + ".json", err = work_dir + "/" + tag + ".err";
  const int rc = std::system((command + " > " + quoted(out) + " 2> " + quoted(err)).c_str());
  if (rc != 0) {
    const std::string why = last_line(slurp(err));
    r.error = why.empty() ? cat("exited with status ", WIFEXITED(rc) ? WEXITSTATUS(rc) : rc) : why;
    return r;
  }
  try {
    const auto j = nlohmann::json::parse(last_line(slurp(out)));
    r.version = j.at("version").get<std::string>();
    r.setup = j.at("setup").get<std::string>();
    r.median_ms = j.at("median_ms").get<double>();
    r.logits = j.at("logits").get<std::vector<float>>();
  } catch (const std::exception& e) {
    r.error = cat("unreadable result (", e.what(), ")");
  }
  return r;
}

}  // namespace

PeerResult run_pytorch(const PeerJob& j) {
  const std::string script = j.tools_dir + "/torch_bench.py";
  if (!fs::exists(script)) return {"PyTorch", "", "", 0, {}, cat(script, " not found (give --peers-dir)")};
  if (!fs::exists("/usr/bin/python3"))
    return {"PyTorch", "", "", 0, {}, "/usr/bin/python3 not found: scripts/install-deps.sh --peers"};
  const std::string args = cat(" --model ", quoted(j.work_dir + "/model.safetensors"), " --input ",
                               quoted(j.work_dir + "/input.safetensors"), " --threads ", j.threads, " --runs ",
                               j.runs, " --warmup ", j.warmup);
  // PyTorch's best set-up here: OpenBLAS's OpenMP build (one thread pool with ATen's), its
  // threads, and malloc thresholds high enough that activations are not mmapped and
  // returned to the kernel on every call.
  const std::string env = cat("env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_NUM_THREADS=",
                              j.threads, " MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 ");
  PeerResult best;
  for (const char* core : {"Haswell", "SkylakeX"}) {
    const bool first = best.engine.empty();
    const std::string onnx = first ? " --onnx " + quoted(j.work_dir + "/model.onnx") : "";
    PeerResult r = run_peer("PyTorch", env + "OPENBLAS_CORETYPE=" + core + " /usr/bin/python3 " + quoted(script) + args + onnx,
                            j.work_dir, cat("torch_", core));
    if (first || (r.ok() && (!best.ok() || r.median_ms < best.median_ms))) best = std::move(r);
  }
  if (!best.ok() && best.error.find("No module named") != std::string::npos)
    best.error += " (scripts/install-deps.sh --peers installs PyTorch)";
  return best;
}

PeerResult run_onnxruntime(const PeerJob& j) {
  const std::string script = j.tools_dir + "/ort_bench.js";
  if (!fs::exists(j.tools_dir + "/node_modules/onnxruntime-node"))
    return {"ONNX Runtime", "", "", 0, {},
            cat("onnxruntime-node not installed: (cd ", j.tools_dir, " && npm install --ignore-scripts)")};
  if (!fs::exists(j.work_dir + "/model.onnx")) return {"ONNX Runtime", "", "", 0, {}, "no ONNX export (the PyTorch peer makes it)"};
  return run_peer("ONNX Runtime",
                  cat("node ", quoted(script), " --model ", quoted(j.work_dir + "/model.onnx"), " --input ",
                      quoted(j.work_dir + "/input.safetensors"), " --threads ", j.threads, " --runs ", j.runs,
                      " --warmup ", j.warmup),
                  j.work_dir, "ort");
}

ScratchDir::ScratchDir() {
  std::string tmpl = (fs::temp_directory_path() / "vitqk-peers-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) fail(tmpl, ": cannot create a temporary directory");
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace vitqk
