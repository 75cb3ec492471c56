// Weights as PyTorch state_dict files: export (the bytes come from StateDictWriter.cpp), import
// by name into a built model; the reader of the format is StateDictReader.cpp.
#include "src/models/StateDict.h"

#include <fstream>
#include <map>
#include <stdexcept>

#include <torch/nn/module.h>
#include <torch/utils.h>

#include "src/runtime/DurableFile.h"

namespace slidetrain {

namespace {

std::string shapeString(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

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
  writeFileDurably(path, [&](const std::string& tmp) {
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
