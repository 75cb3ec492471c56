#include "src/train/TrainState.h"

#include <cmath>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ATen.h>
#include <torch/serialize.h>
#include <torch/serialize/archive.h>

#include "src/models/StateDict.h"
#include "src/runtime/DurableFile.h"
#include "src/train/Checkpoint.h"
#include "distributed/Comm.h"
#include "src/config/Errors.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

at::Tensor textTensor(const std::string& s) {
  at::Tensor t = at::empty({static_cast<int64_t>(s.size())}, at::kByte);
  if (!s.empty()) std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}

std::string tensorText(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU).contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
}

}  // namespace

void saveTrainState(const std::string& path, torch::nn::Module& model,
                    torch::optim::Optimizer& optimizer, const TrainState& s) {
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  torch::serialize::OutputArchive ar, modelAr, optAr;
  model.save(modelAr);
  ar.write("model", modelAr);
  optimizer.save(optAr);
  ar.write("optimizer", optAr);
  ar.write("epoch", at::tensor(s.epoch));
  ar.write("step", at::tensor(s.step));
  ar.write("step_in_epoch", at::tensor(s.stepInEpoch));
  ar.write("best_metric", at::tensor(s.bestMetric, at::kDouble));
  ar.write("best_epoch", at::tensor(s.bestEpoch));
  ar.write("bad_epochs", at::tensor(s.badEpochs));
  ar.write("finished", at::tensor(static_cast<int64_t>(s.finished)));
  ar.write("loss_scale", at::tensor(s.lossScale, at::kDouble));
  ar.write("loss_scale_clean_steps", at::tensor(s.lossScaleCleanSteps));
  ar.write("fingerprint", textTensor(s.fingerprint));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    ar.write("rng_cpu", gen.get_state());
  }
  const std::string tmp = path + ".tmp";
  ar.save_to(tmp);
  commitFile(tmp, path);  // fsync, rename, fsync of the folder
}

CheckpointFile readCheckpointFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": checkpoint not found or not readable");
  CheckpointFile f;
  f.path = path;
  f.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error(path + ": read failed");
  return f;
}

CheckpointFile shareResumeCheckpoint(const std::string& resume, const std::string& runDir,
                                     dist::Comm& host) {
  CheckpointFile f;
  std::string error;
  if (host.rank() == 0) {
    try {
      f.path = resumePath(resume, runDir);
      if (!f.path.empty()) f = readCheckpointFile(f.path);
    } catch (const std::exception& e) {
      if (host.size() == 1) throw;
      error = e.what();
    }
  }
  if (host.size() == 1) return f;
  // [failed, path length, byte count], then the path, then the bytes in pieces.
  at::Tensor head = at::tensor({static_cast<int64_t>(!error.empty()), static_cast<int64_t>(f.path.size()),
                                static_cast<int64_t>(f.bytes.size())}, at::kLong);
  host.broadcast(head, 0);
  const int64_t* h = head.data_ptr<int64_t>();
  if (h[0] != 0) {
    if (host.rank() == 0) throw std::runtime_error(error);
    throw std::runtime_error("rank " + std::to_string(host.rank()) +
                             ": rank 0 could not read the checkpoint to resume from (its message names the file)");
  }
  auto share = [&](std::string& text, int64_t n) {
    text.resize(static_cast<size_t>(n));
    constexpr int64_t kPiece = int64_t{256} << 20;  // MPI counts are ints
    for (int64_t off = 0; off < n; off += kPiece) {
      const int64_t len = std::min(kPiece, n - off);
      at::Tensor piece = at::from_blob(text.data() + off, {len}, at::kByte);
      host.broadcast(piece, 0);
    }
  };
  share(f.path, h[1]);
  share(f.bytes, h[2]);
  return f;
}

TrainState loadTrainState(const CheckpointFile& file, torch::nn::Module& model,
                          torch::optim::Optimizer& optimizer) {
  const std::string& path = file.path;
  TrainState s;
  try {
    torch::serialize::InputArchive ar, modelAr, optAr;
    // Model and optimizer state on the model's device.
    ar.load_from(file.bytes.data(), file.bytes.size(), modelDevice(model));
    ar.read("model", modelAr);
    model.load(modelAr);
    if (!ar.try_read("optimizer", optAr))
      throw std::runtime_error(path + ": has no optimizer state (not a training checkpoint)");
    optimizer.load(optAr);
    auto readInt = [&](const char* key, int64_t fallback) {
      at::Tensor t;
      return ar.try_read(key, t) ? t.item<int64_t>() : fallback;
    };
    s.epoch = readInt("epoch", 0);
    s.step = readInt("step", 0);
    s.stepInEpoch = readInt("step_in_epoch", 0);
    s.bestEpoch = readInt("best_epoch", 0);
    s.badEpochs = readInt("bad_epochs", 0);
    s.finished = readInt("finished", 0) != 0;
    s.lossScaleCleanSteps = readInt("loss_scale_clean_steps", 0);
    // A fresh tensor per read: InputArchive::read set_()s into a defined tensor.
    at::Tensor best, rng, scale;
    if (ar.try_read("best_metric", best)) s.bestMetric = best.item<double>();
    if (ar.try_read("loss_scale", scale)) s.lossScale = scale.item<double>();
    if (ar.try_read("rng_cpu", rng)) {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng);
    }
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": cannot load checkpoint: " + e.what_without_backtrace());
  }
  return s;
}

TrainState peekTrainState(const CheckpointFile& file) {
  const std::string& path = file.path;
  TrainState s;
  try {
    torch::serialize::InputArchive ar;
    ar.load_from(file.bytes.data(), file.bytes.size());
    at::Tensor e, k;
    if (ar.try_read("epoch", e)) s.epoch = e.item<int64_t>();
    if (ar.try_read("step_in_epoch", k)) s.stepInEpoch = k.item<int64_t>();
    at::Tensor f;
    if (ar.try_read("fingerprint", f)) s.fingerprint = tensorText(f);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": cannot load checkpoint: " + e.what_without_backtrace());
  }
  return s;
}

std::string resumePath(const std::string& resume, const std::string& runDir) {
  if (resume.empty() || resume == "none") return "";
  if (resume == "auto") {
    const fs::path last = fs::path(runDir) / "checkpoints" / "last.pt";
    return fs::exists(last) ? last.string() : "";
  }
  if (!fs::exists(resume))
    throw ConfigError("train.resume: checkpoint '" + resume + "' does not exist");
  return resume;
}

}  // namespace slidetrain
