#pragma once
// `slidetrain train`: data-parallel training, one process per device, launched by mpirun.
#include "src/Config.h"
#include "src/ModelZoo.h"

namespace slidetrain {

/// Runs training as configured; returns the process exit code. Collective over MPI_COMM_WORLD.
int runTrain(const Config& cfg);

/// Torch intra-op threads for this rank: train.threads, else cores shared among local ranks.
int threadsPerRank(const Config& cfg, int localSize);

}  // namespace slidetrain
