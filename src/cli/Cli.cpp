#include "src/cli/Cli.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "src/cli/Compare.h"
#include "src/cli/CrossValidation.h"
#include "src/cli/Features.h"
#include "src/cli/Predict.h"
#include "src/cli/Train.h"
#include "src/config/Settings.h"
#include "src/data/ClassOrder.h"
#include "src/data/PatchFolderExport.h"
#include "src/data/StreamOptions.h"
#include "src/eval/Aggregate.h"
#include "src/eval/EmbeddedVega.h"
#include "src/train/Loss.h"
#include "src/train/Optim.h"
#include "src/data/Tiling.h"
#include "wsi/Cohort.h"
#include "wsi/SynthCohort.h"
#include "wsi/Versions.h"
#include "distributed/MpiComm.h"

namespace fs = std::filesystem;

namespace slidetrain {

std::string usage() {
  return "usage: slidetrain <command> [-c config.yaml] [key=value ...]\n"
         "commands:\n"
         "  synth     generate a labelled synthetic cohort (synth.* keys)\n"
         "  tile      tissue masks and patch indices for every slide of the cohort\n"
         "  train     data-parallel training (launch with mpirun -np N)\n"
         "  cv        k-fold cross-validation by patient (cv.* keys; mpirun -np N)\n"
         "  predict   patch probabilities and slide labels for predict.split\n"
         "  features  embed every tissue patch with a frozen encoder: one HDF5 file per slide\n"
         "  mil       train a slide-level attention model on the feature files, predict the test split\n"
         "  compare   compare.html and compare.csv over run folders of train, cv and mil\n"
         "  config    print the resolved config (--doc: markdown table of every key)\n"
         "  help [COMMAND], COMMAND --help, --version\n"
         "Every key is documented in docs/config.md; any key can be given as key=value.\n";
}

namespace {

/// What each command does, the keys it reads and an example (slidetrain COMMAND --help).
const std::map<std::string, std::string>& commandHelp() {
  static const std::map<std::string, std::string> help = {
      {"synth", "slidetrain synth -c cfg.yaml [key=value ...]\n"
                "Writes a synthetic H&E-like cohort: pyramidal TIFF slides, GeoJSON annotations of\n"
                "the tumour regions and cohort.csv, under synth.out_dir (keys synth.*, seed).\n"
                "With synth.tumor_tissue_share > 0 (weak labels) tumour slides get a few small\n"
                "tumour regions and no annotations are written: patches take their slide's label.\n"
                "With synth.patch_folders set, the patches are also written as a patch-folder\n"
                "dataset <dir>/<split>/<class>/<slide>_<x>_<y>.png (data.source: patch_folders).\n"
                "  example: slidetrain synth -c configs/demo.yaml synth.num_slides=8\n"},
      {"tile", "slidetrain tile -c cfg.yaml [key=value ...]\n"
               "Tissue masks and patch indices of every slide of `cohort`, cached in cache_dir\n"
               "(keys tiling.*, tissue.*, on_bad_slide); QC pictures in run_dir/qc.\n"
               "  example: slidetrain tile -c my.yaml tiling.target_mpp=0.5\n"},
      {"train", "[mpirun -np N] slidetrain train -c cfg.yaml [key=value ...]\n"
                "Data-parallel training on the train split (val when the cohort has one): keys\n"
                "model.*, optimizer.*, schedule.*, train.*, data.*, augment.*; writes run_dir\n"
                "(config.yaml, metrics.jsonl, checkpoints/, weights.pt, report.html). train.resume: auto\n"
                "continues the same experiment from run_dir/checkpoints/last.pt.\n"
                "  example: launch/mpirun.sh 4 train -c my.yaml train.amp=bf16\n"},
      {"cv", "[mpirun -np N] slidetrain cv -c cfg.yaml [key=value ...]\n"
             "k-fold cross-validation grouped by patient (cv.folds, cv.checkpoint): one training\n"
             "per fold in run_dir/fold_k (each with its report.html), then cv_summary.csv/json\n"
             "(mean +- sd) and report.html (compare's page over the folds).\n"
             "  example: launch/mpirun.sh 2 cv -c my.yaml cv.folds=5\n"},
      {"predict", "[mpirun -np N] slidetrain predict -c cfg.yaml [key=value ...]\n"
                  "Patch probabilities and slide labels for predict.split (all: every slide; the\n"
                  "label column is optional) with predict.checkpoint: patches.csv, slides.csv,\n"
                  "heatmaps/, report.html and exports/ (QuPath GeoJSON, heatmap TIFFs) in run_dir\n"
                  "(keys predict.*).\n"
                  "  example: slidetrain predict -c run_dir/config.yaml cohort=new.csv predict.split=all\n"},
      {"features", "[mpirun -np N] slidetrain features -c cfg.yaml [key=value ...]\n"
                   "Embeds every tissue patch of features.split with a frozen encoder (features.encoder:\n"
                   "the model.* zoo model without its classifier, or a TorchScript file) and writes\n"
                   "features.out_dir/<slide_id>.h5 (datasets features [N, D], coords [N, 2]). Slides\n"
                   "are sharded over ranks by patch count; a rerun skips up-to-date files.\n"
                   "  example: launch/mpirun.sh 2 features -c my.yaml model.pretrained=run/weights.pt\n"},
      {"mil", "[mpirun -np N] slidetrain mil -c cfg.yaml [key=value ...]\n"
              "Trains mil.model (mean_pool, max_pool, abmil, clam_sb, transmil) on the bags of\n"
              "features.out_dir, data-parallel over bags (val for early stopping when present), then\n"
              "predicts predict.split: run_dir/mil/slides.csv, mil_heatmaps/, report.html.\n"
              "  example: launch/mpirun.sh 2 mil -c my.yaml mil.model=clam_sb\n"},
      {"compare", compareHelp()},
      {"config", "slidetrain config [-c cfg.yaml] [key=value ...] [--doc]\n"
                 "Prints the resolved config as YAML (every key; `train -c` takes it back), or with\n"
                 "--doc the markdown table of every key (docs/config.md).\n"}};
  return help;
}

}  // namespace

std::string versionText() {
  std::string out = "slidetrain " SLIDETRAIN_VERSION "\n";
  out += std::string("libtorch ") + TORCH_VERSION;
  if (at::hasCUDA())
    out += " (CUDA build, " + std::to_string(torch::cuda::device_count()) + " GPU(s) visible)";
  else
    out += " (CPU-only build)";
  out += "\n";
  for (const auto& v : wsi::libraryVersions()) out += v + "\n";
  for (const auto& v : dist::libraryVersions()) out += v + "\n";
  out += "yaml-cpp (YAML configs)\n";
  out += "report.html charts: " + vegaVersions() + " (built in)\n";
  return out;
}

std::string commandLineText(const std::vector<std::string>& args) {
  std::string out = "slidetrain";
  for (const std::string& a : args) {
    const bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                         "0123456789-_./=,:+@%") == std::string::npos;
    if (plain) {
      out += " " + a;
      continue;
    }
    out += " '";
    for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += "'";
  }
  return out;
}

