// The pooling baselines, ABMIL and CLAM-SB, the option checks and the builder. TransMIL lives in
// MilTransformer.cpp. References and what each attention means: docs/mil.md ("Models").
#include "src/mil/MilModels.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include <torch/nn/init.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "src/mil/MilTransformer.h"

namespace slidetrain::mil {

namespace {

void fail(const std::string& message) { throw std::invalid_argument(message); }

/// The embedding of every patch: Linear(D, hidden) -> ReLU -> Dropout (CLAM's attention_net
/// stem, the baselines' patch MLP).
class PatchStemImpl : public torch::nn::Module {
 public:
  PatchStemImpl(int64_t in, int64_t hidden, double dropout)
      : fc_(register_module("fc", torch::nn::Linear(in, hidden))),
        drop_(register_module("drop", torch::nn::Dropout(dropout))) {}
  at::Tensor forward(const at::Tensor& bag) { return drop_(at::relu(fc_(bag))); }

 private:
  torch::nn::Linear fc_;
  torch::nn::Dropout drop_;
};
TORCH_MODULE(PatchStem);

/// mean_pool: the mean of the patch embeddings, then a linear classifier.
class MeanPoolMil : public MilModel {
 public:
  explicit MeanPoolMil(const MilModelOptions& o)
      : stem_(register_module("stem", PatchStem(o.inputDim, o.hidden, o.dropout))),
        classifier_(register_module("classifier", torch::nn::Linear(o.hidden, o.numClasses))),
        inputDim_(o.inputDim) {}

  MilOutput forward(const at::Tensor& bag, int64_t label) override {
    const at::Tensor x = detail::checkedBag(bag, inputDim_, classifier_->weight);
    MilOutput out;
    out.logits = classifier_(stem_(x).mean(0, /*keepdim=*/true));
    out.attention = at::full({x.size(0)}, 1.0 / static_cast<double>(x.size(0)), x.options());
    return out;
  }

 private:
  PatchStem stem_;
  torch::nn::Linear classifier_;
  int64_t inputDim_;
};

/// max_pool: every patch is classified, the bag's logit of a class is the largest patch logit
/// of that class (the gradient reaches only the arg-max patches).
class MaxPoolMil : public MilModel {
 public:
  explicit MaxPoolMil(const MilModelOptions& o)
      : stem_(register_module("stem", PatchStem(o.inputDim, o.hidden, o.dropout))),
        classifier_(register_module("classifier", torch::nn::Linear(o.hidden, o.numClasses))),
        inputDim_(o.inputDim) {}

  MilOutput forward(const at::Tensor& bag, int64_t label) override {
    const at::Tensor x = detail::checkedBag(bag, inputDim_, classifier_->weight);
    const at::Tensor patchLogits = classifier_(stem_(x));  // [N, k]
    auto [values, where] = patchLogits.max(0);             // [k] each
    MilOutput out;
    out.logits = values.unsqueeze(0);
    // The share of the classes whose maximum the patch holds: sums to 1 over the bag.
    const int64_t k = patchLogits.size(1);
    out.attention = at::zeros({x.size(0)}, x.options())
                        .index_add_(0, where, at::full({k}, 1.0 / static_cast<double>(k), x.options()));
    return out;
  }

 private:
  PatchStem stem_;
  torch::nn::Linear classifier_;
  int64_t inputDim_;
};

/// abmil (Ilse et al. 2018, gated): a = w^T (tanh(V h) * sigmoid(U h)), softmax over the
/// patches, the attention-weighted sum of the embeddings -> classifier. Module names follow
/// CLAM's Attn_Net_Gated (attention_a = V, attention_b = U, attention_c = w); the dropout after
/// the two branches is CLAM's too.
class GatedAttentionMil : public MilModel {
 public:
  explicit GatedAttentionMil(const MilModelOptions& o)
      : stem_(register_module("stem", PatchStem(o.inputDim, o.hidden, o.dropout))),
        attentionA_(register_module("attention_a", torch::nn::Linear(o.hidden, o.hidden))),
        attentionB_(register_module("attention_b", torch::nn::Linear(o.hidden, o.hidden))),
        attentionC_(register_module("attention_c", torch::nn::Linear(o.hidden, 1))),
        drop_(register_module("attention_drop", torch::nn::Dropout(o.dropout))),
        classifier_(register_module("classifier", torch::nn::Linear(o.hidden, o.numClasses))),
        inputDim_(o.inputDim) {}

