#pragma once
// Typed option structs of every layer, filled from the Config in one place (train, predict,
// cv and benches share them).
#include "src/BatchTensor.h"
#include "src/Evaluate.h"
#include "src/Inference.h"
#include "src/Config.h"
#include "src/ModelZoo.h"
#include "src/Optim.h"
#include "wsi/Augment.h"
#include "wsi/Cohort.h"
#include "wsi/PatchStream.h"

namespace slidetrain {

ModelOptions modelOptionsFromConfig(const Config& cfg, int numClasses);
Normalization normFromConfig(const Config& cfg);
wsi::AugmentOptions augmentFromConfig(const Config& cfg);
OptimizerOptions optimizerFromConfig(const Config& cfg);
ScheduleOptions scheduleFromConfig(const Config& cfg);
/// data.* stream settings; `localSize` ranks share the node's cores.
wsi::StreamOptions streamOptionsFromConfig(const Config& cfg, int localSize);
/// predict.batch_size, the stream settings, data normalisation and stain normalisation.
InferenceOptions inferenceOptionsFromConfig(const Config& cfg, int localSize);
/// predict.aggregation / topk / threshold.
SlidePooling poolingFromConfig(const Config& cfg);
/// The cohort of `cohort` with the class order of data.classes (the last class is the positive
/// one of binary metrics: AUC, the positive class's F1, heatmaps); [] keeps the sorted labels.
/// forPrediction: labels may be missing (new or external slides); the class names then come from
/// data.classes, else from the training run's run_dir/config.yaml, else from the labels present
/// (a ConfigError says how to give them when some slides are unlabelled and none is known).
wsi::Cohort readCohort(const Config& cfg, bool forPrediction = false);
/// `cfg` with data.classes set to the cohort's class order, so that run_dir/config.yaml records
/// it and `train -c run_dir/config.yaml` keeps it.
Config withClassOrder(const Config& cfg, const wsi::Cohort& cohort);
/// "classes: normal, tumor (positive: tumor)" for the start of a run.
std::string classOrderLine(const wsi::Cohort& cohort);
/// Runs every conversion above so cross-key errors surface before a job starts.
void validateSettings(const Config& cfg);

}  // namespace slidetrain
