#pragma once
// Weights as PyTorch state_dict files (parameter names as torchvision's), read and written without
// Python: Python's torch.load reads what exportStateDict writes, and readStateDict reads
// torch.save's files.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

namespace slidetrain {

/// Where the module's first parameter (else buffer) lives; the CPU for an empty module.
c10::Device modelDevice(const torch::nn::Module& model);

/// Writes parameters and buffers as the OrderedDict Python's torch.save writes for
/// model.state_dict() (stateDictBytes): plain torch.load reads it, weights_only included.
void exportStateDict(const std::string& path, const torch::nn::Module& model);
/// torch.save's zip bytes of OrderedDict(entries) (tensors copied to the CPU, contiguous).
std::vector<char> stateDictBytes(const std::vector<std::pair<std::string, at::Tensor>>& entries);

/// The (name, tensor) entries of a state_dict file, in file order: torch.save's zip format
/// (PyTorch >= 1.6, any pickle protocol; OrderedDict, Parameter and shared/strided storages
/// handled) and exportStateDict's. A dict nested under "state_dict", "model" or
/// "model_state_dict" is used when the top level holds no tensors; non-tensor entries are
/// dropped. Throws std::runtime_error naming the file (legacy pre-1.6 files are refused with a
/// hint to re-save them).
std::vector<std::pair<std::string, at::Tensor>> readStateDict(const std::string& path);

/// Copies the tensors of a state_dict file (readStateDict) into `model` by name; a "module."
/// prefix (DDP) is stripped when the model has no such names. Tensors whose shape differs are
/// not copied. The model's tensors absent from the file are `missing`, the file's absent from
/// the model `unexpected`; `loaded` counts the copied ones.
struct StateDictReport {
  std::vector<std::string> missing, unexpected;
  std::vector<std::string> shapeMismatch;  ///< "name: file [a, b] vs model [c, d]"
  int64_t loaded = 0;
};
StateDictReport importStateDict(const std::string& path, torch::nn::Module& model);

}  // namespace slidetrain
