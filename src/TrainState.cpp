#include "src/TrainState.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ATen.h>
#include <torch/serialize.h>
#include <torch/serialize/archive.h>

#include "src/Checkpoint.h"
#include "src/Errors.h"

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
  fs::rename(tmp, path);  // readers see the old or the new file, never half of one
}

TrainState loadTrainState(const std::string& path, torch::nn::Module& model,
                          torch::optim::Optimizer& optimizer) {
  if (!fs::exists(path)) throw std::runtime_error(path + ": checkpoint not found");
  TrainState s;
  try {
    torch::serialize::InputArchive ar, modelAr, optAr;
    ar.load_from(path, modelDevice(model));  // model and optimizer state on the model's device
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

TrainState peekTrainState(const std::string& path) {
  TrainState s;
  try {
    torch::serialize::InputArchive ar;
    ar.load_from(path);
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
