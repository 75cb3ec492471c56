#include "src/train/Checkpoint.h"

#include "src/models/StateDict.h"
#include "src/runtime/DurableFile.h"

#include <filesystem>
#include <stdexcept>

#include <torch/serialize.h>
#include <torch/serialize/archive.h>

namespace fs = std::filesystem;

namespace slidetrain {

void saveCheckpoint(const std::string& path, torch::nn::Module& model,
                    torch::optim::Optimizer* optimizer, const TrainProgress& progress) {
  writeFileDurably(path, [&](const std::string& tmp) {
    torch::serialize::OutputArchive ar;
    torch::serialize::OutputArchive modelAr, optAr;
    model.save(modelAr);
    ar.write("model", modelAr);
    if (optimizer) {
      optimizer->save(optAr);
      ar.write("optimizer", optAr);
    }
    ar.write("epoch", at::tensor(progress.epoch));
    ar.write("step", at::tensor(progress.step));
    ar.write("step_in_epoch", at::tensor(progress.stepInEpoch));
    ar.save_to(tmp);
  });
}

TrainProgress loadCheckpoint(const std::string& path, torch::nn::Module& model,
                             torch::optim::Optimizer* optimizer) {
  if (!fs::exists(path)) throw std::runtime_error(path + ": checkpoint not found");
  TrainProgress p;
  try {
    torch::serialize::InputArchive ar;
    ar.load_from(path, modelDevice(model));  // else a CUDA model's tensors would become CPU ones
    torch::serialize::InputArchive modelAr;
    ar.read("model", modelAr);
    model.load(modelAr);
    if (optimizer) {
      torch::serialize::InputArchive optAr;
      if (ar.try_read("optimizer", optAr)) optimizer->load(optAr);
    }
    at::Tensor t;
    ar.read("epoch", t);
    p.epoch = t.item<int64_t>();
    ar.read("step", t);
    p.step = t.item<int64_t>();
    ar.read("step_in_epoch", t);
    p.stepInEpoch = t.item<int64_t>();
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": cannot load checkpoint: " + e.what_without_backtrace());
  }
  return p;
}


}  // namespace slidetrain
