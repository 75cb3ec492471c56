#pragma once
// `slidetrain train`: a Trainer over the cohort's train (and val) split, then run_dir/report.html
// (rank 0): run summary, resolved config, training curves per step and epoch, throughput, the
// last validation's classification report, confusion matrix and patch ROC/PR, skipped slides.
// `slidetrain cv` writes the same report in each fold's folder.
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "src/config/Settings.h"
#include "src/data/SplitData.h"
#include "src/train/Trainer.h"

namespace slidetrain {

/// What a training report shows besides run_dir/metrics.jsonl (read from `settings.run.runDir`).
struct TrainReportInput {
  std::string title;
  std::string commandLine;           ///< "" = not known
  std::time_t started = 0;
  double wallSeconds = 0;
  int ranks = 1;
  std::string device;
  std::vector<std::string> classes;
  size_t trainSlides = 0, trainPatches = 0;
  std::vector<std::string> skipped;  ///< slides left out of the splits, and why
  const SplitData* val = nullptr;    ///< the val split (for the patch ROC/PR), or none
};

/// The report's facts of a training about to start on `train` (and `val`, when not null): ranks,
/// device, classes, the train split's size, the slides of both splits left out and why.
TrainReportInput trainReportInput(const std::string& title, const std::string& commandLine, std::time_t started,
                                  const dist::Planes& planes, const std::vector<std::string>& classes,
                                  const SplitData& train, const SplitData* val);

/// Writes settings.run.runDir/report.html for a finished training (keeps an existing one when
/// nothing was trained in this process: a resume of a finished run). Rank 0 only.
void writeTrainReport(const Settings& settings, const TrainResult& result, const TrainReportInput& input);

/// `slidetrain train`: reads the cohort, prepares the train (and val) split, runs a Trainer,
/// prints the classification report, writes report.html. Returns the exit code. Collective over
/// MPI_COMM_WORLD. `commandLine`: how the program was started, for the report.
int runTrain(const Settings& settings, const std::string& commandLine = "");

}  // namespace slidetrain