namespace {

struct Parsed {
  std::string command;
  std::string configFile;  ///< -c; "" = defaults only
  std::vector<std::string> overrides;
  bool doc = false;
  bool help = false;
  Settings settings() const {
    return configFile.empty() ? Settings::defaults(overrides) : Settings::load(configFile, overrides);
  }
};

Parsed parse(const std::vector<std::string>& args) {
  if (args.empty()) throw UsageError(usage());
  Parsed p;
  p.command = args[0];
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-c" || a == "--config") {
      if (i + 1 >= args.size()) throw UsageError(a + ": expects a YAML file");
      p.configFile = args[++i];
    } else if (a == "--doc") {
      p.doc = true;
    } else if (a == "-h" || a == "--help") {
      p.help = true;
      return p;  // help needs no valid config
    } else if (a.find('=') != std::string::npos) {
      p.overrides.push_back(a);
    } else {
      throw UsageError("unknown argument '" + a + "'\n" + usage());
    }
  }
  return p;
}

/// Runs every conversion of a component's options, so that cross-key errors surface before a job
/// starts (`slidetrain config`).
void validateSettings(const Settings& s) {
  (void)modelOptions(s.model, modelOutputs(lossOptions(s.train), 2), s.tiling.index.size);
  (void)optimizerOptions(s.optimizer);
  (void)scheduleOptions(s.schedule);
  (void)streamOptions(s.data, s.run.skipBadSlides, 1);
  (void)slidePooling(s.predict);
}

