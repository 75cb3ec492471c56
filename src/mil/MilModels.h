#pragma once
// Multiple-instance learning models: one slide (or patient) is a bag of N patch feature vectors
// [N, D]; a model turns the bag into slide logits and a per-patch weight for heatmaps.
// mean_pool, max_pool, abmil (Ilse et al. 2018), clam_sb (Lu et al. 2021), transmil (Shao et
// al. 2021); docs/mil.md describes each with its reference. One bag per forward: bags differ in
// N, so a "batch" of bags is a loop over forwards with gradient accumulation (the trainer's job).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

namespace slidetrain::mil {

struct MilModelOptions {
  std::string name = "abmil";  ///< mean_pool, max_pool, abmil, clam_sb, transmil (milModelNames)
  int64_t inputDim = 0;        ///< D of the features
  int64_t hidden = 128;        ///< width of the first projection and of the attention
  int numClasses = 2;
  double dropout = 0.25;       ///< after the first projection and in the attention branches
  int clamK = 8;               ///< CLAM: top-k and bottom-k patches for the instance loss
  /// CLAM: total loss = (1 - w) bag loss + w instance loss (CLAM's bag_weight 0.7 is w = 0.3).
  /// The model only returns the instance loss; the trainer mixes the two.
  double clamInstanceWeight = 0.3;
  int transmilLayers = 2;      ///< transformer layers; PPEG sits after the first
  int transmilHeads = 4;       ///< must divide hidden
  int transmilLandmarks = 64;  ///< Nystrom landmarks m: attention costs O(N m), not O(N^2)
  /// Throws std::invalid_argument naming the key (mil.hidden, mil.clam_k, ...).
  void validate() const;
};

struct MilOutput {
  at::Tensor logits;  ///< [1, numClasses]
  /// [N] per-patch weight in [0, 1] summing to 1 over the bag, detached: the softmaxed
  /// attention (abmil, clam_sb), 1/N (mean_pool), the share of classes whose maximum the patch
  /// holds (max_pool), the class token's last-layer attention row (transmil). docs/mil.md.
  at::Tensor attention;
  /// clam_sb with a label (>= 0): the instance clustering loss, a scalar (zero when the bag has
  /// fewer than 2 patches). Undefined for the other models and without a label.
  at::Tensor instanceLoss;
};

/// A bag classifier. forward takes one bag [N, D] (N >= 1, D = inputDim, any floating type,
/// converted to the parameters' type) on the model's device and the bag's label, or -1 when
/// unknown (inference); only clam_sb uses the label. Train/eval mode switches dropout.
/// clam_sb leaves some parameters without a gradient in a step (the instance classifiers of
/// classes other than the label, binary case): the gradient sync must treat them as zero.
class MilModel : public torch::nn::Module {
 public:
  virtual MilOutput forward(const at::Tensor& bag, int64_t label) = 0;
};

/// Builds a validated model; linear layers are Xavier-normal with zero bias (as CLAM).
std::shared_ptr<MilModel> buildMilModel(const MilModelOptions& o);
std::vector<std::string> milModelNames();

}  // namespace slidetrain::mil
