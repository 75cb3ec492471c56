// End of an epoch: train metrics all-reduced over ranks, validation, the monitored metric
// (early stopping, best.pt), metrics.jsonl, last.pt and weights.pt.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <ATen/ATen.h>

#include "src/models/StateDict.h"
#include "src/train/Checkpoint.h"
#include "src/train/EarlyStopping.h"
#include "src/config/Settings.h"
#include "src/runtime/Preemption.h"
#include "src/train/TrainerImpl.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.8g", v);
  return buf;
}

}  // namespace

void Trainer::Impl::saveLast() {
  if (lead) saveTrainState((fs::path(checkpointDir()) / "last.pt").string(), *model, *optimizer, state);
}

bool Trainer::Impl::preemptionAgreed(bool save) {
  const int sig = agreePreemption(*planes.host, &preemptRank);
  if (!sig) return false;
  preemptSignal = sig;
  if (save) saveLast();
  planes.host->barrier();  // last.pt is complete before any rank exits
  if (lead) {
    std::printf("\npreempted: %s on rank %d; every rank stopped after step %lld (epoch %lld, batch %lld of "
                "%lld); checkpoint %s; exit status %d (train.resume=auto continues from it)\n",
                signalName(sig).c_str(), preemptRank, static_cast<long long>(state.step),
                static_cast<long long>(state.epoch + 1), static_cast<long long>(state.stepInEpoch),
                static_cast<long long>(microPerEpoch),
                (fs::path(checkpointDir()) / "last.pt").c_str(), kExitPreempted);
    std::fflush(stdout);
  }
  return true;
}

TrainResult Trainer::Impl::endEpoch(const EpochTally& tally, int64_t epochIndex) {
  // [loss_sum, weight_sum, seen, wait_share, confusion counts...] summed over ranks in one
  // all-reduce on the host plane (host numbers): collective, issued once per epoch on every rank
  // in the same place.
  std::vector<double> packed{tally.lossSum, tally.weightSum, static_cast<double>(tally.seen),
                             tally.waitSeconds / std::max(1e-9, tally.seconds)};
  for (int64_t c : tally.cm.counts()) packed.push_back(static_cast<double>(c));
  at::Tensor t = at::tensor(packed, at::kDouble);
  planes.host->allReduce(t, dist::ReduceOp::Sum);
  const double* tp = t.data_ptr<double>();
  std::vector<int64_t> counts;
  for (int64_t i = 4; i < t.numel(); ++i) counts.push_back(static_cast<int64_t>(std::llround(tp[i])));
  TrainResult r;
  r.monitor = monitor;
  r.train = Metrics::compute(ConfusionMatrix::fromCounts(numClasses, counts));
  r.trainLoss = tp[0] / std::max(1e-12, tp[1]);
  const double seenAll = tp[2], waitShareMean = tp[3] / world;

  if (broadcastBuffers) sync->broadcastBuffers();  // the model every rank evaluates and rank 0 saves
  if (val) {
    // The training stream's settings, already sized for this node.
    const InferenceOptions io = inferenceOptions(settings.predict, streamOptions, norm, aug);
    r.val = evaluateSplit(*model, *val, numClasses, io, slidePooling(settings.predict), *planes.device);  // collective
  }

  // The monitored metric: every rank computes the same value from all-reduced numbers.
  double value = std::numeric_limits<double>::quiet_NaN();
  if (monitor == "train_loss") value = r.trainLoss;
  else if (monitor == "train_accuracy") value = r.train.accuracy;
  else if (r.val) value = metricValue(*r.val, monitor);
  const bool improved = isImprovement(monitorMode, value, state.bestMetric, minDelta);
  if (improved) {
    state.bestMetric = value;
    state.bestEpoch = epochIndex + 1;
    state.badEpochs = 0;
  } else {
    ++state.badEpochs;
  }
  const bool stop = shouldStop(patience, state.badEpochs) && state.step < totalSteps;
  if (tally.reachedEnd) {
    state.epoch = epochIndex + 1;
    state.stepInEpoch = 0;
  }
  state.finished = stop;
  r.stoppedEarly = stop;
  r.bestMetric = state.bestMetric;
  r.bestEpoch = state.bestEpoch;
  r.steps = state.step;
  r.epochs = epochIndex + 1;

  if (lead) {
    const double patchesPerS = seenAll / std::max(1e-9, tally.seconds);
    std::printf("epoch %lld/%lld  loss %.4f  acc %.4f", static_cast<long long>(epochIndex + 1),
                static_cast<long long>(epochs), r.trainLoss, r.train.accuracy);
    if (r.val)
      std::printf("  val_loss %.4f  val_acc %.4f  val_auc %s", r.val->loss, r.val->patch.accuracy,
                  num(r.val->patch.rocAuc < 0 ? NAN : r.val->patch.rocAuc).c_str());
    std::printf("  %.1fs  %.0f patches/s  data-wait %.1f%%%s%s\n", tally.seconds, patchesPerS,
                100 * waitShareMean, improved ? "  *best" : "", stop ? "  early stop" : "");
    std::ostringstream j;
    j << "{\"epoch\": " << epochIndex + 1 << ", \"step\": " << state.step
      << ", \"epoch_complete\": " << (tally.reachedEnd ? "true" : "false")
      << ", \"loss\": " << num(r.trainLoss) << ", \"lr\": " << num(schedule->lrAt(state.step - 1))
      << ", \"seconds\": " << num(tally.seconds) << ", \"patches\": " << static_cast<int64_t>(seenAll)
      << ", \"patches_per_s\": " << num(patchesPerS) << ", \"data_wait_pct\": " << num(100 * waitShareMean)
      << ", \"stream\": {\"patches_per_s\": "
      << num(tally.streamSeconds > 0 ? tally.streamPatches / tally.streamSeconds : 0)
      << ", \"decoded_mb_per_s\": " << num(tally.streamSeconds > 0 ? tally.decodedMB / tally.streamSeconds : 0)
      << ", \"queue_fill\": " << num(tally.queueFill)
      << ", \"wait_share\": " << num(tally.waitSeconds / std::max(1e-9, tally.seconds)) << "}"
      << ", \"train\": " << r.train.toJson();
    if (scaler)
      j << ", \"amp\": {\"loss_scale\": " << num(scaler->scale())
        << ", \"skipped_steps\": " << tally.skippedSteps << "}";
    if (r.val)
      j << ", \"val_loss\": " << num(r.val->loss) << ", \"val\": " << r.val->patch.toJson()
        << ", \"val_slide\": " << r.val->slide.toJson();
    j << ", \"monitor\": \"" << monitor << "\", \"monitor_value\": " << num(value)
      << ", \"best\": " << (improved ? "true" : "false") << ", \"early_stop\": " << (stop ? "true" : "false")
      << "}\n";
    metricsOut << j.str();
    metricsOut.flush();
    saveLast();
    if (improved) saveTrainState((fs::path(checkpointDir()) / "best.pt").string(), *model, *optimizer, state);
    exportStateDict((fs::path(runDir) / "weights.pt").string(), *model);
    std::fflush(stdout);
  }
  return r;
}

}  // namespace slidetrain