  MilOutput forward(const at::Tensor& bag, int64_t label) override {
    const at::Tensor x = detail::checkedBag(bag, inputDim_, classifier_->weight);
    const at::Tensor h = stem_(x);  // [N, hidden]
    const at::Tensor gated = drop_(at::tanh(attentionA_(h))) * drop_(at::sigmoid(attentionB_(h)));
    const at::Tensor a = at::softmax(attentionC_(gated).squeeze(1), 0);  // [N]
    MilOutput out;
    out.logits = classifier_(a.unsqueeze(0).mm(h));  // [1, k]
    out.attention = a.detach();
    if (label >= 0) out.instanceLoss = instanceLoss(a, h, label);
    return out;
  }

 protected:
  virtual at::Tensor instanceLoss(const at::Tensor& a, const at::Tensor& h, int64_t label) {
    return {};
  }

 private:
  PatchStem stem_;
  torch::nn::Linear attentionA_, attentionB_, attentionC_;
  torch::nn::Dropout drop_;
  torch::nn::Linear classifier_;
  int64_t inputDim_;
};

/// clam_sb (Lu et al. 2021, single branch): abmil plus instance-level clustering. For the
/// label's class, the k most attended patches are pseudo-labelled positive and the k least
/// attended negative for that class's instance classifier (Linear(hidden, 2)); cross-entropy
/// averaged over the 2k patches. With more than two classes (CLAM's "subtyping") the other
/// classes' classifiers also learn that the k most attended patches are not theirs, and the
/// loss is averaged over the classes; with two classes only the label's classifier is used.
/// k = min(clamK, N / 2), so the positive and negative sets never overlap.
class ClamSbMil : public GatedAttentionMil {
 public:
  explicit ClamSbMil(const MilModelOptions& o)
      : GatedAttentionMil(o), k_(o.clamK), numClasses_(o.numClasses) {
    instanceClassifiers_ = register_module("instance_classifiers", torch::nn::ModuleList());
    for (int c = 0; c < o.numClasses; ++c) instanceClassifiers_->push_back(torch::nn::Linear(o.hidden, 2));
  }

 protected:
  at::Tensor instanceLoss(const at::Tensor& a, const at::Tensor& h, int64_t label) override {
    if (label >= numClasses_) {
      fail("clam_sb: label " + std::to_string(label) + " out of range for " +
           std::to_string(numClasses_) + " classes");
    }
    const int64_t n = a.size(0);
    const int64_t k = std::min<int64_t>(k_, n / 2);
    if (k == 0) return at::zeros({}, h.options());  // one patch: nothing to contrast
    const at::Tensor top = std::get<1>(a.topk(k));
    const at::Tensor bottom = std::get<1>((-a).topk(k));
    const auto targets = [&](int64_t count, int64_t value) {
      return at::full({count}, value, h.options().dtype(at::kLong));
    };
    const auto crossEntropy = [](const at::Tensor& logits, const at::Tensor& target) {
      return at::nll_loss(at::log_softmax(logits, 1), target);
    };
    const bool subtyping = numClasses_ > 2;
    at::Tensor total = at::zeros({}, h.options());
    for (int64_t c = 0; c < numClasses_; ++c) {
      auto& classifier = *instanceClassifiers_[c]->as<torch::nn::Linear>();
      if (c == label) {
        const at::Tensor logits = classifier.forward(at::cat({h.index_select(0, top), h.index_select(0, bottom)}));
        total = total + crossEntropy(logits, at::cat({targets(k, 1), targets(k, 0)}));
      } else if (subtyping) {
        total = total + crossEntropy(classifier.forward(h.index_select(0, top)), targets(k, 0));
      }
    }
    return subtyping ? total / static_cast<double>(numClasses_) : total;
  }

