#pragma once
// Transfer learning: weights from a PyTorch state_dict file (model.pretrained), freezing every
// layer up to a named one (model.freeze_up_to), optional unfreezing after N epochs.
#include <string>

#include "src/config/Settings.h"
#include "src/models/ModelZoo.h"

namespace slidetrain {

/// Loads model.pretrained when set (reporting missing/unexpected/shape-mismatched keys on
/// stdout when `verbose`) and freezes up to model.freeze_up_to when set. Throws ConfigError
/// naming the key and file on failure.
void applyTransferLearning(Model& model, const ModelSettings& settings, bool verbose);

/// True when `epoch` (0-based, about to start) is the one after which layers unfreeze
/// (model.unfreeze_after_epochs > 0): all parameters are then set trainable. The caller must
/// rebuild its optimizer and gradient synchronisation.
bool unfreezeIfDue(Model& model, const ModelSettings& settings, int64_t epoch);

}  // namespace slidetrain
