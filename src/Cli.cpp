#include "src/Cli.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "src/Config.h"
#include "src/CrossValidation.h"
#include "src/Predictor.h"
#include "src/Settings.h"
#include "src/Tiling.h"
#include "src/Trainer.h"
#include "wsi/Cohort.h"
#include "wsi/SynthCohort.h"

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
         "  config    print the resolved config (--doc: markdown table of every key)\n";
}

namespace {

struct Parsed {
  std::string command;
  Config cfg;
  bool doc = false;
};

Parsed parse(const std::vector<std::string>& args) {
  if (args.empty()) throw UsageError(usage());
  Parsed p;
  p.command = args[0];
  std::vector<std::string> overrides;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-c" || a == "--config") {
      if (i + 1 >= args.size()) throw UsageError(a + ": expects a YAML file");
      p.cfg = Config::load(args[++i]);
    } else if (a == "--doc") {
      p.doc = true;
    } else if (a == "-h" || a == "--help") {
      throw UsageError(usage());
    } else if (a.find('=') != std::string::npos) {
      overrides.push_back(a);
    } else {
      throw UsageError("unknown argument '" + a + "'\n" + usage());
    }
  }
  p.cfg.applyOverrides(overrides);
  return p;
}

int runSynth(const Config& cfg) {
  wsi::SynthOptions o;
  o.numSlides = static_cast<int>(cfg.getInt("synth.num_slides"));
  o.width = static_cast<int>(cfg.getInt("synth.width"));
  o.height = static_cast<int>(cfg.getInt("synth.height"));
  o.mpp = cfg.getFloat("synth.mpp");
  o.tumorFraction = cfg.getFloat("synth.tumor_fraction");
  o.testFraction = cfg.getFloat("synth.test_fraction");
  o.valFraction = cfg.getFloat("synth.val_fraction");
  o.seed = static_cast<uint64_t>(cfg.getInt("seed"));
  o.tileSize = static_cast<int>(cfg.getInt("synth.tile_size"));
  o.jpegQuality = static_cast<int>(cfg.getInt("synth.jpeg_quality"));
  o.validate();
  const std::string out = cfg.getString("synth.out_dir");
  wsi::synthesizeCohort(out, o);
  std::printf("wrote %d slides and %s\n", o.numSlides, (fs::path(out) / "cohort.csv").c_str());
  return 0;
}

int runTile(const Config& cfg) {
  const wsi::Cohort cohort = readCohort(cfg);
  const TilingSettings s = TilingSettings::fromConfig(cfg);
  std::vector<size_t> all(cohort.slides.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const fs::path runDir = cfg.getString("run_dir");
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
  Parsed p = parse(args);
  if (p.command == "synth") return runSynth(p.cfg);
  if (p.command == "tile") return runTile(p.cfg);
  if (p.command == "train") return runTrain(p.cfg);
  if (p.command == "cv") return runCrossValidation(p.cfg);
  if (p.command == "predict") return runPredict(p.cfg);
  if (p.command == "config") {
    validateSettings(p.cfg);
    std::printf("%s", p.doc ? Config::schemaMarkdown().c_str() : p.cfg.toYaml().c_str());
    return 0;
  }
  throw UsageError("unknown command '" + p.command + "'\n" + usage());
}

}  // namespace slidetrain
