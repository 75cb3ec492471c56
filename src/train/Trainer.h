#pragma once
// Data-parallel training, one process per device, launched by mpirun. `Trainer` runs the loop on
// prepared splits and a communicator (tests call it directly); `slidetrain train` is
// runTrain (src/cli/Train.h).
// See docs/training.md for the loop, checkpoints, resume and metrics.jsonl.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "distributed/Planes.h"
#include "src/config/Settings.h"
#include "src/eval/Evaluate.h"
#include "src/eval/Metrics.h"
#include "src/models/ModelZoo.h"
#include "src/data/SplitData.h"

namespace slidetrain {

struct TrainResult {
  int64_t steps = 0;        ///< optimizer steps done in total (resumed runs included)
  int64_t epochs = 0;       ///< epochs completed
  bool stoppedEarly = false;
  bool preempted = false;   ///< stopped on SIGTERM/SIGUSR1 after writing last.pt (src/runtime/Preemption.h)
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
  /// run_dir comes from the settings; only rank 0 writes there.
  Trainer(const Settings& settings, dist::Planes planes, SplitData train,
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

}  // namespace slidetrain
