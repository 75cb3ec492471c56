// Trainer: builds the parts of a training run and drives the epochs. The parts, each with its
// own file: EpochPlan (geometry), TrainStep (forward, loss, backward, sync, optimizer),
// EpochLoop (a pass over the stream), EpochReport (end of epoch: metrics, validation, monitor,
// metrics.jsonl) and TrainCheckpoints (last.pt, best.pt, weights.pt, resume, preemption).
#include "src/train/Trainer.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <torch/utils.h>

#include "distributed/MpiComm.h"
#include "src/data/ClassOrder.h"
#include "src/data/StreamOptions.h"
#include "src/models/Transfer.h"
#include "src/runtime/GpuBusy.h"
#include "src/runtime/Preemption.h"
#include "src/runtime/Runtime.h"
#include "src/train/EpochLoop.h"
#include "src/train/EpochPlan.h"
#include "src/train/EpochReport.h"
#include "src/train/Optim.h"
#include "src/train/RunFingerprint.h"
#include "src/train/TrainCheckpoints.h"
#include "src/train/TrainState.h"
#include "src/train/TrainStep.h"

namespace fs = std::filesystem;

namespace slidetrain {

struct Trainer::Impl {
  explicit Impl(Settings s) : settings(std::move(s)) {}
  Settings settings;
  dist::Planes planes;  ///< host plane: metrics, barriers; device plane: gradients, statistics
  bool lead = true;
  std::vector<std::string> classNames;
  EpochPlan plan;
  std::shared_ptr<Model> model;
  TrainState state;
  std::unique_ptr<TrainStep> step;
  std::unique_ptr<EpochLoop> loop;
  std::unique_ptr<EpochReport> report;
  std::unique_ptr<TrainCheckpoints> checkpoints;
  std::unique_ptr<GpuBusyMeter> gpuBusy;  ///< a CUDA model's device, sampled during each pass
  int64_t crashAfterStep = -1;

