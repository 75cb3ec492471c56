// EpochLoop: see EpochLoop.h.
#include "src/train/EpochLoop.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <ATen/ATen.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "distributed/Heartbeat.h"
#include "distributed/Sampler.h"
#include "src/data/StreamOptions.h"
#include "src/models/Outputs.h"

namespace slidetrain {
namespace {

/// A pass's loss sums, correct predictions and confusion counts, kept on the model's device per
/// micro-batch and read back by flush() in one copy: once per log interval and at the pass's end,
/// never per micro-batch (on CUDA each read would wait for the device).
class DeviceSums {
 public:
  void add(const MicroBatchResult& r, int classes) {
    torch::NoGradGuard ng;
    const at::Tensor pred = predictedClass(r.logits);
    if (!cm_.defined()) cm_ = at::zeros({classes * classes}, pred.options());
    cm_.index_put_({r.labels * classes + pred}, at::ones_like(pred), /*accumulate=*/true);
    pending_.push_back(at::stack({r.lossSum.detach().to(at::kDouble), pred.eq(r.labels).sum().to(at::kDouble)}));
  }
  /// Per micro-batch added since the last flush, in order: [loss sum, correct]; the confusion
  /// counts go into `cm`.
  std::vector<std::pair<double, double>> flush(ConfusionMatrix& cm) {
    std::vector<std::pair<double, double>> out;
    if (pending_.empty()) return out;
    // One copy to the host (on the CPU, to() returns the tensor itself: read before zeroing).
    const at::Tensor v = at::cat({at::stack(pending_).reshape({-1}), cm_.to(at::kDouble)}).to(at::kCPU).contiguous();
    const double* p = v.data_ptr<double>();
    const size_t n = pending_.size();
    for (size_t i = 0; i < n; ++i) out.emplace_back(p[2 * i], p[2 * i + 1]);
    for (size_t i = 0; i < cm.counts().size(); ++i) cm.counts()[i] += static_cast<int64_t>(std::llround(p[2 * n + i]));
    pending_.clear();
    cm_.zero_();
    return out;
  }

