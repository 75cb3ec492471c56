#include "src/Checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
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
  commitFile(tmp, path);  // readers see the old or the new file, never half of one
}

void syncPath(const std::string& path, bool folder) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (folder ? O_DIRECTORY : 0));
  if (fd < 0) throw std::runtime_error(path + ": cannot open to sync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some filesystems cannot sync a folder (EINVAL); the file itself is on disk by then.
  if (rc != 0 && !(folder && (err == EINVAL || err == EROFS)))
    throw std::runtime_error(path + ": fsync failed: " + std::strerror(err));
}


std::string shapeString(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

void commitFile(const std::string& tmp, const std::string& path) {
  syncPath(tmp, false);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw std::runtime_error(path + ": cannot rename " + tmp + " to it: " + ec.message());
  const fs::path parent = fs::path(path).parent_path();
  syncPath(parent.empty() ? std::string(".") : parent.string(), true);
}

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

c10::Device modelDevice(const torch::nn::Module& model) {
  for (const auto& p : model.parameters()) return p.device();
  for (const auto& b : model.buffers()) return b.device();
  return c10::Device(c10::kCPU);
}

void exportStateDict(const std::string& path, const torch::nn::Module& model) {
  std::vector<std::pair<std::string, at::Tensor>> entries;
  for (const auto& kv : model.named_parameters(true)) entries.emplace_back(kv.key(), kv.value());
  for (const auto& kv : model.named_buffers(true)) entries.emplace_back(kv.key(), kv.value());
  const std::vector<char> bytes = stateDictBytes(entries);
  atomicWrite(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error(tmp + ": write failed");
  });
}


StateDictReport importStateDict(const std::string& path, torch::nn::Module& model) {
  const auto entries = readStateDict(path);
  std::map<std::string, at::Tensor> src;
  for (const auto& [k, t] : entries) src[k] = t;

  std::vector<std::pair<std::string, at::Tensor>> dsts;
  for (auto& kv : model.named_parameters(true)) dsts.emplace_back(kv.key(), kv.value());
  for (auto& kv : model.named_buffers(true)) dsts.emplace_back(kv.key(), kv.value());

  // DDP-wrapped models save "module.<name>": strip the prefix when only it stands in the way.
  const std::string ddp = "module.";
  bool allPrefixed = !src.empty();
  for (const auto& kv : src) allPrefixed = allPrefixed && kv.first.rfind(ddp, 0) == 0;
  bool modelPrefixed = false;
  for (const auto& d : dsts) modelPrefixed = modelPrefixed || d.first.rfind(ddp, 0) == 0;
  if (allPrefixed && !modelPrefixed) {
    std::map<std::string, at::Tensor> stripped;
    for (auto& kv : src) stripped[kv.first.substr(ddp.size())] = kv.second;
    src.swap(stripped);
  }

  StateDictReport r;
  torch::NoGradGuard ng;
  for (auto& [name, dst] : dsts) {
    auto it = src.find(name);
    if (it == src.end()) {
      r.missing.push_back(name);
      continue;
    }
    if (it->second.sizes() != dst.sizes()) {
      r.shapeMismatch.push_back(name + ": file " + shapeString(it->second.sizes()) + " vs model " +
                                shapeString(dst.sizes()));
    } else {
      dst.copy_(it->second);
      ++r.loaded;
    }
    src.erase(it);
  }
  // Unexpected keys in file order.
  for (const auto& [k, t] : entries) {
    std::string key = (allPrefixed && !modelPrefixed) ? k.substr(ddp.size()) : k;
    if (src.count(key)) r.unexpected.push_back(key);
  }
  return r;
}

}  // namespace slidetrain
