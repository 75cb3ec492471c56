#pragma once
// Launcher environment: the ONE place that reads OpenMPI, SLURM and torchrun variables.
#include <string>

namespace slidetrain::dist {

struct LaunchEnv {
  int rank = 0;
  int worldSize = 1;
  int localRank = -1;  ///< -1: no variable said it (filled from MPI_Comm_split_type later)
  int localSize = -1;
  std::string source = "none";  ///< "openmpi", "slurm", "torchrun" or "none"
};

/// Reads OMPI_COMM_WORLD_*, SLURM_* (PROCID, LOCALID, NTASKS) and RANK/LOCAL_RANK/WORLD_SIZE.
/// Throws DistError when variables disagree with each other.
LaunchEnv readLaunchEnv();

}  // namespace slidetrain::dist
