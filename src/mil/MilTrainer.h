#pragma once
// Data-parallel training of a MIL model over bags (docs/mil.md). Each optimizer step takes the
// next mil.batch_bags bags of the epoch's seeded order (the global bag batch); the ranks split
// them balanced by patch count, each backpropagates world / batch x the sum of its bags' losses,
// and GradSync averages: the gradient of the mean loss over the global batch on any number of
// ranks. Dropout and bag subsampling are seeded per (seed, epoch, bag), so np 1 and np 2 give the
// same weights up to float summation order. Parameters a step does not use (CLAM's instance
// classifiers of the other class) get a zero gradient from GradSync.
#include <memory>
#include <string>
#include <vector>

#include "distributed/Planes.h"
#include "src/config/Settings.h"
#include "src/mil/Bags.h"
#include "src/mil/MilModels.h"

namespace slidetrain::mil {

MilModelOptions milModelOptions(const MilSettings& mil, int64_t inputDim, int numClasses);

struct MilTrainResult {
  int64_t epochsRun = 0;
  bool stoppedEarly = false;
  double bestValLoss = 0;  ///< NaN without a val split
  std::string checkpoint;  ///< the one the returned model holds (best.pt with val, else last.pt)
};

/// What a checkpoint's training depends on: the mil.* settings except mil.epochs (a rerun may
/// train on), mil.heatmaps, mil.bootstrap and mil.folds (the bags say which fold), the seed and
/// the id, label and size of every train and val bag. A resume from last.pt needs it unchanged.
std::string milFingerprint(const Settings& settings, const BagSet& train, const BagSet* val);

/// Trains `model` on `train` (val, may be null: validation loss, AUC, early stopping and best.pt)
/// writing outDir/metrics.jsonl and outDir/checkpoints/{last,best}.pt; resumes from last.pt when
/// train.resume is auto and the file exists with the same settings. On return the model holds the
/// chosen checkpoint's weights. Collective.
MilTrainResult trainMil(const Settings& settings, MilModel& model, const BagSet& train,
                        const BagSet* val, int numClasses, const dist::Planes& planes,
                        const std::string& outDir);

struct BagScores {
  at::Tensor probabilities;  ///< [bags, classes] float, CPU, the same on every rank
  double meanLoss = 0;       ///< mean cross-entropy over labelled bags (NaN when none)
};

/// Class probabilities of every bag, each rank scoring its share (balanced by patch count), the
/// results summed on the host plane. Collective.
BagScores scoreBags(MilModel& model, const BagSet& set, int numClasses, const dist::Planes& planes);

/// One bag's attention over its patches, [N] float in [0, 1] (rank-local, eval mode).
at::Tensor bagAttention(MilModel& model, const BagSet& set, size_t bag, c10::Device device);

}  // namespace slidetrain::mil
