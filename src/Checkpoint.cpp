#include "src/Checkpoint.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <torch/serialize.h>
#include <torch/serialize/archive.h>

namespace fs = std::filesystem;

namespace slidetrain {

namespace {

void atomicWrite(const std::string& path, const std::function<void(const std::string&)>& write) {
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  const std::string tmp = path + ".tmp";
  write(tmp);
  fs::rename(tmp, path);  // readers see the old or the new file, never half of one
}

}  // namespace

void saveCheckpoint(const std::string& path, torch::nn::Module& model,
                    torch::optim::Optimizer* optimizer, const TrainProgress& progress) {
  atomicWrite(path, [&](const std::string& tmp) {
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
    ar.load_from(path);
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

void exportStateDict(const std::string& path, const torch::nn::Module& model) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& kv : model.named_parameters(true)) dict.insert(kv.key(), kv.value().detach().cpu());
  for (const auto& kv : model.named_buffers(true)) dict.insert(kv.key(), kv.value().detach().cpu());
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  atomicWrite(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error(tmp + ": write failed");
  });
}

StateDictReport importStateDict(const std::string& path, torch::nn::Module& model) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open state_dict file");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue v;
  try {
    v = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a PyTorch state_dict file: " + e.what_without_backtrace());
  }
  if (!v.isGenericDict()) throw std::runtime_error(path + ": expected a dict of tensors");
  std::map<std::string, at::Tensor> src;
  for (const auto& kv : v.toGenericDict()) {
    if (kv.key().isString() && kv.value().isTensor())
      src[kv.key().toStringRef()] = kv.value().toTensor();
  }
  StateDictReport r;
  torch::NoGradGuard ng;
  auto copyInto = [&](const std::string& name, at::Tensor& dst) {
    auto it = src.find(name);
    if (it == src.end()) {
      r.missing.push_back(name);
      return;
    }
    if (it->second.sizes() != dst.sizes()) {
      r.shapeMismatch.push_back(name);
    } else {
      dst.copy_(it->second);
    }
    src.erase(it);
  };
  for (auto& kv : model.named_parameters(true)) copyInto(kv.key(), kv.value());
  for (auto& kv : model.named_buffers(true)) copyInto(kv.key(), kv.value());
  for (const auto& kv : src) r.unexpected.push_back(kv.first);
  return r;
}

}  // namespace slidetrain
