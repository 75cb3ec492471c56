// Small CNNs for 32-128 px patches: small_cnn (the default, fast), the small-CNN paper's
// ConvNN_1/ConvNN_2, the optimizer paper's 4-conv CNN and LeNet-5. These honour every
// ModelOptions knob (activation, batch_norm on/off and position, dropout, head).
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include "src/models/Layers.h"

namespace slidetrain::zoo {
namespace {

using torch::nn::Sequential;

/// Conv blocks of `channels` (3x3, same padding), each followed by a 2x2 max-pool.
Sequential convPoolStack(const std::vector<int64_t>& channels, const ModelOptions& o) {
  Sequential seq;
  int64_t in = o.inChannels;
  for (int64_t c : channels) {
    // Conv bias is redundant when a BN directly follows (its beta absorbs it).
    bool bnFollows = o.batchNorm && o.bnPosition == "before";
    addConvBlock(seq, in, c, 3, 1, 1, o, o.batchNorm, !bnFollows);
    seq->push_back(torch::nn::MaxPool2d(2));
    in = c;
  }
  return seq;
}

/// Dense layers of `widths` (each Dense -> act -> Dropout) then Dense k; or the bn_dense head.
Sequential denseClassifier(int64_t in, const std::vector<int64_t>& widths, double dropout,
                           const ModelOptions& o) {
  if (o.head == "bn_dense") return makeBnDenseHead(in, o, dropout);
  Sequential seq;
  for (int64_t w : widths) {
    seq->push_back(torch::nn::Linear(in, w));
    seq->push_back(Activation(o.activation));
    seq->push_back(torch::nn::Dropout(dropout));
    in = w;
  }
  seq->push_back(torch::nn::Linear(in, o.numClasses));
  return seq;
}

std::shared_ptr<Model> finish(std::shared_ptr<FeatureClassifierNet> net) {
  initConvWeights(*net);
  return net;
}

}  // namespace

std::shared_ptr<Model> buildSmallCnn(const ModelOptions& o) {
  // Global average pooling keeps the head at 64 inputs for any patch size.
  Sequential features = convPoolStack({16, 32, 64, 64}, o);
  double p = dropoutRate(o, 0.0);
  Sequential classifier;
  if (o.head == "bn_dense") {
    classifier = makeBnDenseHead(64, o, p);
  } else {
    classifier->push_back(torch::nn::Dropout(p));
    classifier->push_back(torch::nn::Linear(64, o.numClasses));
  }
  return finish(std::make_shared<FeatureClassifierNet>(
      features, torch::nn::AdaptiveAvgPool2d(1), classifier));
}

std::shared_ptr<Model> buildConvNN(const ModelOptions& o, int variant) {
  // ConvNN_1: conv 8 -> pool -> Dense 40; ConvNN_2: conv 8 -> pool -> conv 16 -> pool ->
  // Dense 32. Both flatten straight into the dense layer as in the paper (no global pooling).
  Sequential features = variant == 1 ? convPoolStack({8}, o) : convPoolStack({8, 16}, o);
  int64_t flat = flattenedSize(features, o);
  Sequential classifier =
      denseClassifier(flat, {variant == 1 ? 40 : 32}, dropoutRate(o, 0.0), o);
  return finish(std::make_shared<FeatureClassifierNet>(features, nullptr, classifier));
}

std::shared_ptr<Model> buildCnn4(const ModelOptions& o) {
  // conv 32-64-128-128 with max-pools, Flatten -> Dropout 0.5 -> Dense 512 -> Dense k.
  Sequential features = convPoolStack({32, 64, 128, 128}, o);
  int64_t flat = flattenedSize(features, o);
  double p = dropoutRate(o, 0.5);
  Sequential classifier;
  if (o.head == "bn_dense") {
    classifier = makeBnDenseHead(flat, o, p);
  } else {
    classifier->push_back(torch::nn::Dropout(p));
    classifier->push_back(torch::nn::Linear(flat, 512));
    classifier->push_back(Activation(o.activation));
    classifier->push_back(torch::nn::Linear(512, o.numClasses));
  }
  return finish(std::make_shared<FeatureClassifierNet>(features, nullptr, classifier));
}

std::shared_ptr<Model> buildLeNet5(const ModelOptions& o) {
  // LeCun et al. 1998: conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> 120 -> 84 -> k (max-pool
  // in place of the original trainable subsampling, as modern re-implementations do).
  Sequential features;
  bool bnFollows = o.batchNorm && o.bnPosition == "before";
  addConvBlock(features, o.inChannels, 6, 5, 1, 0, o, o.batchNorm, !bnFollows);
  features->push_back(torch::nn::MaxPool2d(2));
  addConvBlock(features, 6, 16, 5, 1, 0, o, o.batchNorm, !bnFollows);
  features->push_back(torch::nn::MaxPool2d(2));
  int64_t flat = flattenedSize(features, o);
  Sequential classifier = denseClassifier(flat, {120, 84}, dropoutRate(o, 0.0), o);
  return finish(std::make_shared<FeatureClassifierNet>(features, nullptr, classifier));
}

}  // namespace slidetrain::zoo
