#include "src/train/TrainStep.h"

#include <cstdio>
#include <optional>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "distributed/SyncBatchNorm.h"
#include "src/data/StreamOptions.h"
#include "src/models/Outputs.h"

namespace slidetrain {

TrainStep::TrainStep(const Settings& s, dist::Planes planes, std::shared_ptr<Model> model,
                     LossOptions loss, at::Device device, const EpochPlan& plan, bool lead)
    : planes_(std::move(planes)),
      model_(std::move(model)),
      loss_(std::move(loss)),
      device_(device),
      batches_(normalization(s.data), device),
      classWeights_(classWeightTensor(loss_, device)),
      amp_(parseAmpMode(s.train.amp)),
      channelsLast_(s.train.channelsLast),  // NHWC weights and inputs (CPU and CUDA)
      broadcastBuffers_(false),
      gradClip_(s.train.gradClipNorm),
      lr_(s.optimizer.lr),
      optimizerOptions_(optimizerOptions(s.optimizer)) {
  if (amp_ == AmpMode::Fp16) {
    LossScalerOptions lso;
    lso.initScale = s.train.ampInitScale;
    lso.growthInterval = s.train.ampGrowthInterval;
    scaler_ = std::make_unique<LossScaler>(lso, planes_.device, device_);
    if (!device_.is_cuda() && lead)
      std::fprintf(stderr, "train.amp: fp16 autocast runs on CUDA only; on the CPU the forward stays "
                   "float32 and only the loss scaler is active (bf16 autocasts on the CPU)\n");
  }
  if (channelsLast_) {
    torch::NoGradGuard ng;
    for (auto& p : model_->parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
  // At every world size (1 included) when on: one BatchNorm computation for any number of ranks.
  if (s.train.syncBatchnorm) dist::convertSyncBatchNorm(*model_, planes_.device);
  broadcastBuffers_ = planes_.size() > 1 && !s.train.syncBatchnorm && !model_->buffers().empty();
  syncOptions_.bucketCapMB = s.train.bucketMb;
  syncOptions_.firstBucketCapMB = s.train.firstBucketMb;
  rebuildOptimizer();
  // Linear scaling rule: lr proportional to the effective global batch of one step.
  if (s.optimizer.scaleLrWithBatch)
    lr_ *= static_cast<double>(plan.effectiveBatch()) / static_cast<double>(s.optimizer.referenceBatchSize);
  schedule_ = std::make_unique<LrSchedule>(scheduleOptions(s.schedule), lr_, plan.totalSteps);
}

TrainStep::~TrainStep() = default;

void TrainStep::rebuildOptimizer() {
  sync_.reset();  // its hooks belong to the old parameter set
  sync_ = std::make_unique<dist::GradSync>(planes_, *model_, syncOptions_);  // collective
  params_.clear();
  for (auto& p : model_->parameters())
    if (p.requires_grad()) params_.push_back(p);
  optimizer_ = makeOptimizer(optimizerOptions_, params_);
}

void TrainStep::startPass() { model_->train(); }

void TrainStep::begin(int64_t step, double normaliser) {
  schedule_->apply(*optimizer_, step);
  optimizer_->zero_grad();
  // Convention (docs/distributed.md): backpropagate W / (global normaliser of the whole
  // optimizer step) x the local loss sum; GradSync's average then is the exact gradient of
  // the mean over all micro-batches of the step, for any slice sizes and class weights.
  factor_ = planes_.size() / std::max(1e-12, normaliser);
}

MicroBatchResult TrainStep::forwardBackward(const wsi::Batch& b, bool last,
                                             const std::vector<int64_t>& samplesPerRank) {
  sync_->setSyncEnabled(last);
  at::Tensor x = batches_.inputs(b), y = batches_.labels(b);
  if (channelsLast_) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  if (broadcastBuffers_) sync_->broadcastBuffers();  // collective, every micro-batch on every rank
  MicroBatchResult r;
  r.labels = y;
  std::optional<dist::GlobalBatchScope> scope;
  if (!samplesPerRank.empty()) scope.emplace(samplesPerRank);
  {
    // fp16 autocasts on CUDA only (said at start); bf16 on CUDA and the CPU.
    const bool autocast = amp_ == AmpMode::Bf16 || (amp_ == AmpMode::Fp16 && device_.is_cuda());
    AutocastScope ac(device_.type(), autocast ? amp_ : AmpMode::Off);
    r.logits = model_->forward(x);
  }
  r.logits = r.logits.to(at::kFloat);  // the loss in float32, as under torch.autocast
  r.lossSum = lossSum(r.logits, y, loss_, classWeights_);
  at::Tensor objective = r.lossSum * factor_;
  if (scaler_) objective = objective * scaler_->scale();  // fp16: keep small gradients above 2^-24
  objective.backward();
  return r;
}

bool TrainStep::finish() {
  sync_->finalize();  // averaged gradients, identical on every rank
  // fp16: unscale and skip the step on every rank when any rank saw inf/NaN (collective).
  const bool finite = scaler_ ? scaler_->unscale(params_) : true;
  if (finite) {
    if (gradClip_ > 0) clipGradNorm();
    optimizer_->step();
  }
  if (scaler_) scaler_->update(finite);
  return finite;
}

void TrainStep::clipGradNorm() {
  // torch.nn.utils.clip_grad_norm_ as torch.optim's foreach path computes it: the L2 norm of the
  // per-parameter norms, every gradient scaled by min(1, max_norm / (norm + 1e-6)) on the device
  // (libtorch's C++ version reads the norm back to decide; this one never waits for the device).
  std::vector<at::Tensor> grads;
  for (const auto& p : params_)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return;
  torch::NoGradGuard ng;
  const at::Tensor total = at::stack(at::_foreach_norm(grads, 2)).norm(2);
  const at::Tensor coef = (gradClip_ / (total + 1e-6)).clamp_max(1.0);
  for (auto& g : grads) g.mul_(coef);
}

void TrainStep::broadcastBuffers() {
  if (broadcastBuffers_) sync_->broadcastBuffers();
}

}  // namespace slidetrain
