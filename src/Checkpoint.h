#pragma once
// Checkpoints: model, optimizer and progress counters in one file written atomically (temporary
// file + rename) by rank 0 and read by every rank; weights exported as a PyTorch state_dict file
// (parameter names as PyTorch's) that Python's torch.load reads.
#include <cstdint>
#include <string>

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
/// Loads into an already-built model (and optimizer when given). Throws naming the file.
TrainProgress loadCheckpoint(const std::string& path, torch::nn::Module& model,
                             torch::optim::Optimizer* optimizer);

/// Writes {name: tensor} of parameters and buffers with torch::pickle_save (torch.load-able).
void exportStateDict(const std::string& path, const torch::nn::Module& model);
/// Reads a state_dict file written by torch.save(model.state_dict()) or exportStateDict; copies
/// matching tensors into `model`. Returns the missing and unexpected key lists.
struct StateDictReport {
  std::vector<std::string> missing, unexpected, shapeMismatch;
};
StateDictReport importStateDict(const std::string& path, torch::nn::Module& model);

}  // namespace slidetrain
