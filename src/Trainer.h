#pragma once
// Data-parallel training, one process per device, launched by mpirun. `Trainer` runs the loop on
// prepared splits and a communicator (tests call it directly); `runTrain` is `slidetrain train`.
// See docs/training.md for the loop, checkpoints, resume and metrics.jsonl.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "distributed/Planes.h"
#include "src/Config.h"
#include "src/Evaluate.h"
#include "src/Metrics.h"
#include "src/ModelZoo.h"
#include "src/SplitData.h"

namespace slidetrain {

struct TrainResult {
  int64_t steps = 0;        ///< optimizer steps done in total (resumed runs included)
  int64_t epochs = 0;       ///< epochs completed
  bool stoppedEarly = false;
  bool preempted = false;   ///< stopped on SIGTERM/SIGUSR1 after writing last.pt (src/Preemption.h)
  std::string monitor;      ///< the monitored metric's name
  double bestMetric = 0;    ///< its best value (NaN when never defined)
  int64_t bestEpoch = 0;    ///< 1-based
  double trainLoss = 0;     ///< of the last epoch, all ranks
  Metrics train;            ///< of the last epoch, all ranks
  std::optional<EvalResult> val;  ///< last validation (when a val split exists)
};

class Trainer {
 public:
  /// Builds the model (seeded) on planes.modelDevice, optimizer, gradient synchronisation and
  /// stream, and resumes per train.resume. `val` may be empty. A single communicator converts to
  /// Planes for a CPU model. Collective (GradSync construction): same order on every rank.
  /// run_dir comes from cfg; only rank 0 writes there.
  Trainer(const Config& cfg, dist::Planes planes, SplitData train,
          std::optional<SplitData> val, std::vector<std::string> classNames);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// Trains to the end (epochs, max_steps or early stopping). Collective.
  TrainResult run();
  Model& model();

  /// Testing: make run() return right after optimizer step `step` as if the process were killed
  /// there (nothing more is written). -1 = off.
  void crashAfterStep(int64_t step);
  /// Testing: called with (epoch, micro-batch of the epoch, the batch as streamed: ids and
  /// augmented pixels of this rank's slice) before each forward.
  void observeBatches(std::function<void(int64_t, int64_t, const wsi::Batch&)> observer);
  /// Optimizer steps per epoch and in total, as planned.
  int64_t stepsPerEpoch() const;
  int64_t totalSteps() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// `slidetrain train`: reads the cohort, prepares the train (and val) split, runs a Trainer,
/// prints the classification report. Returns the exit code. Collective over MPI_COMM_WORLD.
int runTrain(const Config& cfg);

/// How this rank's cores are split between torch's intra-op threads and the patch stream's
/// workers. `cores` comes from the process's CPU affinity mask (what SLURM or mpirun's binding
/// gave it); a mask that spans the whole node is shared by the node's local ranks, so each takes
/// its share of it. The split never counts a core twice: explicit train.threads / data.workers
/// win; otherwise a CUDA model keeps 1 compute thread and gives the rest to the stream, a CPU
/// model gives the stream a quarter (at least 1) and computes on the rest.
struct ThreadPlan {
  int maskCores = 1;    ///< CPUs in the affinity mask
  int nodeCores = 1;    ///< CPUs online on the node
  int localRanks = 1;
  bool sharedMask = false;  ///< the mask spans the node and is shared by the local ranks
  int share = 1;        ///< cores for this rank
  int compute = 1;      ///< at::set_num_threads
  int workers = 1;      ///< stream workers
  /// "threads: 3 compute + 1 stream workers per rank (affinity: 8 of 8 cores, shared by 2 local ranks)"
  std::string describe() const;
};
ThreadPlan planThreads(int trainThreads, int dataWorkers, int maskCores, int nodeCores,
                       int localRanks, bool cudaModel);
/// The plan for this process (its affinity mask, train.threads, data.workers, train.device).
ThreadPlan threadPlanFor(const Config& cfg, int localRanks);

}  // namespace slidetrain
