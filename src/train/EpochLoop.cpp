// EpochLoop: see EpochLoop.h.
#include "src/train/EpochLoop.h"

#include <algorithm>
#include <chrono>

#include <ATen/ATen.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "distributed/Heartbeat.h"
#include "distributed/Sampler.h"
#include "src/data/StreamOptions.h"
#include "src/models/Outputs.h"

namespace slidetrain {

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
  double stepSums[4] = {0, 0, 0, 0};  // of the optimizer step under way (EpochTally::stepSums)
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
    const MicroBatchResult r = step.forwardBackward(*b, norm_, lastOfGroup);
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
    {
      torch::NoGradGuard ng;
      const at::Tensor pred = predictedClass(r.logits).cpu().contiguous();
      const int64_t* pp = pred.data_ptr<int64_t>();
      const double lossSum = r.lossSum.item<double>();
      stepSums[0] += lossSum;
      for (size_t i = 0; i < b->count(); ++i) {
        tally.cm.add(b->labels[i], static_cast<int>(pp[i]));
        tally.weightSum += loss_.weightOf(b->labels[i]);
        stepSums[1] += loss_.weightOf(b->labels[i]);
        stepSums[2] += b->labels[i] == pp[i];
      }
      stepSums[3] += static_cast<double>(b->count());
      tally.lossSum += lossSum;
      tally.seen += static_cast<int64_t>(b->count());
      if (lastOfGroup) {
        tally.stepSums.insert(tally.stepSums.end(), stepSums, stepSums + 4);
        std::fill(stepSums, stepSums + 4, 0.0);
      }
    }
    const wsi::StreamStats now = stream_->stats();
    ProgressSample ps;
    ps.epoch = epoch + 1;
    ps.epochs = plan_.epochs;
    ps.batch = m + 1;
    ps.batches = plan_.microPerEpoch;
    ps.step = state.step;
    ps.totalSteps = plan_.totalSteps;
    ps.loss = tally.lossSum / std::max(1e-12, tally.weightSum);
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
