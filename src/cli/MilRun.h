#pragma once
// One `slidetrain mil` training run, the same code for the single run (run_dir/mil) and for each
// fold of mil.folds cross-validation (run_dir/mil/fold_<k>, src/cli/MilCrossValidation.h): the
// bags of the cohort's train, val and predict.split splits -> trainMil (early stopping on val)
// -> decision threshold from val -> outDir/{slides.csv, summary.json, heatmaps/, report.html,
// weights.pt, metrics.jsonl, checkpoints/}.
#include <optional>
#include <string>

#include "distributed/Planes.h"
#include "src/config/Settings.h"
#include "src/mil/Bags.h"
#include "wsi/Cohort.h"

namespace slidetrain {

struct MilBags {
  mil::BagSet train;
  std::optional<mil::BagSet> val;  ///< absent when the cohort has no val slide
  mil::BagSet scored;              ///< predict.split
};

/// The bags of `cohort`'s splits; the lead rank prints the slides left out and a summary line.
/// Throws ConfigError when the train split has no usable bag.
MilBags collectMilBags(const Settings& settings, const wsi::Cohort& cohort, const dist::Planes& planes);

/// 16 hex digits over everything a run's outputs depend on: mil::milFingerprint (mil.* settings,
/// seed, train and val bags) plus mil.epochs, mil.bootstrap, mil.heatmaps, the scored split and
/// its bags. summary.json carries it ("fingerprint"): cross-validation skips a fold whose
/// summary.json has the one this run would write.
std::string milRunFingerprint(const Settings& settings, const MilBags& bags);

/// Trains (resuming from outDir/checkpoints/last.pt when train.resume is auto) and scores into
/// outDir. With `outOfFold`, the val bags' scores by the final model also go to outDir/oof.csv
/// (the columns of slides.csv; predictions at the 0.5/arg-max threshold, since the val threshold
/// is chosen on those very bags). Collective.
void runMilOnce(const Settings& settings, const dist::Planes& planes, const wsi::Cohort& cohort,
                const MilBags& bags, const std::string& outDir, bool outOfFold);

}  // namespace slidetrain