  /// After each optimizer step of a pass: the crash hook, the run's end, mid-epoch checkpoints
  /// and preemption (collective).
  AfterStep afterStep(bool epochDone);
  bool preemptionAgreed(bool save) {
    return checkpoints->preemptionAgreed(*planes.host, save, *model, step->optimizer(), state,
                                         plan.microPerEpoch);
  }
};

Trainer::Trainer(const Settings& cfg, dist::Planes planes, SplitData train,
                 std::optional<SplitData> val, std::vector<std::string> classNames)
    : impl_(std::make_unique<Impl>(cfg)) {
  Impl& s = *impl_;
  s.planes = std::move(planes);
  const int rank = s.planes.rank(), world = s.planes.size();
  s.lead = rank == 0;
  installPreemptionHandlers();  // SIGTERM/SIGUSR1: stop at an agreed step with a checkpoint
  s.classNames = std::move(classNames);
  const int numClasses = static_cast<int>(s.classNames.size());
  if (train.samples.empty()) throw std::runtime_error("the train split has no patches");

  LossOptions loss = lossOptions(cfg.train);
  loss.validate(numClasses);
  // Epoch geometry. The epoch size does not change between epochs (cap and balance keep it).
  const OptimizerOptions oo = optimizerOptions(cfg.optimizer);
  const int64_t epochSize = static_cast<int64_t>(
      epochSampleList(train.samples, samplingOptions(cfg.data), cfg.run.seed, 0).size());
  s.plan = EpochPlan::make(epochSize, cfg.train, /*fullBatch=*/oo.name == "gd", world);
  s.state.fingerprint =
      serializeFingerprint(runFingerprint(cfg, train, val ? &*val : nullptr, s.classNames));
  s.report = std::make_unique<EpochReport>(cfg, std::move(val), numClasses, s.lead);
  if (s.lead)
    for (const auto& w : inertOptimizerKeys(oo, scheduleOptions(cfg.schedule), cfg.changedKeys()))
      std::fprintf(stderr, "warning: %s\n", w.c_str());
  s.checkpoints = std::make_unique<TrainCheckpoints>(cfg.run.runDir, cfg.train.checkpointEverySteps, s.lead);

  // Same initial weights on every rank from the seed; GradSync also broadcasts rank 0's.
  const at::Device device = s.planes.modelDevice;  // chosen with the planes (runtime/Runtime.h)
  torch::manual_seed(cfg.run.seed);
  s.model = buildModel(modelOptions(cfg.model, modelOutputs(loss, numClasses), cfg.tiling.index.size));
  applyTransferLearning(*s.model, cfg.model, s.lead);  // model.pretrained, model.freeze_up_to
  // Rank 0 picks and reads the checkpoint; every rank gets its bytes (collective).
  const CheckpointFile resume = shareResumeCheckpoint(cfg.train.resume, cfg.run.runDir, *s.planes.host);
  const std::string& from = resume.path;
  if (!from.empty()) {
    const TrainState at = peekTrainState(resume);
    s.checkpoints->checkSameExperiment(from, at, s.state.fingerprint);
    // Layers unfrozen before the checkpoint was written must be trainable before the optimizer
    // whose state it holds is built (the unfreeze at an epoch start happens in run()).
    for (int64_t e = 0; e < at.epoch + (at.stepInEpoch > 0 ? 1 : 0); ++e) unfreezeIfDue(*s.model, cfg.model, e);
  }
  s.model->to(device);
  s.step = std::make_unique<TrainStep>(cfg, s.planes, s.model, loss, device, s.plan, s.lead);

  wsi::StreamOptions so = rankStreamOptions(cfg, device.is_cuda());
  so.pixelAllocator = pixelAllocatorFor(device);  // pinned batches for a GPU
  s.loop = std::make_unique<EpochLoop>(cfg, std::move(train), loss, s.plan, rank, world, so, s.lead);
  if (device.is_cuda()) {
    s.gpuBusy = std::make_unique<GpuBusyMeter>(device.has_index() ? device.index() : 0);
    if (!s.gpuBusy->available())
      std::fprintf(stderr, "rank %d: GPU busy is not measured: %s\n", rank, s.gpuBusy->why().c_str());
  }

  if (!from.empty()) {
    try {
      const std::string fingerprint = s.state.fingerprint;
      s.state = loadTrainState(resume, *s.model, s.step->optimizer());
      s.state.fingerprint = fingerprint;  // the same experiment (checked above); an old file had none
      if (LossScaler* scaler = s.step->scaler())
        scaler->setState(s.state.lossScale > 0 ? s.state.lossScale : scaler->scale(), s.state.lossScaleCleanSteps);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(e.what()) +
                               "\nHINT: the checkpoint must come from the same model and optimizer; "
                               "set train.resume=none (or another run_dir) to start over");
    }
    if (s.state.stepInEpoch % s.plan.groupSize != 0 && s.state.stepInEpoch != s.plan.microPerEpoch)
      throw std::runtime_error(from + ": stream position " + std::to_string(s.state.stepInEpoch) +
                               " is not at an optimizer step of train.accumulation_steps " +
                               std::to_string(s.plan.groupSize) + "; resume with the same settings");
    if (s.lead)
      std::printf("resumed from %s: epoch %lld, step %lld, batch %lld of the epoch\n", from.c_str(),
                  static_cast<long long>(s.state.epoch + 1), static_cast<long long>(s.state.step),
                  static_cast<long long>(s.state.stepInEpoch));
  }
  if (s.lead) {
    fs::create_directories(s.checkpoints->dir());
    std::ofstream(fs::path(cfg.run.runDir) / "config.yaml") << cfg.yaml();
    s.report->openMetricsFile(cfg.run.runDir);
    std::printf("training: %lld patches/epoch, global batch %lld x %lld micro-batches per step "
                "(%lld steps/epoch, %lld steps), %d rank%s, lr %.4g, monitor %s (%s)\n",
                static_cast<long long>(s.plan.epochSize), static_cast<long long>(s.plan.microBatch),
                static_cast<long long>(s.plan.groupSize), static_cast<long long>(s.plan.stepsPerEpoch),
                static_cast<long long>(s.plan.totalSteps), world, world == 1 ? "" : "s", s.step->baseLr(),
                s.report->monitor().c_str(), s.report->monitorMode().c_str());
    std::printf("device %s, device plane %s, host plane %s, amp %s\n", device.str().c_str(),
                s.planes.device->backend().c_str(), s.planes.host->backend().c_str(),
                ampModeName(s.step->amp()));
    std::fflush(stdout);
  }
}

