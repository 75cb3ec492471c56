#pragma once
// What a command (train, cv, predict) runs on: MPI, this rank's device and threads, and the two
// communication planes (distributed/Planes.h). One place, so every verb places the model and
// its tensors by the same rule.
#include <string>

#include <c10/core/Device.h>

#include "distributed/Planes.h"
#include "src/Config.h"

namespace slidetrain {

/// train.device: "cpu"; "cuda" (ConfigError naming the key when this libtorch has no CUDA or no
/// device is visible); "auto" = CUDA when available, else CPU. The CUDA device is the local rank
/// modulo the visible devices: with CUDA_VISIBLE_DEVICES (or SLURM's --gpus-per-task) each rank
/// sees only its own GPU and takes device 0 of what it sees.
c10::Device chooseDevice(const std::string& setting, int localRank);

/// Initialises MPI, sets the intra-op threads (threadPlanFor, printed by rank 0), turns on deterministic
/// algorithms when train.deterministic, picks the device (train.device) and builds the planes
/// (train.backend, train.timeout_s). Collective: every rank calls it once, first.
dist::Planes startRuntime(const Config& cfg);

/// train.deterministic: libtorch's deterministic algorithms (an op without one throws, naming
/// itself), deterministic cuDNN without benchmarking, and cuBLAS's fixed workspace
/// (CUBLAS_WORKSPACE_CONFIG=:4096:8 unless already set). Process-wide.
void setDeterministic(bool on);

}  // namespace slidetrain
