#pragma once
// Resumable training state. A training checkpoint (checkpoints/last.pt, best.pt) holds the
// model, the optimizer state, the progress counters (epoch, optimizer step, stream position in
// the epoch), the early-stopping bookkeeping, the fp16 loss scaler's state and torch's CPU
// generator state. Its "model",
// "optimizer", "epoch", "step" and "step_in_epoch" entries are those of src/train/Checkpoint.h, so
// loadCheckpoint (predict) reads it too. Written by rank 0 (temporary file, fsync, rename, fsync
// of the directory); on resume rank 0 reads it and broadcasts the bytes, so the other ranks never
// read the shared filesystem (and never see a different file).
#include <cstdint>
#include <limits>
#include <string>

#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

namespace slidetrain {
namespace dist {
class Comm;
}

struct TrainState {
  int64_t epoch = 0;        ///< epoch to run next (or being run when stepInEpoch > 0)
  int64_t step = 0;         ///< optimizer steps done in total (the schedule position)
  int64_t stepInEpoch = 0;  ///< global micro-batches of `epoch` already consumed
  double bestMetric = std::numeric_limits<double>::quiet_NaN();  ///< NaN: none yet
  int64_t bestEpoch = 0;    ///< 1-based epoch of bestMetric (0: none)
  int64_t badEpochs = 0;    ///< epochs since the monitored metric last improved
  bool finished = false;    ///< training ended (max steps, epochs or early stopping)
  double lossScale = 0;     ///< fp16 loss scaler's scale (0: no scaler)
  int64_t lossScaleCleanSteps = 0;  ///< its clean steps since the scale last changed
  std::string fingerprint;  ///< serializeFingerprint of the run (src/train/RunFingerprint.h); "" = none
};

/// A checkpoint's bytes and the file they came from (for messages). Empty path: none.
struct CheckpointFile {
  std::string path;
  std::string bytes;
};
/// Reads the whole file. Throws std::runtime_error naming it.
CheckpointFile readCheckpointFile(const std::string& path);
/// Collective over `host`: rank 0 picks the checkpoint for train.resume (resumePath) and reads
/// it, every rank receives the path and the bytes (broadcast in pieces of at most 256 MiB).
/// An error on rank 0 (no such file, unreadable) is thrown on every rank, rank 0's naming the file.
CheckpointFile shareResumeCheckpoint(const std::string& resume, const std::string& runDir, dist::Comm& host);

/// Writes model, optimizer, state and the CPU RNG state to `path` (temporary file, fsync,
/// rename, fsync of the directory: after a crash the file is the old or the new one, complete).
void saveTrainState(const std::string& path, torch::nn::Module& model,
                    torch::optim::Optimizer& optimizer, const TrainState& state);
/// Reads all of it back into an already-built model and optimizer and restores the CPU RNG.
/// Throws std::runtime_error naming the file.
TrainState loadTrainState(const CheckpointFile& file, torch::nn::Module& model,
                          torch::optim::Optimizer& optimizer);

/// Epoch, stream position and fingerprint of a training checkpoint without loading the rest (to
/// check it and prepare the model, e.g. unfreeze layers, before the optimizer is built).
TrainState peekTrainState(const CheckpointFile& file);

/// The checkpoint to resume from for train.resume (`auto`: <run_dir>/checkpoints/last.pt when it
/// exists; `none`; or a path, which must exist). Empty: start fresh.
std::string resumePath(const std::string& resume, const std::string& runDir);

}  // namespace slidetrain
