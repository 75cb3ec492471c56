#include "src/Trainer.h"

#include "src/Settings.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include "distributed/GradSync.h"
#include "distributed/MpiComm.h"
#include "distributed/Sampler.h"
#include "distributed/SyncBatchNorm.h"
#include "src/BatchTensor.h"
#include "src/Checkpoint.h"
#include "src/Inference.h"
#include "src/Metrics.h"
#include "src/ModelZoo.h"
#include "src/Optim.h"
#include "src/SplitData.h"
#include "wsi/Augment.h"

namespace fs = std::filesystem;

namespace slidetrain {

int threadsPerRank(const Config& cfg, int localSize) {
  const int64_t t = cfg.getInt("train.threads");
  if (t > 0) return static_cast<int>(t);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, localSize));
}

namespace {

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int runTrain(const Config& cfg) {
  dist::ensureMpiInitialized();
  dist::CommOptions co;
  co.timeout = std::chrono::milliseconds(static_cast<int64_t>(cfg.getFloat("train.timeout_s") * 1000));
  std::shared_ptr<dist::Comm> comm = dist::makeComm(cfg.getString("train.backend"), co);
  const int rank = comm->rank(), world = comm->size();
  const bool lead = rank == 0;
  at::set_num_threads(threadsPerRank(cfg, dist::localSize()));

  const int64_t globalBatch = cfg.getInt("train.batch_size");
  if (globalBatch % world != 0)
    throw ConfigError("train.batch_size: " + std::to_string(globalBatch) +
                      " is not divisible by the world size " + std::to_string(world));
  const uint64_t seed = static_cast<uint64_t>(cfg.getInt("seed"));
  const std::string runDir = cfg.getString("run_dir");
  if (lead) {
    fs::create_directories(fs::path(runDir) / "checkpoints");
    std::ofstream(fs::path(runDir) / "config.yaml") << cfg.toYaml();
  }

  const wsi::Cohort cohort = wsi::Cohort::read(cfg.getString("cohort"));
  const int numClasses = static_cast<int>(cohort.classes.size());
  SplitData train = prepareSplit(cfg, cohort, "train", *comm);
  if (train.samples.empty()) throw std::runtime_error(cfg.getString("cohort") + ": the train split has no patches");
  std::optional<SplitData> val;
  if (!cohort.indicesOfSplit("val").empty()) val = prepareSplit(cfg, cohort, "val", *comm);

  // Same initial weights on every rank from the seed; GradSync also broadcasts rank 0's.
  torch::manual_seed(seed);
  std::shared_ptr<Model> model = buildModel(modelOptionsFromConfig(cfg, numClasses));
  if (world > 1 && cfg.getBool("train.sync_batchnorm")) dist::convertSyncBatchNorm(*model, comm);
  dist::GradSyncOptions gso;
  gso.bucketCapMB = cfg.getFloat("train.bucket_mb");
  gso.firstBucketCapMB = cfg.getFloat("train.first_bucket_mb");
  dist::GradSync sync(comm, *model, gso);

  std::vector<at::Tensor> params;
  for (auto& p : model->parameters())
    if (p.requires_grad()) params.push_back(p);
  auto optimizer = makeOptimizer(optimizerFromConfig(cfg), params);
  const int64_t epochs = cfg.getInt("train.epochs");
  const int64_t n = static_cast<int64_t>(train.samples.size());
  const int64_t batchesPerEpoch = dist::numGlobalBatches(n, globalBatch, /*dropLast=*/true);
  if (batchesPerEpoch == 0)
    throw ConfigError("train.batch_size: " + std::to_string(globalBatch) + " exceeds the " +
                      std::to_string(n) + " training patches");
  const LrSchedule schedule(scheduleFromConfig(cfg), cfg.getFloat("optimizer.lr"), epochs * batchesPerEpoch);

  const Normalization norm = normFromConfig(cfg);
  const wsi::AugmentOptions aug = augmentFromConfig(cfg);
  int64_t currentEpoch = 0;  // read by workers; changed only between passes (workers stopped)
  wsi::PatchTransform transform = [&](wsi::RgbImage& img, const wsi::PatchRequest& r) {
    if (aug.any()) wsi::augmentPatch(img, aug, dist::mixSeed(seed, currentEpoch, r.id, 0xA06));
  };
  const wsi::StreamOptions so = streamOptionsFromConfig(cfg, dist::localSize());
  wsi::PatchStream stream(train.paths, so, transform, train.slideOptions);

  std::ofstream metricsOut;
  if (lead) metricsOut.open(fs::path(runDir) / "metrics.jsonl", std::ios::app);
  const int64_t logEvery = cfg.getInt("train.log_every");
  const double labelSmoothing = cfg.getFloat("train.label_smoothing");
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    currentEpoch = epoch;
    const auto order = dist::globalOrder(n, seed, epoch);
    std::vector<std::vector<wsi::PatchRequest>> batches;
    for (int64_t k = 0; k < batchesPerEpoch; ++k) {
      std::vector<wsi::PatchRequest> b;
      for (int64_t i : dist::rankSliceOfBatch(order, globalBatch, k, rank, world)) b.push_back(train.samples[i]);
      batches.push_back(std::move(b));
    }
    stream.start(std::move(batches));
    model->train();
    const auto t0 = std::chrono::steady_clock::now();
    const double wait0 = stream.stats().waitSeconds;
    ConfusionMatrix cm(numClasses);
    double lossSum = 0;
    int64_t seen = 0;
    for (int64_t k = 0; k < batchesPerEpoch; ++k) {
      auto b = stream.next();
      schedule.apply(*optimizer, step);
      optimizer->zero_grad();
      at::Tensor x = batchToTensor(*b, norm), y = labelsToTensor(*b);
      at::Tensor logits = model->forward(x);
      // Mean over the local batch; local batches are equal (drop_last, batch divisible by the
      // world size), so averaging gradients over ranks gives the global-batch mean exactly.
      at::Tensor loss = torch::nn::functional::cross_entropy(
          logits, y, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(labelSmoothing));
      loss.backward();
      sync.finalize();
      optimizer->step();
      ++step;
      const at::Tensor pred = logits.argmax(1).contiguous();
      const int64_t* pp = pred.data_ptr<int64_t>();
      for (size_t i = 0; i < b->count(); ++i) cm.add(b->labels[i], static_cast<int>(pp[i]));
      lossSum += loss.item<double>() * static_cast<double>(b->count());
      seen += static_cast<int64_t>(b->count());
      if (lead && (k + 1) % logEvery == 0) {
        const double el = seconds(t0);
        std::printf("epoch %lld step %lld/%lld  loss %.4f  patches/s %.0f  data-wait %.0f%%\n",
                    static_cast<long long>(epoch + 1), static_cast<long long>(k + 1),
                    static_cast<long long>(batchesPerEpoch), lossSum / std::max<int64_t>(1, seen),
                    seen * world / std::max(1e-9, el),
                    100.0 * (stream.stats().waitSeconds - wait0) / std::max(1e-9, el));
        std::fflush(stdout);
      }
    }
    // Epoch metrics summed over ranks: [loss_sum, seen, confusion counts...] in one all-reduce.
    std::vector<double> packed{lossSum, static_cast<double>(seen)};
    for (int64_t c : cm.counts()) packed.push_back(static_cast<double>(c));
    at::Tensor t = at::tensor(packed, at::kDouble);
    comm->allReduce(t, dist::ReduceOp::Sum);  // collective, same order on every rank
    std::vector<int64_t> counts;
    for (int64_t i = 2; i < t.numel(); ++i) counts.push_back(static_cast<int64_t>(t[i].item<double>()));
    const Metrics m = Metrics::compute(ConfusionMatrix::fromCounts(numClasses, counts));
    const double el = seconds(t0);
    const double waitPct = 100.0 * (stream.stats().waitSeconds - wait0) / std::max(1e-9, el);
    const double trainLoss = t[0].item<double>() / std::max(1.0, t[1].item<double>());

    std::string valJson;
    if (val) {
      InferenceOptions io;
      io.batchSize = static_cast<int>(cfg.getInt("predict.batch_size"));
      io.workers = so.workers;
      io.norm = norm;
      at::Tensor probs = predictProbabilities(*model, *val, numClasses, io, *comm);
      ConfusionMatrix vcm(numClasses);
      at::Tensor vp = probs.argmax(1);
      for (size_t i = 0; i < val->samples.size(); ++i)
        if (!std::isnan(probs[i][0].item<float>()))
          vcm.add(val->samples[i].label, static_cast<int>(vp[i].item<int64_t>()));
      valJson = ", \"val\": " + Metrics::compute(vcm).toJson();
    }
    if (lead) {
      std::printf("epoch %lld/%lld  loss %.4f  acc %.4f  %.1fs  %.0f patches/s  data-wait %.1f%%\n",
                  static_cast<long long>(epoch + 1), static_cast<long long>(epochs), trainLoss,
                  m.accuracy, el, t[1].item<double>() / std::max(1e-9, el), waitPct);
      std::fflush(stdout);
      metricsOut << "{\"epoch\": " << epoch + 1 << ", \"step\": " << step << ", \"loss\": " << trainLoss
                 << ", \"lr\": " << schedule.lrAt(step - 1) << ", \"seconds\": " << el
                 << ", \"patches_per_s\": " << t[1].item<double>() / std::max(1e-9, el)
                 << ", \"data_wait_pct\": " << waitPct << ", \"train\": " << m.toJson() << valJson << "}\n";
      metricsOut.flush();
      TrainProgress p{epoch + 1, step, 0};
      saveCheckpoint((fs::path(runDir) / "checkpoints" / "last.pt").string(), *model, optimizer.get(), p);
      exportStateDict((fs::path(runDir) / "weights.pt").string(), *model);
    }
  }
  comm->barrier();  // nobody exits while rank 0 still writes the checkpoint another may read
  if (lead) std::printf("checkpoint: %s\n", (fs::path(runDir) / "checkpoints" / "last.pt").c_str());
  return 0;
}

}  // namespace slidetrain
