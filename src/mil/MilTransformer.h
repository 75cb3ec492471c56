#pragma once
// Internal to src/mil's model files: the TransMIL builder (MilTransformer.cpp) and two helpers
// every model uses (MilModels.cpp). Code outside src/mil builds models through buildMilModel.
#include <memory>

#include <torch/nn/module.h>

#include "src/mil/MilModels.h"

namespace slidetrain::mil {

/// TransMIL (Shao et al. 2021) with Nystrom attention; options already validated.
std::shared_ptr<MilModel> buildTransMil(const MilModelOptions& o);

namespace detail {
/// Checks a bag ([N >= 1, inputDim], floating) and converts it to `like`'s dtype and device;
/// throws std::invalid_argument saying what is wrong.
at::Tensor checkedBag(const at::Tensor& bag, int64_t inputDim, const at::Tensor& like);
/// Xavier-normal weights and zero biases for every Linear below `model` (CLAM's
/// initialize_weights).
void initLinears(torch::nn::Module& model);
}  // namespace detail

}  // namespace slidetrain::mil
