// Trainer: setup (model, optimizer, gradient sync, stream, resume) and the epoch loop; the
// micro-batch loop is in TrainEpoch.cpp and the end-of-epoch work in TrainReport.cpp.
#include "src/train/Trainer.h"

#include <sched.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include "distributed/MpiComm.h"
#include "distributed/Sampler.h"
#include "distributed/SyncBatchNorm.h"
#include "src/train/EarlyStopping.h"
#include "src/train/RunFingerprint.h"
#include "src/runtime/Runtime.h"
#include "src/data/ClassOrder.h"
#include "src/data/StreamOptions.h"
#include "src/models/Transfer.h"
#include "src/runtime/Preemption.h"
#include "src/train/TrainerImpl.h"

namespace fs = std::filesystem;

namespace slidetrain {

std::string Trainer::Impl::checkpointDir() const { return (fs::path(runDir) / "checkpoints").string(); }

Trainer::Trainer(const Settings& cfg, dist::Planes planes, SplitData train,
                 std::optional<SplitData> val, std::vector<std::string> classNames)
    : impl_(std::make_unique<Impl>(cfg)) {
  Impl& s = *impl_;
  s.planes = std::move(planes);
  s.rank = s.planes.rank();
  s.world = s.planes.size();
  s.lead = s.rank == 0;
  installPreemptionHandlers();  // SIGTERM/SIGUSR1: stop at an agreed step with a checkpoint
  s.train = std::move(train);
  s.val = std::move(val);
  s.classNames = std::move(classNames);
  s.numClasses = static_cast<int>(s.classNames.size());
  if (s.train.samples.empty()) throw std::runtime_error("the train split has no patches");

  s.seed = static_cast<uint64_t>(cfg.run.seed);
  s.runDir = cfg.run.runDir;
  s.loss = lossOptions(cfg.train);
  s.loss.validate(s.numClasses);
  s.sampling.maxPatchesPerSlide = cfg.data.maxPatchesPerSlide;
  s.sampling.classBalanced = cfg.data.classBalanced;
  s.microBatch = cfg.train.batchSize;
  if (s.microBatch % s.world != 0)
    throw ConfigError("train.batch_size: " + std::to_string(s.microBatch) +
                      " is not divisible by the world size " + std::to_string(s.world));

  // Epoch geometry. The epoch size does not change between epochs (cap and balance keep it).
  s.epochSize = static_cast<int64_t>(epochSampleList(s.train.samples, s.sampling, s.seed, 0).size());
  const OptimizerOptions oo = optimizerOptions(cfg.optimizer);
  s.fullBatch = oo.name == "gd";
  // Full-batch GD covers every sample (the trailing partial micro-batch included); mini-batch
  // training drops it so every step has the same global batch.
  s.microPerEpoch = dist::numGlobalBatches(s.epochSize, s.microBatch, /*dropLast=*/!s.fullBatch);
  if (s.microPerEpoch == 0)
    throw ConfigError("train.batch_size: " + std::to_string(s.microBatch) + " exceeds the " +
                      std::to_string(s.epochSize) + " training patches of an epoch");
  s.groupSize = s.fullBatch ? s.microPerEpoch : cfg.train.accumulationSteps;
  s.stepsPerEpoch = (s.microPerEpoch + s.groupSize - 1) / s.groupSize;
  const int64_t maxSteps = cfg.train.maxSteps;
  s.totalSteps = maxSteps > 0 ? maxSteps : cfg.train.epochs * s.stepsPerEpoch;
  s.epochs = (s.totalSteps + s.stepsPerEpoch - 1) / s.stepsPerEpoch;
  s.gradClip = cfg.train.gradClipNorm;
  s.checkpointEvery = cfg.train.checkpointEverySteps;
  const Monitor monitor = resolveMonitor(cfg.train.earlyStopping.metric, cfg.train.earlyStopping.mode,
                                         s.val.has_value());
  s.monitor = monitor.metric;
  s.monitorMode = monitor.mode;
  if (!monitor.note.empty() && s.lead) std::fprintf(stderr, "warning: %s\n", monitor.note.c_str());
  if (s.lead)
    for (const auto& w : inertOptimizerKeys(oo, scheduleOptions(cfg.schedule), cfg.changedKeys()))
      std::fprintf(stderr, "warning: %s\n", w.c_str());
  s.patience = cfg.train.earlyStopping.patience;
  s.minDelta = cfg.train.earlyStopping.minDelta;

  // Device: chosen with the planes (src/runtime/Runtime.h). channels_last only pays on CUDA.
  s.device = s.planes.modelDevice;
  s.amp = parseAmpMode(cfg.train.amp);
  if (s.amp == AmpMode::Fp16) {
    LossScalerOptions lso;
    lso.initScale = cfg.train.ampInitScale;
    lso.growthInterval = cfg.train.ampGrowthInterval;
    s.scaler = std::make_unique<LossScaler>(lso, s.planes.device, s.device);
    if (!s.device.is_cuda() && s.lead)
      std::fprintf(stderr, "train.amp: fp16 autocast runs on CUDA only; on the CPU the forward stays "
                   "float32 and only the loss scaler is active (bf16 autocasts on the CPU)\n");
  }
  s.channelsLast = cfg.train.channelsLast && s.device.is_cuda();

  // Same initial weights on every rank from the seed; GradSync also broadcasts rank 0's.
  torch::manual_seed(s.seed);
  s.model = buildModel(modelOptions(cfg.model, modelOutputs(s.loss, s.numClasses),
                                        cfg.tiling.index.size));
  applyTransferLearning(*s.model, cfg.model, s.lead);  // model.pretrained, model.freeze_up_to
  // Rank 0 picks and reads the checkpoint; every rank gets its bytes (collective).
  const CheckpointFile resume = shareResumeCheckpoint(cfg.train.resume, s.runDir, *s.planes.host);
  const std::string& from = resume.path;
  s.state.fingerprint =
      serializeFingerprint(runFingerprint(cfg, s.train, s.val ? &*s.val : nullptr, s.classNames));
  if (!from.empty()) {
    const TrainState at = peekTrainState(resume);
    // Only the same experiment may continue (a changed cohort, fold or setting would silently
    // train on with another one's weights - in cv, on the new fold's validation slides).
    if (at.fingerprint.empty()) {
      if (s.lead)
        std::fprintf(stderr, "warning: %s has no run fingerprint (an earlier slidetrain wrote it); "
                     "resuming without checking that it is the same experiment\n", from.c_str());
    } else {
      const auto diff = fingerprintDifferences(parseFingerprint(at.fingerprint),
                                               parseFingerprint(s.state.fingerprint));
      if (!diff.empty()) {
        std::string msg = from + ": this checkpoint belongs to another experiment; what differs:";
        for (const auto& d : diff) msg += "\n  " + d;
        throw ConfigError(msg + "\nHINT: train.resume=none (or another run_dir) starts over; "
                          "more epochs or a longer train.max_steps resume fine");
      }
    }
    // Layers unfrozen before the checkpoint was written must be trainable before the optimizer
    // whose state it holds is built (the unfreeze at an epoch start happens in run()).
    for (int64_t e = 0; e < at.epoch + (at.stepInEpoch > 0 ? 1 : 0); ++e) unfreezeIfDue(*s.model, cfg.model, e);
  }
  s.model->to(s.device);
  if (s.channelsLast) {
    torch::NoGradGuard ng;
    for (auto& p : s.model->parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
  // At every world size (1 included) when on: one BatchNorm computation for any number of ranks.
  if (cfg.train.syncBatchnorm) dist::convertSyncBatchNorm(*s.model, s.planes.device);
  s.broadcastBuffers = s.world > 1 && !cfg.train.syncBatchnorm && !s.model->buffers().empty();
  s.optimizerOptions = oo;
  s.buildOptimizer();

  // Linear scaling rule: lr proportional to the effective global batch of one step.
  double lr = oo.lr;
  const int64_t effectiveBatch = s.fullBatch ? s.epochSize : s.microBatch * s.groupSize;
  if (cfg.optimizer.scaleLrWithBatch)
    lr *= static_cast<double>(effectiveBatch) / static_cast<double>(cfg.optimizer.referenceBatchSize);
  s.schedule = std::make_unique<LrSchedule>(scheduleOptions(cfg.schedule), lr, s.totalSteps);

  s.norm = normalization(cfg.data);
  s.aug = cfg.augment;
  Impl* self = &s;
  wsi::PatchTransform transform = [self](wsi::RgbImage& img, const wsi::PatchRequest& r) {
    if (self->aug.any())
      wsi::augmentPatch(img, self->aug, dist::mixSeed(self->seed, self->currentEpoch, r.id, 0xA06));
  };
  s.streamOptions = rankStreamOptions(cfg, s.device.is_cuda());
  s.streamOptions.pixelAllocator = pixelAllocatorFor(s.device);  // pinned batches for a GPU
  s.stream = std::make_unique<wsi::PatchStream>(s.train.paths, s.streamOptions, transform,
                                                s.train.slideOptions);
  s.progress = std::make_unique<Progress>(s.lead, cfg.train.logEvery, cfg.train.progress);

  if (!from.empty()) {
    try {
      const std::string fingerprint = s.state.fingerprint;
      s.state = loadTrainState(resume, *s.model, *s.optimizer);
      s.state.fingerprint = fingerprint;  // the same experiment (checked above); an old file had none
      if (s.scaler) s.scaler->setState(s.state.lossScale > 0 ? s.state.lossScale : s.scaler->scale(),
                                       s.state.lossScaleCleanSteps);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(e.what()) +
                               "\nHINT: the checkpoint must come from the same model and optimizer; "
                               "set train.resume=none (or another run_dir) to start over");
    }
    if (s.state.stepInEpoch % s.groupSize != 0 && s.state.stepInEpoch != s.microPerEpoch)
      throw std::runtime_error(from + ": stream position " + std::to_string(s.state.stepInEpoch) +
                               " is not at an optimizer step of train.accumulation_steps " +
                               std::to_string(s.groupSize) + "; resume with the same settings");
    if (s.lead)
      std::printf("resumed from %s: epoch %lld, step %lld, batch %lld of the epoch\n", from.c_str(),
                  static_cast<long long>(s.state.epoch + 1), static_cast<long long>(s.state.step),
                  static_cast<long long>(s.state.stepInEpoch));
  }
  if (s.lead) {
    fs::create_directories(s.checkpointDir());
    std::ofstream(fs::path(s.runDir) / "config.yaml") << cfg.yaml();
    s.metricsOut.open(fs::path(s.runDir) / "metrics.jsonl", std::ios::app);
    std::printf("training: %lld patches/epoch, global batch %lld x %lld micro-batches per step "
                "(%lld steps/epoch, %lld steps), %d rank%s, lr %.4g, monitor %s (%s)\n",
                static_cast<long long>(s.epochSize), static_cast<long long>(s.microBatch),
                static_cast<long long>(s.groupSize), static_cast<long long>(s.stepsPerEpoch),
                static_cast<long long>(s.totalSteps), s.world, s.world == 1 ? "" : "s", lr,
                s.monitor.c_str(), s.monitorMode.c_str());
    std::printf("device %s, device plane %s, host plane %s, amp %s\n", s.device.str().c_str(),
                s.planes.device->backend().c_str(), s.planes.host->backend().c_str(),
                ampModeName(s.amp));
    std::fflush(stdout);
  }
}

void Trainer::Impl::buildOptimizer() {
  sync.reset();  // its hooks belong to the old parameter set
  dist::GradSyncOptions gso;
  gso.bucketCapMB = settings.train.bucketMb;
  gso.firstBucketCapMB = settings.train.firstBucketMb;
  sync = std::make_unique<dist::GradSync>(planes, *model, gso);  // collective
  params.clear();
  for (auto& p : model->parameters())
    if (p.requires_grad()) params.push_back(p);
  optimizer = makeOptimizer(optimizerOptions, params);
}

Trainer::~Trainer() = default;
Model& Trainer::model() { return *impl_->model; }
void Trainer::crashAfterStep(int64_t step) { impl_->crashAfterStep = step; }
void Trainer::observeBatches(std::function<void(int64_t, int64_t, const wsi::Batch&)> observer) {
  impl_->batchObserver = std::move(observer);
}
int64_t Trainer::stepsPerEpoch() const { return impl_->stepsPerEpoch; }
int64_t Trainer::totalSteps() const { return impl_->totalSteps; }

TrainResult Trainer::run() {
  Impl& s = *impl_;
  TrainResult result;
  result.monitor = s.monitor;
  result.bestMetric = s.state.bestMetric;
  result.bestEpoch = s.state.bestEpoch;
  result.steps = s.state.step;
  result.epochs = s.state.epoch;
  if (s.state.finished || s.state.step >= s.totalSteps) {
    if (s.lead)
      std::printf("nothing to train: the checkpoint is at step %lld, which ends this run "
                  "(train.resume=none starts over)\n", static_cast<long long>(s.state.step));
    result.stoppedEarly = s.state.finished;
    return result;
  }
  while (s.state.step < s.totalSteps && s.state.epoch < s.epochs) {
    EpochTally tally;
    tally.cm = ConfusionMatrix(s.numClasses);
    const int64_t epochIndex = s.state.epoch;
    // model.unfreeze_after_epochs: every rank unfreezes at the same epoch start, then rebuilds
    // optimizer and GradSync (collective) - fresh optimizer state for the enlarged set.
    if (s.state.stepInEpoch == 0 && unfreezeIfDue(*s.model, s.settings.model, epochIndex)) {
      s.buildOptimizer();
      if (s.lead) std::printf("epoch %lld: all layers trainable now\n", static_cast<long long>(epochIndex + 1));
    }
    if (!s.trainEpoch(tally)) {  // crash hook (as if killed) or preempted
      result.preempted = s.preemptSignal != 0;
      result.steps = s.state.step;
      return result;
    }
    result = s.endEpoch(tally, epochIndex);
    if (result.stoppedEarly) break;
    if (s.state.step < s.totalSteps && s.state.epoch < s.epochs && s.preemptionAgreed(false)) {
      result.preempted = true;  // endEpoch wrote last.pt at the epoch's end
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
    std::printf("checkpoint: %s\n", (fs::path(s.checkpointDir()) / "last.pt").c_str());
    std::fflush(stdout);
  }
  return result;
}

int runTrain(const Settings& cfg) {
  const dist::Planes planes = startRuntime(cfg.train, cfg.data);
  const wsi::Cohort cohort = readCohort(cfg.run, cfg.data);
  if (planes.rank() == 0) std::printf("%s\n", classOrderLine(cohort).c_str());
  SplitData train = prepareSplit(cfg.tiling, cohort, "train", *planes.host);
  if (train.samples.empty()) throw std::runtime_error(cfg.run.cohort + ": the train split has no patches");
  std::optional<SplitData> val;
  if (!cohort.indicesOfSplit("val").empty()) val = prepareSplit(cfg.tiling, cohort, "val", *planes.host);
  Trainer trainer(cfg.withClasses(cohort.classes), planes, std::move(train), std::move(val), cohort.classes);
  return trainer.run().preempted ? kExitPreempted : 0;
}

}  // namespace slidetrain