int runSynth(const Settings& s) {
  const wsi::SynthOptions& o = s.synth.slides;
  o.validate();
  const std::vector<wsi::SynthSlide> slides = wsi::synthesizeCohort(s.synth.outDir, o);
  std::printf("wrote %d slides and %s\n", o.numSlides, (fs::path(s.synth.outDir) / "cohort.csv").c_str());
  if (!s.synth.patchFolders.empty()) {
    const PatchFolderCounts n = writeSynthPatchFolders(s);
    std::printf("wrote %lld patch images of %d slides to %s (%s)\n", static_cast<long long>(n.images), n.slides,
                s.synth.patchFolders.c_str(), n.perFolder.c_str());
  }
  double share = 0;
  int tumour = 0;
  for (const auto& slide : slides)
    if (slide.label == "tumor") share += slide.tumourShareOfTissue, ++tumour;
  if (o.tumorTissueShare > 0 && tumour > 0)
    std::printf("weak labels: no annotations; tumour regions cover %.1f %% of the tissue of the %d "
                "tumour slides on average\n", 100 * share / tumour, tumour);
  return 0;
}

int runTile(const Settings& settings) {
  const wsi::Cohort cohort = readCohort(settings.run, settings.data);
  const TilingSettings& s = settings.tiling;
  std::vector<size_t> all(cohort.slides.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const fs::path runDir = settings.run.runDir;
  const auto results = tileCohort(cohort, all, s, /*progress=*/true, (runDir / "qc").string());
  if (s.exportCsv) {
    fs::create_directories(runDir / "patches");
    for (const auto& r : results)
      if (r.ok) {
        const auto& id = cohort.slides[r.cohortIndex].slideId;
        r.index.writeCsv((runDir / "patches" / (id + ".csv")).string(), id);
      }
  }
  std::printf("%s", tilingSummary(cohort, results, s.cacheDir).c_str());
  if (s.exportCsv) std::printf("patch lists: %s\n", (runDir / "patches").c_str());
  return 0;
}

}  // namespace

int runCli(const std::vector<std::string>& args) {
  // Help and version: stdout, exit 0, before anything else.
  if (!args.empty() && (args[0] == "-h" || args[0] == "--help" || args[0] == "help")) {
    if (args.size() > 1 && args[0] == "help") {
      auto it = commandHelp().find(args[1]);
      if (it == commandHelp().end()) throw UsageError("unknown command '" + args[1] + "'\n" + usage());
      std::printf("%s", it->second.c_str());
    } else {
      std::printf("%s", usage().c_str());
    }
    return 0;
  }
  if (!args.empty() && (args[0] == "--version" || args[0] == "version")) {
    std::printf("%s", versionText().c_str());
    return 0;
  }
  // compare takes folders, not a config: its own arguments.
  if (!args.empty() && args[0] == "compare")
    return runCompare(std::vector<std::string>(args.begin() + 1, args.end()), commandLineText(args));
  Parsed p = parse(args);
  if (p.help) {
    auto it = commandHelp().find(p.command);
    if (it == commandHelp().end()) throw UsageError("unknown command '" + p.command + "'\n" + usage());
    std::printf("%s", it->second.c_str());
    return 0;
  }
  const Settings settings = p.settings();
  if (settings.data.source == "patch_folders" &&
      (p.command == "tile" || p.command == "features" || p.command == "mil"))
    throw ConfigError(p.command + " works on slides, and data.source is patch_folders (pre-cut images: "
                      "train, cv and predict read them directly). HINT: data.source=slides");
  if (p.command == "synth") return runSynth(settings);
  if (p.command == "tile") return runTile(settings);
  if (p.command == "train") return runTrain(settings, commandLineText(args));
  if (p.command == "cv") return runCrossValidation(settings, commandLineText(args));
  if (p.command == "predict") return runPredict(settings, commandLineText(args));
  if (p.command == "features") return runFeatures(settings);
  if (p.command == "mil") return runMil(settings);
  if (p.command == "config") {
    validateSettings(settings);
    std::printf("%s", p.doc ? Settings::schemaMarkdown().c_str() : settings.yaml().c_str());
    return 0;
  }
  throw UsageError("unknown command '" + p.command + "'\n" + usage());
}

}  // namespace slidetrain
