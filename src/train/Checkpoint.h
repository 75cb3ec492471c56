#pragma once
// Training checkpoints: model, optimizer and progress counters in one file written atomically and
// durably (src/runtime/DurableFile.h) by rank 0. Plain weights files are src/models/StateDict.h.
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

}  // namespace slidetrain
