#include "src/mil/MilTrainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/utils.h>
#include <torch/optim/optimizer.h>

#include "distributed/GradSync.h"
#include "src/eval/Metrics.h"
#include "src/mil/FeatureExtraction.h"
#include "src/models/StateDict.h"
#include "src/train/Checkpoint.h"
#include "src/train/Optim.h"
#include "src/train/Progress.h"
#include "wsi/JsonWriter.h"

namespace fs = std::filesystem;

namespace slidetrain::mil {

MilModelOptions milModelOptions(const MilSettings& mil, int64_t inputDim, int numClasses) {
  MilModelOptions o;
  o.name = mil.model;
  o.inputDim = inputDim;
  o.hidden = mil.hidden;
  o.numClasses = numClasses;
  o.dropout = mil.dropout;
  o.clamK = mil.clamK;
  o.clamInstanceWeight = mil.clamInstanceWeight;
  o.transmilLayers = mil.transmilLayers;
  o.transmilHeads = mil.transmilHeads;
  o.transmilLandmarks = mil.transmilLandmarks;
  o.validate();
  return o;
}

namespace {

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// The epoch's bag order: a Fisher-Yates shuffle driven by splitmix64 (the same on every rank
/// and platform).
std::vector<size_t> epochOrder(size_t n, uint64_t seed, int64_t epoch) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  uint64_t state = mix(seed ^ mix(static_cast<uint64_t>(epoch) + 1));
  for (size_t i = n; i > 1; --i) {
    state = mix(state);
    std::swap(order[i - 1], order[state % i]);
  }
  return order;
}

/// Seeds dropout and subsampling of one bag in one epoch, whichever rank runs it.
uint64_t bagSeed(uint64_t seed, int64_t epoch, size_t bag) {
  return mix(mix(seed) ^ mix(static_cast<uint64_t>(epoch) * 1000003ULL + bag + 7)) >> 1;
}

at::Tensor bagLoss(const MilOutput& out, int label, double instanceWeight, c10::Device device) {
  at::Tensor y = at::full({1}, label, at::TensorOptions().dtype(at::kLong).device(device));
  at::Tensor bag = at::cross_entropy_loss(out.logits.to(at::kFloat), y);
  if (!out.instanceLoss.defined()) return bag;
  return (1.0 - instanceWeight) * bag + instanceWeight * out.instanceLoss;
}

std::string readText(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string milFingerprint(const Settings& s, const BagSet& train, const BagSet* val) {
  std::ostringstream o;
  for (const auto& [key, value] : s.values())
    if (key.rfind("mil.", 0) == 0 && key != "mil.epochs" && key != "mil.heatmaps" &&
        key != "mil.bootstrap" && key != "mil.folds")
      o << key << "=" << value << "\n";
  o << "seed=" << s.run.seed << "\ntrain=";
  for (const auto& b : train.bags) o << b.id << ":" << b.label << ":" << b.patches << ",";
  if (val) {
    o << "\nval=";
    for (const auto& b : val->bags) o << b.id << ":" << b.label << ":" << b.patches << ",";
  }
  o << "\n";
  return o.str();
}

BagScores scoreBags(MilModel& model, const BagSet& set, int numClasses, const dist::Planes& planes) {
  const int rank = planes.rank(), world = planes.host->size();
  const c10::Device device = modelDevice(model);
  std::vector<int64_t> sizes;
  for (const auto& b : set.bags) sizes.push_back(b.patches);
  const std::vector<int> rankOf = shardByPatchCount(sizes, world);
  at::Tensor probs = at::zeros({static_cast<int64_t>(set.bags.size()), numClasses}, at::kDouble);
  double lossSum = 0, labelled = 0;
  const bool wasTraining = model.is_training();
  model.eval();
  {
    torch::NoGradGuard noGrad;
    for (size_t b = 0; b < set.bags.size(); ++b) {
      if (rankOf[b] != rank) continue;
      const MilOutput out = model.forward(bagFeatures(set, b).to(device), -1);
      const at::Tensor logits = out.logits.to(at::kCPU, at::kFloat);
      probs[static_cast<int64_t>(b)].copy_(at::softmax(logits, 1)[0]);
      if (set.bags[b].label >= 0) {
        lossSum += at::cross_entropy_loss(logits, at::full({1}, set.bags[b].label, at::kLong)).item<double>();
        labelled += 1;
      }
    }
  }
  model.train(wasTraining);
  at::Tensor tally = at::tensor({lossSum, labelled}, at::kDouble);
  planes.host->allReduce(probs);
  planes.host->allReduce(tally);
  BagScores s;
  s.probabilities = probs.to(at::kFloat);
  s.meanLoss = tally[1].item<double>() > 0 ? tally[0].item<double>() / tally[1].item<double>()
                                           : std::numeric_limits<double>::quiet_NaN();
  return s;
}

at::Tensor bagAttention(MilModel& model, const BagSet& set, size_t bag, c10::Device device) {
  torch::NoGradGuard noGrad;
  const bool wasTraining = model.is_training();
  model.eval();
  at::Tensor a = model.forward(bagFeatures(set, bag).to(device), -1).attention;
  model.train(wasTraining);
  return a.detach().to(at::kCPU, at::kFloat).reshape({-1});
}

MilTrainResult trainMil(const Settings& s, MilModel& model, const BagSet& train, const BagSet* val,
                        int numClasses, const dist::Planes& planes, const std::string& outDir) {
  const MilSettings& m = s.mil;
  const int rank = planes.rank(), world = planes.host->size();
  const bool lead = rank == 0;
  const c10::Device device = planes.modelDevice;
  const fs::path dir(outDir), ckptDir = dir / "checkpoints";
  if (lead) fs::create_directories(ckptDir);
  const std::string fingerprint = milFingerprint(s, train, val);

  dist::GradSyncOptions so;
  so.bucketCapMB = s.train.bucketMb;
  so.firstBucketCapMB = s.train.firstBucketMb;
  dist::GradSync sync(planes, model, so);  // collective; broadcasts rank 0's weights
  std::vector<at::Tensor> params;
  for (auto& p : model.parameters())
    if (p.requires_grad()) params.push_back(p);
  OptimizerSettings os = s.optimizer;  // momentum, betas, eps from optimizer.*
  os.name = m.optimizer;
  os.lr = m.lr;
  os.weightDecay = m.weightDecay;
  os.scaleLrWithBatch = false;
  auto optimizer = makeOptimizer(optimizerOptions(os), params);

  MilTrainResult result;
  result.bestValLoss = std::numeric_limits<double>::quiet_NaN();
  TrainProgress progress;
  double best = std::numeric_limits<double>::infinity();
  int64_t badEpochs = 0;
  const fs::path last = ckptDir / "last.pt", bestPt = ckptDir / "best.pt";
  const fs::path fpFile = ckptDir / "mil_fingerprint.txt", esFile = ckptDir / "early_stopping.txt";
  if (s.train.resume == "auto" && fs::exists(last)) {
    const std::string saved = readText(fpFile);
    if (saved != fingerprint)
      throw ConfigError(last.string() + ": saved by another MIL experiment (mil.* settings, seed or "
                        "bags differ); use another run_dir or train.resume=none to start over");
    progress = loadCheckpoint(last.string(), model, optimizer.get());
    std::ifstream(esFile) >> best >> badEpochs;
    if (lead) std::printf("mil: resuming from %s at epoch %lld\n", last.c_str(),
                          static_cast<long long>(progress.epoch + 1));
  } else if (lead) {
    std::ofstream(fpFile) << fingerprint;
    std::ofstream(dir / "metrics.jsonl", std::ios::trunc);
  }
  std::ofstream metrics;
  if (lead) metrics.open(dir / "metrics.jsonl", std::ios::app);

  const size_t n = train.bags.size();
  const size_t batch = static_cast<size_t>(std::max<int64_t>(1, m.batchBags));
  const auto t0 = std::chrono::steady_clock::now();
  // A rerun reports the epochs already trained; one that had stopped early stays stopped
  // (mil.patience is part of the fingerprint, so the same patience ran out).
  result.epochsRun = progress.epoch;
  const bool stoppedBefore = m.patience > 0 && badEpochs >= m.patience;
  if (stoppedBefore) {
    result.stoppedEarly = true;
    if (lead) std::printf("mil: stopped early at epoch %lld before (no lower val loss for %lld epochs); not training on\n",
                          static_cast<long long>(progress.epoch), static_cast<long long>(badEpochs));
  }
  for (int64_t epoch = stoppedBefore ? m.epochs : progress.epoch; epoch < m.epochs; ++epoch) {
    const auto te = std::chrono::steady_clock::now();
    model.train();
    const std::vector<size_t> order = epochOrder(n, s.run.seed, epoch);
    double lossSum = 0, correct = 0, seen = 0;
    for (size_t start = 0; start < n; start += batch) {
      const size_t count = std::min(batch, n - start);
      std::vector<int64_t> sizes(count);
      for (size_t i = 0; i < count; ++i) {
        const int64_t p = train.bags[order[start + i]].patches;
        sizes[i] = m.maxPatches > 0 ? std::min(p, m.maxPatches) : p;
      }
      const std::vector<int> rankOf = shardByPatchCount(sizes, world);
      optimizer->zero_grad();
      at::Tensor objective;
      const double factor = static_cast<double>(world) / static_cast<double>(count);
      for (size_t i = 0; i < count; ++i) {
        if (rankOf[i] != rank) continue;
        const size_t b = order[start + i];
        torch::manual_seed(bagSeed(s.run.seed, epoch, b));
        at::Tensor x = bagFeatures(train, b);
        if (m.maxPatches > 0 && x.size(0) > m.maxPatches)
          x = x.index_select(0, std::get<0>(at::randperm(x.size(0), at::kLong).narrow(0, 0, m.maxPatches).sort()));
        const int label = train.bags[b].label;
        const MilOutput out = model.forward(x.to(device), label);
        const at::Tensor loss = bagLoss(out, label, m.clamInstanceWeight, device);
        objective = objective.defined() ? objective + loss : loss;
        lossSum += loss.item<double>();
        correct += out.logits.argmax(1).item<int64_t>() == label;
        seen += 1;
      }
      if (objective.defined()) (objective * factor).backward();
      sync.finalize();  // every rank, also one without a bag in this step
      optimizer->step();
      ++progress.step;
    }
    at::Tensor tally = at::tensor({lossSum, correct, seen}, at::kDouble);
    planes.host->allReduce(tally);
    const double trainLoss = tally[0].item<double>() / std::max(1.0, tally[2].item<double>());
    const double trainAcc = tally[1].item<double>() / std::max(1.0, tally[2].item<double>());
    double valLoss = std::numeric_limits<double>::quiet_NaN(), valAuc = -1, valAcc = 0;
    if (val && !val->bags.empty()) {
      const BagScores vs = scoreBags(model, *val, numClasses, planes);
      valLoss = vs.meanLoss;
      std::vector<int> labels;
      std::vector<double> scores;
      for (size_t b = 0; b < val->bags.size(); ++b) {
        labels.push_back(val->bags[b].label);
        scores.push_back(vs.probabilities[static_cast<int64_t>(b)][numClasses - 1].item<double>());
        valAcc += vs.probabilities[static_cast<int64_t>(b)].argmax().item<int64_t>() == labels.back();
      }
      valAcc /= static_cast<double>(val->bags.size());
      if (numClasses == 2) valAuc = rocAuc(labels, scores);
    }
    progress.epoch = epoch + 1;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - te).count();
    bool improved = false;
    if (!std::isnan(valLoss)) {
      improved = valLoss < best;
      if (improved) best = valLoss, badEpochs = 0;
      else ++badEpochs;
    }
    if (lead) {
      wsi::JsonWriter w(metrics, wsi::JsonStyle::compact());
      w.beginObject().key("epoch").value(static_cast<int64_t>(epoch + 1)).key("step").value(progress.step)
          .key("train_loss").value(trainLoss).key("train_acc").value(trainAcc);
      if (!std::isnan(valLoss)) {
        w.key("val_loss").value(valLoss).key("val_acc").value(valAcc);
        if (valAuc >= 0) w.key("val_auc").value(valAuc);
      }
      w.key("seconds").value(secs).endObject();
      metrics << "\n" << std::flush;
      std::printf("mil epoch %lld/%lld: train loss %.4f acc %.3f", static_cast<long long>(epoch + 1),
                  static_cast<long long>(m.epochs), trainLoss, trainAcc);
      if (!std::isnan(valLoss)) std::printf(", val loss %.4f acc %.3f", valLoss, valAcc);
      if (valAuc >= 0) std::printf(" AUC %.3f", valAuc);
      std::printf(" (%s)\n", Progress::formatDuration(secs).c_str());
      std::fflush(stdout);
      saveCheckpoint(last.string(), model, optimizer.get(), progress);
      if (improved) saveCheckpoint(bestPt.string(), model, nullptr, progress);
      std::ofstream(esFile) << wsi::jsonNumber(best, 17) << " " << badEpochs << "\n";
    }
    result.epochsRun = epoch + 1;
    if (m.patience > 0 && badEpochs >= m.patience) {
      result.stoppedEarly = true;
      if (lead) std::printf("mil: early stopping after %lld epochs without a lower val loss\n",
                            static_cast<long long>(badEpochs));
      break;
    }
  }
  planes.host->barrier();  // checkpoints written before anyone reads them
  result.checkpoint = last.string();
  if (val && !val->bags.empty() && fs::exists(bestPt)) {
    loadCheckpoint(bestPt.string(), model, nullptr);
    result.checkpoint = bestPt.string();
    result.bestValLoss = best;
  }
  if (lead)
    std::printf("mil: %lld epochs in %s; model from %s\n", static_cast<long long>(result.epochsRun),
                Progress::formatDuration(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()).c_str(),
                result.checkpoint.c_str());
  return result;
}

}  // namespace slidetrain::mil