 private:
  int64_t k_;
  int64_t numClasses_;
  torch::nn::ModuleList instanceClassifiers_;
};

}  // namespace

namespace detail {

at::Tensor checkedBag(const at::Tensor& bag, int64_t inputDim, const at::Tensor& like) {
  if (!bag.defined() || bag.dim() != 2) {
    fail("mil: a bag must be a 2-D tensor [patches, features]" +
         (bag.defined() ? ", got " + std::to_string(bag.dim()) + " dimensions" : std::string()));
  }
  if (bag.size(0) < 1) fail("mil: empty bag (0 patches)");
  if (bag.size(1) != inputDim) {
    fail("mil: bag has " + std::to_string(bag.size(1)) + " features per patch, the model expects " +
         std::to_string(inputDim) + " (feature files from another encoder?)");
  }
  if (!at::isFloatingType(bag.scalar_type())) fail("mil: bag must hold floating-point features");
  return bag.to(like.options());
}

void initLinears(torch::nn::Module& model) {
  torch::NoGradGuard noGrad;
  for (auto& m : model.modules(/*include_self=*/false)) {
    if (auto* linear = m->as<torch::nn::Linear>()) {
      torch::nn::init::xavier_normal_(linear->weight);
      if (linear->bias.defined()) linear->bias.zero_();
    }
  }
}

}  // namespace detail

void MilModelOptions::validate() const {
  const std::vector<std::string> names = milModelNames();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::ostringstream s;
    s << "mil.model: unknown model '" << name << "' (choose from";
    for (const auto& n : names) s << ' ' << n;
    fail(s.str() + ")");
  }
  if (inputDim < 1) {
    fail("mil: the features' dimension D must be positive, got " + std::to_string(inputDim) +
         " (it comes from the feature files)");
  }
  if (hidden < 1) fail("mil.hidden: must be positive, got " + std::to_string(hidden));
  if (numClasses < 2) fail("mil: at least 2 classes needed, got " + std::to_string(numClasses));
  if (!(dropout >= 0.0 && dropout < 1.0)) fail("mil.dropout: must be in [0, 1), got " + std::to_string(dropout));
  if (clamK < 1) fail("mil.clam_k: must be positive, got " + std::to_string(clamK));
  if (!(clamInstanceWeight >= 0.0 && clamInstanceWeight <= 1.0)) {
    fail("mil.clam_instance_weight: must be in [0, 1], got " + std::to_string(clamInstanceWeight));
  }
  if (transmilLayers < 1) fail("mil.transmil_layers: must be positive, got " + std::to_string(transmilLayers));
  if (transmilHeads < 1) fail("mil.transmil_heads: must be positive, got " + std::to_string(transmilHeads));
  if (transmilLandmarks < 1) {
    fail("mil.transmil_landmarks: must be positive, got " + std::to_string(transmilLandmarks));
  }
  if (name == "transmil" && hidden % transmilHeads != 0) {
    fail("mil.transmil_heads: " + std::to_string(transmilHeads) + " does not divide mil.hidden " +
         std::to_string(hidden) + "; choose heads that divide the width");
  }
}

std::vector<std::string> milModelNames() { return {"mean_pool", "max_pool", "abmil", "clam_sb", "transmil"}; }

std::shared_ptr<MilModel> buildMilModel(const MilModelOptions& o) {
  o.validate();
  std::shared_ptr<MilModel> model;
  if (o.name == "mean_pool") model = std::make_shared<MeanPoolMil>(o);
  else if (o.name == "max_pool") model = std::make_shared<MaxPoolMil>(o);
  else if (o.name == "abmil") model = std::make_shared<GatedAttentionMil>(o);
  else if (o.name == "clam_sb") model = std::make_shared<ClamSbMil>(o);
  else model = buildTransMil(o);
  detail::initLinears(*model);
  return model;
}

}  // namespace slidetrain::mil
