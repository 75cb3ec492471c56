#pragma once
// Reading a training run's metrics.jsonl (one JSON object per epoch, written by rank 0:
// src/train/EpochReport.cpp, or slidetrain mil's src/mil/MilTrainer.cpp with its train_loss,
// train_acc, val_acc and val_auc) back for report.html's curves and throughput charts.
#include <cstdint>
#include <string>
#include <vector>

namespace slidetrain {

/// One rank's throughput in an epoch (metrics.jsonl "ranks"); NaN where not recorded.
struct RankRecord {
  double patchesPerS, dataWaitPct, gpuBusyPct;
};

/// The fields of one metrics.jsonl line that the report draws; NaN where a line has none (no
/// val split, an older file).
struct EpochRecord {
  int64_t epoch = 0, step = 0;
  double loss, accuracy, lr, seconds, patchesPerS, dataWaitPct;
  double gpuBusyPct;               ///< mean over the ranks that measured it; NaN: no GPU
  std::vector<RankRecord> ranks;   ///< index = rank; empty in files of earlier versions
  double valLoss, valAccuracy, valAuc, valSlideAccuracy;
  int64_t worldSize = 0;  ///< 0: not recorded (an older file)
  std::string device;
  EpochRecord();
};

/// One point of a line's "steps" (an optimizer step, or the last of a run of merged steps).
struct StepRecord {
  int64_t step = 0, epoch = 0;
  double loss = 0, accuracy = 0, lr = 0;
};

struct TrainingLog {
  bool found = false;                ///< the file exists
  std::vector<EpochRecord> epochs;   ///< the last run's epochs, in file order
  std::vector<StepRecord> steps;     ///< their "steps" (none in files of earlier versions)
  std::vector<std::string> notes;    ///< what was left out and why ("line 3: ...")
};

/// Reads `path`. Lines that do not parse (a run killed while writing) or lack "epoch" are left
/// out with a note. When the epoch number falls back (train started over in the same run_dir
/// with train.resume=none) only the lines from the last such restart are kept, with a note; a
/// resumed run continues the numbering and keeps them all (an epoch that train.max_steps cut and
/// a resume finished appears twice: its later line is kept). A missing file is no error.
TrainingLog readTrainingLog(const std::string& path);

}  // namespace slidetrain
