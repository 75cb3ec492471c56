#pragma once
// Checkpoints: model, optimizer and progress counters in one file written atomically and durably
// (temporary file, fsync, rename, fsync of the folder) by rank 0; weights exported as a PyTorch state_dict file
// (parameter names as PyTorch's) that Python's torch.load reads.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

namespace slidetrain {

struct TrainProgress {
  int64_t epoch = 0;       ///< epoch to run next (or being run when stepInEpoch > 0)
  int64_t step = 0;        ///< optimizer steps done in total
  int64_t stepInEpoch = 0; ///< global batches of `epoch` already consumed (stream position)
};

void saveCheckpoint(const std::string& path, torch::nn::Module& model,
                    torch::optim::Optimizer* optimizer, const TrainProgress& progress);
/// Makes `tmp` durable and puts it in place of `path`: fsync(tmp), rename, fsync of the folder
/// (a filesystem that cannot sync folders is tolerated). Throws naming the file.
void commitFile(const std::string& tmp, const std::string& path);

/// Loads into an already-built model (and optimizer when given). Throws naming the file.
TrainProgress loadCheckpoint(const std::string& path, torch::nn::Module& model,
                             torch::optim::Optimizer* optimizer);

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
