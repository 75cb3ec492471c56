// EpochReport: see EpochReport.h.
#include "src/train/EpochReport.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>

#include <ATen/ATen.h>

#include "src/train/EarlyStopping.h"
#include "wsi/JsonWriter.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

std::string num(double v) { return wsi::jsonNumber(v, 8); }

/// metrics.jsonl's "steps": the pass's optimizer steps as columns (step, loss, accuracy, lr) from
/// the all-reduced [loss sum, weight sum, correct, samples] per step; above kMaxStepPoints steps,
/// runs of consecutive steps are merged (sums added, step = the run's last, lr at it) so a line
/// stays small.
void writeSteps(wsi::JsonWriter& w, const std::vector<double>& sums, int64_t lastStep, const LrSchedule& schedule) {
  constexpr size_t kMaxStepPoints = 500;
  const size_t n = sums.size() / 4;
  if (n == 0) return;
  const size_t per = (n + kMaxStepPoints - 1) / kMaxStepPoints;  // steps per point
  std::vector<int64_t> steps;
  std::vector<double> loss, accuracy, lr;
  for (size_t begin = 0; begin < n; begin += per) {
    const size_t end = std::min(n, begin + per);
    double s[4] = {0, 0, 0, 0};
    for (size_t i = begin; i < end; ++i)
      for (int k = 0; k < 4; ++k) s[k] += sums[4 * i + static_cast<size_t>(k)];
    const int64_t stepNo = lastStep - static_cast<int64_t>(n - end);  // 1-based step of the run's last
    steps.push_back(stepNo);
    loss.push_back(s[0] / std::max(1e-12, s[1]));
    accuracy.push_back(s[2] / std::max(1.0, s[3]));
    lr.push_back(schedule.lrAt(stepNo - 1));
  }
  w.key("steps").beginObject().key("step").beginArray();
  for (int64_t v : steps) w.value(v);
  w.endArray();
  for (const auto& [name, column] : {std::pair{"loss", &loss}, std::pair{"accuracy", &accuracy}, std::pair{"lr", &lr}}) {
    w.key(name).beginArray();
    for (double v : *column) w.value(v);
    w.endArray();
  }
  w.endObject();
}

/// Each rank's slot of the per-rank block: [patches, seconds, data-wait seconds, GPU busy %
/// (-1: none)]. Every rank fills its own slot of a zeroed block, so the epoch's sum all-reduce
/// gathers them.
constexpr size_t kRankFields = 4;

/// metrics.jsonl's "ranks": per rank (index = rank) its patches, pass seconds, patches/s, data
/// wait (% of its pass) and GPU busy (% , null without a GPU), as columns; "gpu_busy_pct" the
/// mean over the ranks that measured one (none: left out). The printed line gets the GPU figure.
double writeRanks(wsi::JsonWriter& w, const double* block, int world) {
  std::vector<double> patches, seconds, speed, wait, busy;
  double busySum = 0;
  int busyCount = 0;
  for (int r = 0; r < world; ++r) {
    const double* f = block + static_cast<size_t>(r) * kRankFields;
    patches.push_back(f[0]);
    seconds.push_back(f[1]);
    speed.push_back(f[0] / std::max(1e-9, f[1]));
    wait.push_back(100 * f[2] / std::max(1e-9, f[1]));
    busy.push_back(f[3] < 0 ? std::numeric_limits<double>::quiet_NaN() : f[3]);
    if (f[3] >= 0) busySum += f[3], ++busyCount;
  }
  const double busyMean = busyCount > 0 ? busySum / busyCount : std::numeric_limits<double>::quiet_NaN();
  if (busyCount > 0) w.key("gpu_busy_pct").value(busyMean);
  w.key("ranks").beginObject();
  for (const auto& [name, column] : {std::pair{"patches", &patches}, std::pair{"seconds", &seconds},
                                     std::pair{"patches_per_s", &speed}, std::pair{"data_wait_pct", &wait},
                                     std::pair{"gpu_busy_pct", &busy}}) {
    w.key(name).beginArray();
    for (double v : *column) w.value(v);  // NaN: null
    w.endArray();
  }
  w.endObject();
  return busyMean;
}

}  // namespace

EpochReport::EpochReport(const Settings& s, std::optional<SplitData> val, int numClasses, bool lead)
    : val_(std::move(val)),
      numClasses_(numClasses),
      lead_(lead),
      patience_(s.train.earlyStopping.patience),
      minDelta_(s.train.earlyStopping.minDelta),
      pooling_(slidePooling(s.predict)) {
  const Monitor m = resolveMonitor(s.train.earlyStopping.metric, s.train.earlyStopping.mode, val_.has_value());
  monitor_ = m.metric;
  monitorMode_ = m.mode;
  if (!m.note.empty() && lead_) std::fprintf(stderr, "warning: %s\n", m.note.c_str());
}

void EpochReport::openMetricsFile(const std::string& runDir) {
  if (lead_) metricsOut_.open(fs::path(runDir) / "metrics.jsonl", std::ios::app);
}