AfterStep Trainer::Impl::afterStep(bool epochDone) {
  if (state.step == crashAfterStep) return AfterStep::Abandon;  // as if killed: nothing more written
  if (state.step >= plan.totalSteps) return AfterStep::EndPass;
  // Mid-epoch resume point; the end-of-epoch checkpoint is written after the epoch's report.
  if (!epochDone && checkpoints->dueAt(state.step)) checkpoints->saveLast(*model, step->optimizer(), state);
  // SIGTERM/SIGUSR1 on any rank: all stop here with a checkpoint (at an epoch's end the run
  // loop asks after the report, which writes it).
  if (!epochDone && preemptionAgreed(true)) return AfterStep::Abandon;
  return AfterStep::Continue;
}

Trainer::~Trainer() = default;
Model& Trainer::model() { return *impl_->model; }
void Trainer::crashAfterStep(int64_t step) { impl_->crashAfterStep = step; }
void Trainer::observeBatches(std::function<void(int64_t, int64_t, const wsi::Batch&)> observer) {
  impl_->loop->observe(std::move(observer));
}
int64_t Trainer::stepsPerEpoch() const { return impl_->plan.stepsPerEpoch; }
int64_t Trainer::totalSteps() const { return impl_->plan.totalSteps; }

TrainResult Trainer::run() {
  Impl& s = *impl_;
  TrainResult result;
  result.monitor = s.report->monitor();
  result.bestMetric = s.state.bestMetric;
  result.bestEpoch = s.state.bestEpoch;
  result.steps = s.state.step;
  result.epochs = s.state.epoch;
  if (s.state.finished || s.state.step >= s.plan.totalSteps) {
    if (s.lead)
      std::printf("nothing to train: the checkpoint is at step %lld, which ends this run "
                  "(train.resume=none starts over)\n", static_cast<long long>(s.state.step));
    result.stoppedEarly = s.state.finished;
    return result;
  }
  while (s.state.step < s.plan.totalSteps && s.state.epoch < s.plan.epochs) {
    EpochTally tally;
    tally.cm = ConfusionMatrix(static_cast<int>(s.classNames.size()));
    const int64_t epochIndex = s.state.epoch;
    // model.unfreeze_after_epochs: every rank unfreezes at the same epoch start, then rebuilds
    // optimizer and GradSync (collective) - fresh optimizer state for the enlarged set.
    if (s.state.stepInEpoch == 0 && unfreezeIfDue(*s.model, s.settings.model, epochIndex)) {
      s.step->rebuildOptimizer();
      if (s.lead) std::printf("epoch %lld: all layers trainable now\n", static_cast<long long>(epochIndex + 1));
    }
    if (s.gpuBusy) s.gpuBusy->restart();
    const bool passed = s.loop->run(*s.step, s.state, tally, [&s](bool epochDone) { return s.afterStep(epochDone); });
    if (s.gpuBusy) tally.gpuBusyPct = s.gpuBusy->windowMeanPct();
    if (!passed) {
      // crash hook (as if killed) or preempted
      result.preempted = s.checkpoints->preemptSignal() != 0;
      result.steps = s.state.step;
      return result;
    }
    // The training stream's settings, already sized for this node.
    const InferenceOptions io = inferenceOptions(s.settings.predict, s.loop->streamOptions(),
                                                 s.loop->normalization(), s.settings.augment);
    const EpochOutcome outcome =
        s.report->finish(tally, epochIndex, s.plan, s.state, *s.step, *s.model, s.planes, io);
    result = outcome.result;
    s.checkpoints->saveLast(*s.model, s.step->optimizer(), s.state);
    if (outcome.improved) s.checkpoints->saveBest(*s.model, s.step->optimizer(), s.state);
    s.checkpoints->exportWeights(*s.model);
    if (result.stoppedEarly) break;
    if (s.state.step < s.plan.totalSteps && s.state.epoch < s.plan.epochs && s.preemptionAgreed(false)) {
      result.preempted = true;  // last.pt was written at the epoch's end
      return result;
    }
  }
  s.planes.host->barrier();  // nobody leaves while rank 0 still writes a checkpoint another may read
  if (s.lead) {
    if (result.val) {
      std::printf("validation report (patches, last epoch):\n%s",
                  result.val->patch.report(s.classNames).c_str());
    } else {
      std::printf("training report (patches, last epoch):\n%s", result.train.report(s.classNames).c_str());
    }
    std::printf("checkpoint: %s\n", s.checkpoints->lastPath().c_str());
    std::fflush(stdout);
  }
  return result;
}

}  // namespace slidetrain
