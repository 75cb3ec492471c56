#pragma once
// What defines a training experiment, recorded in every training checkpoint and compared before a
// resume (train.resume: auto, and every fold of `cv`): the slide ids and labels of the train and
// val splits, and each setting that changes what is learned (seed, tiling, tissue, data, augment,
// model, optimizer, schedule and the loss/batch keys of train). Not in it: epochs, max_steps,
// timeouts, threads, logging, devices and other settings that only change speed or length - so a
// run may be resumed with more epochs or a longer max_steps.
#include <map>
#include <string>
#include <vector>

#include "src/config/Settings.h"
#include "src/data/SplitData.h"

namespace slidetrain {

using RunFingerprint = std::map<std::string, std::string>;

/// The fingerprint of a run on these splits (val may be null) with these class names.
RunFingerprint runFingerprint(const Settings& settings, const SplitData& train, const SplitData* val,
                              const std::vector<std::string>& classNames);

/// One "key\tvalue" line per entry (stored in the checkpoint), and back.
std::string serializeFingerprint(const RunFingerprint& f);
RunFingerprint parseFingerprint(const std::string& text);

/// The entries that differ, as "key: saved -> now" lines (slide lists summarised by count and
/// the first few differing ids). Empty when the runs are the same experiment.
std::vector<std::string> fingerprintDifferences(const RunFingerprint& saved, const RunFingerprint& now);

}  // namespace slidetrain
