// The micro-batch loop of one epoch: forward, loss under the global-mean convention, backward
// (GradSync all-reduces during it), accumulation, clipping, optimizer step, mid-epoch
// checkpoints, progress.
#include <chrono>

#include <ATen/ATen.h>
#include <torch/types.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/utils.h>

#include "distributed/Heartbeat.h"
#include "distributed/Sampler.h"
#include "src/train/TrainerImpl.h"

namespace slidetrain {

double Trainer::Impl::groupNormaliser(const std::vector<int64_t>& order, int64_t g) const {
  const int64_t begin = g * groupSize * microBatch;
  const int64_t end = std::min<int64_t>(std::min(microPerEpoch, (g + 1) * groupSize) * microBatch,
                                        static_cast<int64_t>(order.size()));
  double sum = 0;
  for (int64_t i = begin; i < end; ++i)
    sum += loss.weightOf(train.samples[static_cast<size_t>(order[static_cast<size_t>(i)])].label);
  return sum;
}

bool Trainer::Impl::trainEpoch(EpochTally& tally) {
  const int64_t epoch = state.epoch;
  currentEpoch = epoch;  // workers are stopped between passes
  // The same order on every rank and for any world size; a resumed epoch rebuilds it and skips
  // the micro-batches already consumed without reading them.
  const std::vector<int64_t> order = epochOrder(train.samples, sampling, seed, epoch);
  const int64_t first = state.stepInEpoch;
  std::vector<std::vector<wsi::PatchRequest>> batches;
  for (int64_t m = first; m < microPerEpoch; ++m) {
    std::vector<wsi::PatchRequest> b;
    for (int64_t i : dist::rankSliceOfBatch(order, microBatch, m, rank, world))
      b.push_back(train.samples[static_cast<size_t>(i)]);
    batches.push_back(std::move(b));
  }
  const wsi::StreamStats before = stream->stats();
  stream->start(std::move(batches));
  model->train();
  const auto t0 = std::chrono::steady_clock::now();
  double scale = 0;
  bool ok = true;
  for (int64_t m = first; m < microPerEpoch; ++m) {
    const int64_t g = m / groupSize, inGroup = m % groupSize;
    const bool lastOfGroup = inGroup == groupSize - 1 || m == microPerEpoch - 1;
    if (inGroup == 0) {
      schedule->apply(*optimizer, state.step);
      optimizer->zero_grad();
      // Convention (docs/distributed.md): backpropagate W / (global normaliser of the whole
      // optimizer step) x the local loss sum; GradSync's average then is the exact gradient of
      // the mean over all micro-batches of the step, for any slice sizes and class weights.
      scale = world / std::max(1e-12, groupNormaliser(order, g));
    }
    auto b = stream->next();
    if (!b) throw std::runtime_error("patch stream ended before the epoch's last batch");
    // Dropout etc. draw from torch's CPU generator, seeded from (seed, rank, step, micro-batch)
    // so a resumed run draws exactly what an uninterrupted one does.
    torch::manual_seed(dist::mixSeed(seed, static_cast<uint64_t>(rank), static_cast<uint64_t>(state.step),
                                     static_cast<uint64_t>(inGroup)));
    sync->setSyncEnabled(lastOfGroup);
    if (batchObserver) batchObserver(epoch, m, *b);
    at::Tensor x = batchToDevice(*b, norm, device), y = labelsToTensor(*b).to(device);
    if (channelsLast) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    if (broadcastBuffers) sync->broadcastBuffers();  // collective, every micro-batch on every rank
    at::Tensor logits;
    {
      // fp16 autocasts on CUDA only (Trainer says so at start); bf16 on CUDA and the CPU.
      const bool autocast = amp == AmpMode::Bf16 || (amp == AmpMode::Fp16 && device.is_cuda());
      AutocastScope ac(device.type(), autocast ? amp : AmpMode::Off);
      logits = model->forward(x);
    }
    logits = logits.to(at::kFloat);  // the loss in float32, as under torch.autocast
    const at::Tensor lsum = lossSum(logits, y, loss);
    at::Tensor objective = lsum * scale;
    if (scaler) objective = objective * scaler->scale();  // fp16: keep small gradients above 2^-24
    objective.backward();
    if (lastOfGroup) {
      sync->finalize();  // averaged gradients, identical on every rank
      // fp16: unscale and skip the step on every rank when any rank saw inf/NaN (collective).
      const bool finite = scaler ? scaler->unscale(params) : true;
      if (finite) {
        if (gradClip > 0) torch::nn::utils::clip_grad_norm_(params, gradClip);
        optimizer->step();
      }
      if (scaler) {
        scaler->update(finite);
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
      const at::Tensor pred = predictedClass(logits).cpu().contiguous();
      const int64_t* pp = pred.data_ptr<int64_t>();
      for (size_t i = 0; i < b->count(); ++i) {
        tally.cm.add(b->labels[i], static_cast<int>(pp[i]));
        tally.weightSum += loss.weightOf(b->labels[i]);
      }
      tally.lossSum += lsum.item<double>();
      tally.seen += static_cast<int64_t>(b->count());
    }
    const wsi::StreamStats now = stream->stats();
    ProgressSample ps;
    ps.epoch = epoch + 1;
    ps.epochs = epochs;
    ps.batch = m + 1;
    ps.batches = microPerEpoch;
    ps.step = state.step;
    ps.totalSteps = totalSteps;
    ps.loss = tally.lossSum / std::max(1e-12, tally.weightSum);
    ps.accuracy = Metrics::compute(tally.cm).accuracy;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ps.patchesPerSecond = static_cast<double>(tally.seen) * world / std::max(1e-9, el);
    ps.dataWaitShare = (now.waitSeconds - before.waitSeconds) / std::max(1e-9, el);
    ps.queueFill = now.queueFill();
    progress->update(ps);

    if (lastOfGroup) {
      if (state.step == crashAfterStep) {
        ok = false;
        break;
      }
      const bool epochDone = m + 1 == microPerEpoch;
      if (state.step >= totalSteps) break;
      // Mid-epoch resume point; the end-of-epoch checkpoint is written by endEpoch.
      if (!epochDone && checkpointEvery > 0 && state.step % checkpointEvery == 0) saveLast();
      // SIGTERM/SIGUSR1 on any rank: all stop here with a checkpoint (at an epoch's end the run
      // loop asks after endEpoch, which writes it).
      if (!epochDone && preemptionAgreed(true)) {
        ok = false;
        break;
      }
    }
  }
  progress->endLine();
  if (!ok) {
    stream->start({});  // stop the workers of the abandoned pass
    return false;
  }
  tally.reachedEnd = state.stepInEpoch == microPerEpoch;
  const wsi::StreamStats after = stream->stats();
  tally.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  tally.waitSeconds = after.waitSeconds - before.waitSeconds;
  tally.streamSeconds = after.elapsedSeconds - before.elapsedSeconds;
  tally.streamPatches = after.patches - before.patches;
  tally.decodedMB = static_cast<double>(after.decodedBytes - before.decodedBytes) / 1e6;
  tally.queueFill = after.meanQueueFill;
  if (!tally.reachedEnd) stream->start({});  // max_steps ended the epoch early
  return true;
}

}  // namespace slidetrain