EpochOutcome EpochReport::finish(const EpochTally& tally, int64_t epochIndex, const EpochPlan& plan,
                                 TrainState& state, TrainStep& step, Model& model,
                                 const dist::Planes& planes, const InferenceOptions& inference) {
  // [loss_sum, weight_sum, seen, wait_share, confusion counts...] summed over ranks in one
  // all-reduce on the host plane (host numbers): collective, issued once per epoch on every rank
  // in the same place.
  // Then the per-step sums of the pass (as many on every rank: all run the same micro-batches),
  // then each rank's throughput in its own slot (writeRanks).
  std::vector<double> packed{tally.lossSum, tally.weightSum, static_cast<double>(tally.seen),
                             tally.waitSeconds / std::max(1e-9, tally.seconds)};
  for (int64_t c : tally.cm.counts()) packed.push_back(static_cast<double>(c));
  const size_t stepsAt = packed.size();
  packed.insert(packed.end(), tally.stepSums.begin(), tally.stepSums.end());
  const size_t ranksAt = packed.size();  // then the per-rank block, one slot per rank
  packed.resize(ranksAt + kRankFields * static_cast<size_t>(planes.size()), 0.0);
  double* mine = &packed[ranksAt + kRankFields * static_cast<size_t>(planes.rank())];
  mine[0] = static_cast<double>(tally.seen);
  mine[1] = tally.seconds;
  mine[2] = tally.waitSeconds;
  mine[3] = std::isnan(tally.gpuBusyPct) ? -1.0 : tally.gpuBusyPct;
  at::Tensor t = at::tensor(packed, at::kDouble);
  planes.host->allReduce(t, dist::ReduceOp::Sum);
  const double* tp = t.data_ptr<double>();
  std::vector<int64_t> counts;
  for (size_t i = 4; i < stepsAt; ++i) counts.push_back(static_cast<int64_t>(std::llround(tp[i])));
  const std::vector<double> stepSums(tp + stepsAt, tp + ranksAt);
  TrainResult r;
  r.monitor = monitor_;
  r.train = Metrics::compute(ConfusionMatrix::fromCounts(numClasses_, counts));
  r.trainLoss = tp[0] / std::max(1e-12, tp[1]);
  const double seenAll = tp[2], waitShareMean = tp[3] / planes.size();

  step.broadcastBuffers();  // the model every rank evaluates and rank 0 saves
  if (val_) r.val = evaluateSplit(model, *val_, numClasses_, inference, pooling_, *planes.device);  // collective

  // The monitored metric: every rank computes the same value from all-reduced numbers.
  double value = std::numeric_limits<double>::quiet_NaN();
  if (monitor_ == "train_loss") value = r.trainLoss;
  else if (monitor_ == "train_accuracy") value = r.train.accuracy;
  else if (r.val) value = metricValue(*r.val, monitor_);
  const bool improved = isImprovement(monitorMode_, value, state.bestMetric, minDelta_);
  if (improved) {
    state.bestMetric = value;
    state.bestEpoch = epochIndex + 1;
    state.badEpochs = 0;
  } else {
    ++state.badEpochs;
  }
  const bool stop = shouldStop(patience_, state.badEpochs) && state.step < plan.totalSteps;
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

  if (lead_) {
    const double patchesPerS = seenAll / std::max(1e-9, tally.seconds);
    std::printf("epoch %lld/%lld  loss %.4f  acc %.4f", static_cast<long long>(epochIndex + 1),
                static_cast<long long>(plan.epochs), r.trainLoss, r.train.accuracy);
    if (r.val)
      std::printf("  val_loss %.4f  val_acc %.4f  val_auc %s", r.val->loss, r.val->patch.accuracy,
                  num(r.val->patch.rocAuc < 0 ? NAN : r.val->patch.rocAuc).c_str());
    std::printf("  %.1fs  %.0f patches/s  data-wait %.1f%%", tally.seconds, patchesPerS, 100 * waitShareMean);
    wsi::JsonStyle style;
    style.significantDigits = 8;
    std::ostringstream j;
    wsi::JsonWriter w(j, style);
    w.beginObject().key("epoch").value(epochIndex + 1).key("step").value(state.step);
    w.key("epoch_complete").value(tally.reachedEnd).key("loss").value(r.trainLoss);
    w.key("lr").value(step.schedule().lrAt(state.step - 1)).key("seconds").value(tally.seconds);
    w.key("patches").value(static_cast<int64_t>(seenAll)).key("patches_per_s").value(patchesPerS);
    w.key("data_wait_pct").value(100 * waitShareMean);
    w.key("world_size").value(planes.size()).key("device").value(planes.modelDevice.str());
    const double busy = writeRanks(w, tp + ranksAt, planes.size());
    if (!std::isnan(busy)) std::printf("  GPU busy %.0f%%", busy);
    std::printf("%s%s\n", improved ? "  *best" : "", stop ? "  early stop" : "");
    w.key("stream").beginObject();
    w.key("patches_per_s").value(tally.streamSeconds > 0 ? tally.streamPatches / tally.streamSeconds : 0.0);
    w.key("decoded_mb_per_s").value(tally.streamSeconds > 0 ? tally.decodedMB / tally.streamSeconds : 0.0);
    w.key("queue_fill").value(tally.queueFill);
    w.key("wait_share").value(tally.waitSeconds / std::max(1e-9, tally.seconds));
    w.endObject();
    w.key("train").rawValue(r.train.toJson());
    if (const LossScaler* scaler = step.scaler())
      w.key("amp").beginObject().key("loss_scale").value(scaler->scale())
          .key("skipped_steps").value(tally.skippedSteps).endObject();
    writeSteps(w, stepSums, state.step, step.schedule());
    if (r.val)
      w.key("val_loss").value(r.val->loss).key("val").rawValue(r.val->patch.toJson())
          .key("val_slide").rawValue(r.val->slide.toJson());
    w.key("monitor").value(monitor_).key("monitor_value").value(value);
    w.key("best").value(improved).key("early_stop").value(stop).endObject();
    metricsOut_ << j.str() << "\n";
    metricsOut_.flush();
    std::fflush(stdout);
  }
  return {r, improved};
}

}  // namespace slidetrain
