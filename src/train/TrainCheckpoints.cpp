#include "src/train/TrainCheckpoints.h"

#include <cstdio>
#include <filesystem>

#include "src/config/Errors.h"
#include "src/models/StateDict.h"
#include "src/runtime/Preemption.h"
#include "src/train/RunFingerprint.h"

namespace fs = std::filesystem;

namespace slidetrain {

TrainCheckpoints::TrainCheckpoints(std::string runDir, int64_t everySteps, bool lead)
    : runDir_(std::move(runDir)), everySteps_(everySteps), lead_(lead) {}

std::string TrainCheckpoints::dir() const { return (fs::path(runDir_) / "checkpoints").string(); }
std::string TrainCheckpoints::lastPath() const { return (fs::path(dir()) / "last.pt").string(); }

void TrainCheckpoints::checkSameExperiment(const std::string& from, const TrainState& saved,
                                           const std::string& fingerprint) const {
  // Only the same experiment may continue (a changed cohort, fold or setting would silently
  // train on with another one's weights - in cv, on the new fold's validation slides).
  if (saved.fingerprint.empty()) {
    if (lead_)
      std::fprintf(stderr, "warning: %s has no run fingerprint (an earlier slidetrain wrote it); "
                   "resuming without checking that it is the same experiment\n", from.c_str());
    return;
  }
  const auto diff = fingerprintDifferences(parseFingerprint(saved.fingerprint), parseFingerprint(fingerprint));
  if (diff.empty()) return;
  std::string msg = from + ": this checkpoint belongs to another experiment; what differs:";
  for (const auto& d : diff) msg += "\n  " + d;
  throw ConfigError(msg + "\nHINT: train.resume=none (or another run_dir) starts over; "
                    "more epochs or a longer train.max_steps resume fine");
}

void TrainCheckpoints::saveLast(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                                const TrainState& state) const {
  if (lead_) saveTrainState(lastPath(), model, optimizer, state);
}

void TrainCheckpoints::saveBest(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                                const TrainState& state) const {
  if (lead_) saveTrainState((fs::path(dir()) / "best.pt").string(), model, optimizer, state);
}

void TrainCheckpoints::exportWeights(const torch::nn::Module& model) const {
  if (lead_) exportStateDict((fs::path(runDir_) / "weights.pt").string(), model);
}

bool TrainCheckpoints::preemptionAgreed(dist::Comm& host, bool save, torch::nn::Module& model,
                                        torch::optim::Optimizer& optimizer, const TrainState& state,
                                        int64_t microPerEpoch) {
  const int sig = agreePreemption(host, &preemptRank_);
  if (!sig) return false;
  preemptSignal_ = sig;
  if (save) saveLast(model, optimizer, state);
  host.barrier();  // last.pt is complete before any rank exits
  if (lead_) {
    std::printf("\npreempted: %s on rank %d; every rank stopped after step %lld (epoch %lld, batch %lld of "
                "%lld); checkpoint %s; exit status %d (train.resume=auto continues from it)\n",
                signalName(sig).c_str(), preemptRank_, static_cast<long long>(state.step),
                static_cast<long long>(state.epoch + 1), static_cast<long long>(state.stepInEpoch),
                static_cast<long long>(microPerEpoch), lastPath().c_str(), kExitPreempted);
    std::fflush(stdout);
  }
  return true;
}

}  // namespace slidetrain