 private:
  std::vector<at::Tensor> pending_;
  at::Tensor cm_;
};

}  // namespace

EpochLoop::EpochLoop(const Settings& s, SplitData train, LossOptions loss, const EpochPlan& plan,
                     int rank, int world, wsi::StreamOptions streamOptions, bool lead)
    : train_(std::move(train)),
      sampling_(samplingOptions(s.data)),
      loss_(std::move(loss)),
      plan_(plan),
      seed_(s.run.seed),
      rank_(rank),
      world_(world),
      norm_(slidetrain::normalization(s.data)),
      aug_(s.augment),
      streamOptions_(std::move(streamOptions)) {
  wsi::PatchTransform transform = [this](wsi::RgbImage& img, const wsi::PatchRequest& r) {
    if (aug_.any())
      wsi::augmentPatch(img, aug_, dist::mixSeed(seed_, currentEpoch_, r.id, 0xA06));
  };
  stream_ = std::make_unique<wsi::PatchStream>(train_.paths, streamOptions_, transform, train_.slideOptions);
  progress_ = std::make_unique<Progress>(lead, s.train.logEvery, s.train.progress);
  logEvery_ = std::max<int64_t>(1, s.train.logEvery);
}

EpochLoop::~EpochLoop() = default;

void EpochLoop::observe(std::function<void(int64_t, int64_t, const wsi::Batch&)> observer) {
  observer_ = std::move(observer);
}

double EpochLoop::groupNormaliser(const std::vector<int64_t>& order, int64_t g) const {
  const auto [begin, end] = plan_.groupSpan(g, static_cast<int64_t>(order.size()));
  double sum = 0;
  for (int64_t i = begin; i < end; ++i)
    sum += loss_.weightOf(train_.samples[static_cast<size_t>(order[static_cast<size_t>(i)])].label);
  return sum;
}

bool EpochLoop::run(TrainStep& step, TrainState& state, EpochTally& tally,
                    const std::function<AfterStep(bool epochDone)>& after) {
  const int64_t epoch = state.epoch;
  currentEpoch_ = epoch;  // workers are stopped between passes
  // The same order on every rank and for any world size; a resumed epoch rebuilds it and skips
  // the micro-batches already consumed without reading them.
  const std::vector<int64_t> order = epochOrder(train_.samples, sampling_, seed_, epoch);
  const int64_t first = state.stepInEpoch;
  std::vector<std::vector<wsi::PatchRequest>> batches;
  for (int64_t m = first; m < plan_.microPerEpoch; ++m) {
    std::vector<wsi::PatchRequest> b;
    for (int64_t i : dist::rankSliceOfBatch(order, plan_.microBatch, m, rank_, world_))
      b.push_back(train_.samples[static_cast<size_t>(i)]);
    batches.push_back(std::move(b));
  }
  const wsi::StreamStats before = stream_->stats();
  stream_->start(std::move(batches));
  step.startPass();
  const auto t0 = std::chrono::steady_clock::now();
  bool ok = true;
  DeviceSums sums;
  // Host-side figures of the micro-batches whose device sums are not read yet: class-weight sum,
  // samples, whether the micro-batch ends an optimizer step.
  struct Pending {
    double weightSum;
    int64_t samples;
    bool endsStep;
  };
  std::vector<Pending> pending;
  double stepSums[4] = {0, 0, 0, 0};  // of the optimizer step under way (EpochTally::stepSums)
  double readWeight = 0;  // class-weight sum of the micro-batches read back (the progress line's loss)
  auto flush = [&] {
    const auto read = sums.flush(tally.cm);
    for (size_t i = 0; i < read.size(); ++i) {
      const auto [lossSum, correct] = read[i];
      tally.lossSum += lossSum;
      stepSums[0] += lossSum;
      stepSums[1] += pending[i].weightSum;
      readWeight += pending[i].weightSum;
      stepSums[2] += correct;
      stepSums[3] += static_cast<double>(pending[i].samples);
      if (pending[i].endsStep) {
        tally.stepSums.insert(tally.stepSums.end(), stepSums, stepSums + 4);
        std::fill(stepSums, stepSums + 4, 0.0);
      }
    }
    pending.clear();
  };
  const int classes = tally.cm.numClasses();
  const int64_t orderSize = static_cast<int64_t>(order.size());
  for (int64_t m = first; m < plan_.microPerEpoch; ++m) {
    const int64_t inGroup = m % plan_.groupSize;
    const bool lastOfGroup = plan_.endsGroup(m);
    if (inGroup == 0) step.begin(state.step, groupNormaliser(order, plan_.groupOf(m)));
    auto b = stream_->next();
    if (!b) throw std::runtime_error("patch stream ended before the epoch's last batch");
    // Dropout etc. draw from torch's CPU generator, seeded from (seed, rank, step, micro-batch)
    // so a resumed run draws exactly what an uninterrupted one does.
    torch::manual_seed(dist::mixSeed(seed_, static_cast<uint64_t>(rank_), static_cast<uint64_t>(state.step),
                                     static_cast<uint64_t>(inGroup)));
    if (observer_) observer_(epoch, m, *b);
    const MicroBatchResult r = step.forwardBackward(
        *b, lastOfGroup, dist::rankSliceSizes(orderSize, plan_.microBatch, m, world_));
    if (lastOfGroup) {
      const bool finite = step.finish();
      if (LossScaler* scaler = step.scaler()) {
        state.lossScale = scaler->scale();
        state.lossScaleCleanSteps = scaler->cleanSteps();
        if (!finite) ++tally.skippedSteps;
      }
      ++state.step;  // a skipped step still consumes its batches and its place in the schedule
      dist::noteStep(state.step);  // what a peer's timeout message reports for this rank
      state.stepInEpoch = m + 1;
    }
    sums.add(r, classes);
    Pending p{0, static_cast<int64_t>(b->count()), lastOfGroup};
    for (size_t i = 0; i < b->count(); ++i) p.weightSum += loss_.weightOf(b->labels[i]);
    pending.push_back(p);
    tally.weightSum += p.weightSum;
    tally.seen += p.samples;
    // The device's figures come back once per log interval (and at the pass's end, below).
    if ((m + 1) % logEvery_ == 0) flush();
    const wsi::StreamStats now = stream_->stats();
    ProgressSample ps;
    ps.epoch = epoch + 1;
    ps.epochs = plan_.epochs;
    ps.batch = m + 1;
    ps.batches = plan_.microPerEpoch;
    ps.step = state.step;
    ps.totalSteps = plan_.totalSteps;
    ps.loss = tally.lossSum / std::max(1e-12, readWeight);
    ps.accuracy = Metrics::compute(tally.cm).accuracy;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ps.patchesPerSecond = static_cast<double>(tally.seen) * world_ / std::max(1e-9, el);
    ps.dataWaitShare = (now.waitSeconds - before.waitSeconds) / std::max(1e-9, el);
    ps.queueFill = now.queueFill();
    progress_->update(ps);

    if (lastOfGroup) {
      const AfterStep next = after(m + 1 == plan_.microPerEpoch);
      if (next == AfterStep::Abandon) {
        ok = false;
        break;
      }
      if (next == AfterStep::EndPass) break;
    }
  }
  progress_->endLine();
  flush();
  if (!ok) {
    stream_->start({});  // stop the workers of the abandoned pass
    return false;
  }
  tally.reachedEnd = state.stepInEpoch == plan_.microPerEpoch;
  const wsi::StreamStats end = stream_->stats();
  tally.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  tally.waitSeconds = end.waitSeconds - before.waitSeconds;
  tally.streamSeconds = end.elapsedSeconds - before.elapsedSeconds;
  tally.streamPatches = end.patches - before.patches;
  tally.decodedMB = static_cast<double>(end.decodedBytes - before.decodedBytes) / 1e6;
  tally.queueFill = end.meanQueueFill;
  if (!tally.reachedEnd) stream_->start({});  // max_steps ended the epoch early
  return true;
}

}  // namespace slidetrain
