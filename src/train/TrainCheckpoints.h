#pragma once
// Where a run's training state goes and comes back from: checkpoints/last.pt (every epoch end,
// every train.checkpoint_every_steps, on preemption), checkpoints/best.pt (when the monitored
// metric improves), weights.pt (a plain state_dict for Python), and the resume check that only
// the same experiment continues. Rank 0 writes; every rank agrees on preemption.
#include <cstdint>
#include <string>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "distributed/Comm.h"
#include "src/train/TrainState.h"

namespace slidetrain {

class TrainCheckpoints {
 public:
  /// `everySteps`: train.checkpoint_every_steps (0 = only at epoch ends).
  TrainCheckpoints(std::string runDir, int64_t everySteps, bool lead);

  std::string dir() const;        ///< <run_dir>/checkpoints
  std::string lastPath() const;   ///< <run_dir>/checkpoints/last.pt

  /// Throws ConfigError (with a HINT) when the checkpoint `from` holds another experiment's
  /// fingerprint than `fingerprint`; warns (rank 0) when it has none.
  void checkSameExperiment(const std::string& from, const TrainState& saved,
                           const std::string& fingerprint) const;

  /// Rank 0: last.pt / best.pt / weights.pt. Durable (temporary file, fsync, rename).
  void saveLast(torch::nn::Module& model, torch::optim::Optimizer& optimizer, const TrainState& state) const;
  void saveBest(torch::nn::Module& model, torch::optim::Optimizer& optimizer, const TrainState& state) const;
  void exportWeights(const torch::nn::Module& model) const;
  /// A mid-epoch resume point is due after optimizer step `step`.
  bool dueAt(int64_t step) const { return everySteps_ > 0 && step % everySteps_ == 0; }

  /// Collective, at a step every rank reaches: true when any rank got SIGTERM/SIGUSR1
  /// (runtime/Preemption.h); then every rank waits until rank 0 has written last.pt (`save`)
  /// and rank 0 says so. `microPerEpoch` is for the message.
  bool preemptionAgreed(dist::Comm& host, bool save, torch::nn::Module& model,
                        torch::optim::Optimizer& optimizer, const TrainState& state, int64_t microPerEpoch);
  int preemptSignal() const { return preemptSignal_; }

 private:
  std::string runDir_;
  int64_t everySteps_;
  bool lead_;
  int preemptSignal_ = 0;  ///< the signal all ranks agreed to stop on (0: none)
  int preemptRank_ = -1;   ///< the lowest rank that received it
};

}  // namespace slidetrain
