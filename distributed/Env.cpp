// Launcher environment parsing: the only place in slidetrain that reads OMPI_*, SLURM_* and the
// torchrun variables, so "which launcher started us" has one answer.
#include "distributed/Env.h"

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>

#include "distributed/Comm.h"

namespace slidetrain::dist {
namespace {

/// Reads an integer variable; nullopt when unset or empty. Garbage is an error, not a default:
/// a typo in a launch script must not silently make every process rank 0.
std::optional<int> intVar(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (errno != 0 || *end != '\0' || x < 0 || x > 1 << 24)
    throw DistError(std::string("launcher variable ") + name + "=\"" + v +
                    "\" is not a non-negative integer; fix or unset it");
  return static_cast<int>(x);
}

struct Candidate {
  std::string source;
  std::optional<int> rank, world, localRank, localSize;
  std::string rankVar, worldVar;
  bool present() const { return rank || world; }
};

Candidate readOpenMpi() {
  return {"openmpi", intVar("OMPI_COMM_WORLD_RANK"), intVar("OMPI_COMM_WORLD_SIZE"),
          intVar("OMPI_COMM_WORLD_LOCAL_RANK"), intVar("OMPI_COMM_WORLD_LOCAL_SIZE"),
          "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"};
}
Candidate readSlurm() {
  // SLURM_NTASKS_PER_NODE can be "4(x2)"; the local size is left to MPI_Comm_split_type.
  return {"slurm", intVar("SLURM_PROCID"), intVar("SLURM_NTASKS"), intVar("SLURM_LOCALID"),
          std::nullopt, "SLURM_PROCID", "SLURM_NTASKS"};
}
Candidate readTorchrun() {
  return {"torchrun", intVar("RANK"), intVar("WORLD_SIZE"), intVar("LOCAL_RANK"),
          intVar("LOCAL_WORLD_SIZE"), "RANK", "WORLD_SIZE"};
}

void checkComplete(const Candidate& c) {
  if (!c.rank || !c.world)
    throw DistError("launcher environment (" + c.source + "): " +
                    (c.rank ? c.worldVar : c.rankVar) + " is missing while " +
                    (c.rank ? c.rankVar : c.worldVar) + " is set; set both or neither");
  if (*c.world < 1 || *c.rank >= *c.world)
    throw DistError("launcher environment (" + c.source + "): " + c.rankVar + "=" +
                    std::to_string(*c.rank) + " is not below " + c.worldVar + "=" +
                    std::to_string(*c.world));
  if (c.localRank && c.localSize && *c.localRank >= *c.localSize)
    throw DistError("launcher environment (" + c.source + "): local rank " +
                    std::to_string(*c.localRank) + " is not below local size " +
                    std::to_string(*c.localSize));
}

/// Two launchers' variables describing different worlds means a stale export in a job script
/// (e.g. RANK left over from a torchrun experiment); guessing which one is right would give
/// two processes the same rank, so refuse.
void checkAgree(const Candidate& chosen, const Candidate& other) {
  if (!other.present()) return;
  checkComplete(other);
  if (*other.rank != *chosen.rank || *other.world != *chosen.world)
    throw DistError("launcher variables disagree: " + chosen.rankVar + "=" +
                    std::to_string(*chosen.rank) + " " + chosen.worldVar + "=" +
                    std::to_string(*chosen.world) + " (" + chosen.source + ") but " +
                    other.rankVar + "=" + std::to_string(*other.rank) + " " + other.worldVar +
                    "=" + std::to_string(*other.world) + " (" + other.source +
                    "); unset the stale ones in the job script");
  if (chosen.localRank && other.localRank && *chosen.localRank != *other.localRank)
    throw DistError("launcher variables disagree on the local rank: " + chosen.source + " says " +
                    std::to_string(*chosen.localRank) + ", " + other.source + " says " +
                    std::to_string(*other.localRank) + "; unset the stale ones");
}

}  // namespace

LaunchEnv readLaunchEnv() {
  Candidate ompi = readOpenMpi(), slurm = readSlurm(), torchrun = readTorchrun();
  // Precedence: OpenMPI (mpirun sets it for the very process), then SLURM (srun), then torchrun.
  // OpenMPI vs SLURM is deliberately not cross-checked: mpirun inside an sbatch allocation
  // starts its ranks under the batch step, whose SLURM_PROCID/NTASKS describe that step, not
  // the MPI world. Every other pair must agree.
  const Candidate* chosen = nullptr;
  if (ompi.present()) {
    chosen = &ompi;
    checkComplete(ompi);
    checkAgree(ompi, torchrun);
  } else if (slurm.present()) {
    chosen = &slurm;
    checkComplete(slurm);
    checkAgree(slurm, torchrun);
  } else if (torchrun.present()) {
    chosen = &torchrun;
    checkComplete(torchrun);
  }
  LaunchEnv env;
  if (!chosen) return env;
  env.source = chosen->source;
  env.rank = *chosen->rank;
  env.worldSize = *chosen->world;
  env.localRank = chosen->localRank.value_or(-1);
  env.localSize = chosen->localSize.value_or(-1);
  return env;
}

}  // namespace slidetrain::dist
