#pragma once
// What the training benchmarks (bench_train_step, bench_gpu_step) time: the trainer's own
// TrainStep - the one `slidetrain train` runs - around a zoo model built from seed 0 (the model of
// bench/train_step.py's Python twin): the batch converted on the device, forward under autocast,
// the loss in float32, backward with GradSync, fp16 through the loss scaler, SGD with momentum
// 0.9 (lr 0.01), SyncBatchNorm when asked (train.sync_batchnorm). Only the set-up is here.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <torch/types.h>

#include "distributed/Planes.h"
#include "src/config/Settings.h"
#include "src/models/ModelZoo.h"
#include "src/train/EpochPlan.h"
#include "src/train/Loss.h"
#include "src/train/TrainStep.h"
#include "wsi/PatchStream.h"

namespace slidetrain::bench {

struct BenchTrainer {
  dist::Planes planes;
  std::shared_ptr<Model> model;
  std::unique_ptr<TrainStep> step;
  int64_t steps = 0, skipped = 0;

  /// `batch` is this rank's; the global batch is batch x world size.
  /// `overrides`: further train.* settings (e.g. train.channels_last=false).
  BenchTrainer(const std::string& name, int size, int batch, const std::string& amp, bool syncBatchnorm,
               dist::Planes p, const at::Device& device = at::Device(at::kCPU),
               const std::vector<std::string>& overrides = {})
      : planes(std::move(p)) {
    const int world = planes.size();
    std::vector<std::string> o = {"model.name=" + name, "tiling.patch_size=" + std::to_string(size),
                                  "train.batch_size=" + std::to_string(batch * world), "optimizer.name=momentum",
                                  "optimizer.lr=0.01", "optimizer.momentum=0.9", "train.amp=" + amp,
                                  std::string("train.sync_batchnorm=") + (syncBatchnorm ? "true" : "false")};
    o.insert(o.end(), overrides.begin(), overrides.end());
    const Settings s = Settings::defaults(o);
    torch::manual_seed(0);
    ModelOptions mo;
    mo.name = name;
    mo.numClasses = 2;
    mo.inputSize = size;
    model = buildModel(mo);
    model->to(device);
    const EpochPlan plan = EpochPlan::make(int64_t{batch} * world * 1000000, s.train, false, world);
    step = std::make_unique<TrainStep>(s, planes, model, lossOptions(s.train), device, plan,
                                       planes.rank() == 0);
    step->startPass();
  }

  /// One optimizer step on this rank's `b` (every rank feeds b.count() samples).
  void run(const wsi::Batch& b) {
    step->begin(steps++, static_cast<double>(b.count()) * planes.size());
    step->forwardBackward(b, true, std::vector<int64_t>(static_cast<size_t>(planes.size()),
                                                        static_cast<int64_t>(b.count())));
    if (!step->finish()) ++skipped;
  }
};

/// A batch of `n` random RGB patches of `size` px (seeded) with labels 0/1, as the stream gives.
inline wsi::Batch randomBatch(int n, int size, uint32_t seed) {
  wsi::Batch b;
  b.size = size;
  b.pixels.allocate(static_cast<size_t>(n) * size * size * 3);
  std::mt19937 rng(seed);
  for (size_t i = 0; i < b.pixels.size(); ++i) b.pixels.data()[i] = static_cast<uint8_t>(rng() & 255);
  for (int i = 0; i < n; ++i) b.labels.push_back(i % 2), b.ids.push_back(i);
  return b;
}

}  // namespace slidetrain::bench
