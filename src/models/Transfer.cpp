// Transfer learning; see Transfer.h and docs/models.md ("Transfer learning").
#include "src/models/Transfer.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "src/models/StateDict.h"

namespace slidetrain {

namespace {

/// "a, b, c" of at most `limit` names, then "... (N more)".
std::string listed(const std::vector<std::string>& names, size_t limit) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += ", ... (" + std::to_string(names.size() - limit) + " more)";
  return out;
}

/// Layer (module prefix) of a parameter name: "layer1.0.conv1.weight" -> "layer1.0.conv1".
std::string layerOf(const std::string& param) {
  auto dot = param.rfind('.');
  return dot == std::string::npos ? param : param.substr(0, dot);
}

void loadPretrained(Model& model, const std::string& file, const std::string& modelName,
                    bool verbose) {
  const std::string where = "model.pretrained: '" + file + "'";
  if (!std::filesystem::exists(file)) throw ConfigError(where + ": file not found");
  StateDictReport r;
  try {
    r = importStateDict(file, model);
  } catch (const std::exception& e) {
    throw ConfigError(where + ": " + e.what());
  }
  if (!r.shapeMismatch.empty())
    throw ConfigError(where + ": " + std::to_string(r.shapeMismatch.size()) +
                      " tensor(s) have another shape than in model '" + modelName + "': " +
                      listed(r.shapeMismatch, 8) +
                      " (a different architecture or number of classes? drop the classifier "
                      "head from the file, as tools/export_torchvision.py does by default)");
  if (r.loaded == 0)
    throw ConfigError(where + ": no tensor name matches model '" + modelName + "' (model has " +
                      listed(r.missing, 4) + "; file has " + listed(r.unexpected, 4) + ")");
  if (verbose) {
    std::printf("model.pretrained: loaded %lld tensors from %s\n",
                static_cast<long long>(r.loaded), file.c_str());
    if (!r.missing.empty())
      std::printf("  missing (kept at initialisation): %zu: %s\n", r.missing.size(),
                  listed(r.missing, 12).c_str());
    if (!r.unexpected.empty())
      std::printf("  unexpected (ignored): %zu: %s\n", r.unexpected.size(),
                  listed(r.unexpected, 12).c_str());
    std::fflush(stdout);
  }
}

void freeze(Model& model, const std::string& upTo, bool verbose) {
  int64_t frozen = 0;
  try {
    frozen = freezeUpTo(model, upTo);
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    throw ConfigError(msg.rfind("model.freeze_up_to", 0) == 0 ? msg
                                                              : "model.freeze_up_to: " + msg);
  }
  if (!verbose) return;
  std::vector<std::string> layers;
  int64_t weights = 0;
  for (const auto& kv : model.named_parameters(true)) {
    if (kv.value().requires_grad()) continue;
    weights += kv.value().numel();
    const std::string layer = layerOf(kv.key());
    if (layers.empty() || layers.back() != layer) layers.push_back(layer);
  }
  std::printf("model.freeze_up_to: %s (= %s): froze %lld parameter tensors, %lld weights, "
              "%lld of %lld stay trainable; frozen layers: %s\n",
              upTo.c_str(), model.resolveLayerName(upTo).c_str(),
              static_cast<long long>(frozen), static_cast<long long>(weights),
              static_cast<long long>(countParameters(model, true)),
              static_cast<long long>(countParameters(model, false)), listed(layers, 64).c_str());
  std::fflush(stdout);
}

}  // namespace

void applyTransferLearning(Model& model, const ModelSettings& settings, bool verbose) {
  const std::string file = settings.pretrained;
  const std::string upTo = settings.freezeUpTo;
  if (!file.empty()) loadPretrained(model, file, settings.name, verbose);
  if (!upTo.empty()) freeze(model, upTo, verbose);
}

bool unfreezeIfDue(Model& model, const ModelSettings& settings, int64_t epoch) {
  const int64_t after = settings.unfreezeAfterEpochs;
  if (after <= 0 || epoch != after) return false;
  int64_t changed = 0;
  for (auto& p : model.parameters(true)) {
    if (!p.requires_grad()) {
      p.set_requires_grad(true);
      ++changed;
    }
  }
  return changed > 0;
}

}  // namespace slidetrain
