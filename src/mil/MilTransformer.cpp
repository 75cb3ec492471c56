// TransMIL (Shao et al. 2021, github.com/szc19990412/TransMIL): patch projection, square
// padding, a class token, transformer layers with Nystrom attention (Xiong et al. 2021, as in
// the nystrom-attention package TransMIL uses) and the PPEG positional module after the first
// layer, LayerNorm, the class token -> classifier. Attention costs O(N m) time and memory for
// m landmarks, so bags of 50k patches fit on a CPU.
#include "src/mil/MilTransformer.h"

#include <cmath>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace slidetrain::mil {

namespace {

constexpr int kPinvIterations = 6;    // nystrom-attention's default (TransMIL keeps it)
constexpr int64_t kResidualKernel = 33;  // depthwise conv over the sequence on the values

/// Moore-Penrose pseudo-inverse of each [m, m] matrix of x by the iterative method of
/// Razavi et al. 2014 (as nystrom-attention: the start scaled by the largest row and column sums).
at::Tensor iterativePinv(const at::Tensor& x) {
  const at::Tensor absX = x.abs();
  const at::Tensor col = absX.sum(-1);
  const at::Tensor row = absX.sum(-2);
  at::Tensor z = x.transpose(-1, -2) / (col.max() * row.max());
  const at::Tensor eye = at::eye(x.size(-1), x.options()).unsqueeze(0).unsqueeze(0);
  for (int i = 0; i < kPinvIterations; ++i) {
    const at::Tensor xz = x.matmul(z);
    z = 0.25 * z.matmul(13 * eye - xz.matmul(15 * eye - xz.matmul(7 * eye - xz)));
  }
  return z;
}

/// Nystrom self-attention on [1, n, dim]. The sequence is zero-padded at the front to a
/// multiple of m; landmarks are the means of m consecutive segments of queries and keys;
/// softmax(Q K^T) ~ softmax(Q Kl^T) pinv(softmax(Ql Kl^T)) softmax(Ql K^T).
class NystromAttentionImpl : public torch::nn::Module {
 public:
  NystromAttentionImpl(int64_t dim, int64_t heads, int64_t landmarks, double dropout)
      : heads_(heads), landmarks_(landmarks), headDim_(dim / heads),
        toQkv_(register_module("to_qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(false)))),
        toOut_(register_module("to_out", torch::nn::Linear(dim, dim))),
        drop_(register_module("drop", torch::nn::Dropout(dropout))),
        resConv_(register_module("res_conv",
                                 torch::nn::Conv2d(torch::nn::Conv2dOptions(heads, heads, {kResidualKernel, 1})
                                                       .padding({kResidualKernel / 2, 0})
                                                       .groups(heads)
                                                       .bias(false)))) {}

  /// x [1, n, dim] -> [1, n, dim]. With `rowOf` >= 0, *row receives that position's
  /// approximate attention row [n] (mean over heads, detached).
  at::Tensor forward(const at::Tensor& x, int64_t rowOf = -1, at::Tensor* row = nullptr) {
    const int64_t n = x.size(1);
    const int64_t m = landmarks_;
    const int64_t pad = (m - n % m) % m;
    const at::Tensor padded = pad > 0 ? at::constant_pad_nd(x, {0, 0, pad, 0}, 0.0) : x;
    const int64_t np = n + pad;
    const int64_t segment = np / m;
    auto split = [&](const at::Tensor& t) {  // [1, np, h*d] -> [1, h, np, d]
      return t.reshape({1, np, heads_, headDim_}).permute({0, 2, 1, 3});
    };
    const std::vector<at::Tensor> qkv = toQkv_(padded).chunk(3, -1);
    const at::Tensor q = split(qkv[0]) * (1.0 / std::sqrt(static_cast<double>(headDim_)));
    const at::Tensor k = split(qkv[1]);
    const at::Tensor v = split(qkv[2]);
    const at::Tensor qLand = q.reshape({1, heads_, m, segment, headDim_}).mean(3);
    const at::Tensor kLand = k.reshape({1, heads_, m, segment, headDim_}).mean(3);
    const at::Tensor attn1 = at::softmax(q.matmul(kLand.transpose(-1, -2)), -1);      // [1,h,np,m]
    const at::Tensor attn2 = at::softmax(qLand.matmul(kLand.transpose(-1, -2)), -1);  // [1,h,m,m]
    const at::Tensor attn3 = at::softmax(qLand.matmul(k.transpose(-1, -2)), -1);      // [1,h,m,np]
    const at::Tensor pinv = iterativePinv(attn2);
    at::Tensor out = attn1.matmul(pinv).matmul(attn3.matmul(v)) + resConv_(v);  // [1,h,np,d]
    out = out.permute({0, 2, 1, 3}).reshape({1, np, heads_ * headDim_});
    out = drop_(toOut_(out)).narrow(1, pad, n);
    if (rowOf >= 0 && row != nullptr) {
      torch::NoGradGuard noGrad;
      const at::Tensor r = attn1.narrow(2, pad + rowOf, 1).matmul(pinv).matmul(attn3);  // [1,h,1,np]
      *row = r.mean(1).reshape({np}).narrow(0, pad, n).detach();
    }
    return out;
  }

 private:
  int64_t heads_, landmarks_, headDim_;
  torch::nn::Linear toQkv_, toOut_;
  torch::nn::Dropout drop_;
  torch::nn::Conv2d resConv_;
};
TORCH_MODULE(NystromAttention);

/// Pre-norm residual layer: x + attention(LayerNorm(x)) (TransMIL's TransLayer, no MLP).
class TransLayerImpl : public torch::nn::Module {
 public:
  TransLayerImpl(int64_t dim, int64_t heads, int64_t landmarks, double dropout)
      : norm_(register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})))),
        attn_(register_module("attn", NystromAttention(dim, heads, landmarks, dropout))) {}
  at::Tensor forward(const at::Tensor& x, int64_t rowOf = -1, at::Tensor* row = nullptr) {
    return x + attn_->forward(norm_(x), rowOf, row);
  }

 private:
  torch::nn::LayerNorm norm_;
  NystromAttention attn_;
};
TORCH_MODULE(TransLayer);

/// PPEG: the patch tokens laid on the side x side grid, plus depthwise convolutions 7, 5, 3
/// of themselves; the class token passes through.
class PpegImpl : public torch::nn::Module {
 public:
  explicit PpegImpl(int64_t dim)
      : proj_(register_module("proj", depthwise(dim, 7))),
        proj1_(register_module("proj1", depthwise(dim, 5))),
        proj2_(register_module("proj2", depthwise(dim, 3))) {}
  at::Tensor forward(const at::Tensor& x, int64_t side) {
    const int64_t c = x.size(2);
    const at::Tensor cls = x.narrow(1, 0, 1);
    const at::Tensor grid = x.narrow(1, 1, side * side).transpose(1, 2).reshape({1, c, side, side});
    const at::Tensor y = proj_(grid) + grid + proj1_(grid) + proj2_(grid);
    return at::cat({cls, y.flatten(2).transpose(1, 2)}, 1);
  }

 private:
  static torch::nn::Conv2d depthwise(int64_t dim, int64_t kernel) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, kernel).padding(kernel / 2).groups(dim));
  }
  torch::nn::Conv2d proj_, proj1_, proj2_;
};
TORCH_MODULE(Ppeg);

class TransMil : public MilModel {
 public:
  explicit TransMil(const MilModelOptions& o)
      : fc1_(register_module("fc1", torch::nn::Linear(o.inputDim, o.hidden))),
        clsToken_(register_parameter("cls_token", at::randn({1, 1, o.hidden}))),
        layers_(register_module("layers", torch::nn::ModuleList())),
        // Between the first and the second layer; a single layer gets none (the class token,
        // which PPEG passes through, would not see its output).
        ppeg_(o.transmilLayers > 1 ? register_module("pos_layer", Ppeg(o.hidden)) : Ppeg(nullptr)),
        norm_(register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden})))),
        fc2_(register_module("fc2", torch::nn::Linear(o.hidden, o.numClasses))),
        inputDim_(o.inputDim) {
    for (int i = 0; i < o.transmilLayers; ++i) {
      layers_->push_back(TransLayer(o.hidden, o.transmilHeads, o.transmilLandmarks, o.dropout));
    }
  }

  MilOutput forward(const at::Tensor& bag, int64_t label) override {
    const at::Tensor x = detail::checkedBag(bag, inputDim_, fc2_->weight);
    const int64_t n = x.size(0);
    at::Tensor h = at::relu(fc1_(x));  // [N, hidden]
    // Square grid for PPEG: repeat the first patches (cyclically for tiny bags).
    auto side = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
    while (side * side < n) ++side;
    const int64_t extra = side * side - n;
    const at::Tensor wrap = at::arange(extra, x.options().dtype(at::kLong)).remainder(n);
    if (extra > 0) h = at::cat({h, h.index_select(0, wrap)});
    h = at::cat({clsToken_, h.unsqueeze(0)}, 1);  // [1, 1 + side^2, hidden]

    at::Tensor row;
    const auto layerCount = static_cast<int64_t>(layers_->size());
    for (int64_t i = 0; i < layerCount; ++i) {
      const bool last = i + 1 == layerCount;
      h = layers_[i]->as<TransLayerImpl>()->forward(h, last ? 0 : -1, last ? &row : nullptr);
      if (i == 0 && ppeg_) h = ppeg_->forward(h, side);
    }
    MilOutput out;
    out.logits = fc2_(norm_(h.select(1, 0)));  // [1, k]
    out.attention = patchAttention(row, n, wrap);
    return out;
  }

 private:
  /// The class token's row (over [cls, grid]) -> [N]: the padding copies folded back onto
  /// their patches, negative entries of the approximation cut to 0, normalised to sum 1.
  static at::Tensor patchAttention(const at::Tensor& row, int64_t n, const at::Tensor& wrap) {
    torch::NoGradGuard noGrad;
    const at::Tensor grid = row.narrow(0, 1, row.size(0) - 1);
    at::Tensor a = grid.narrow(0, 0, n).clone();
    if (wrap.numel() > 0) a.index_add_(0, wrap, grid.narrow(0, n, wrap.numel()));
    a.clamp_min_(0.0);
    const double total = a.sum().item<double>();
    if (total > 0.0) return a / total;
    return at::full({n}, 1.0 / static_cast<double>(n), a.options());
  }

  torch::nn::Linear fc1_;
  at::Tensor clsToken_;
  torch::nn::ModuleList layers_;
  Ppeg ppeg_;
  torch::nn::LayerNorm norm_;
  torch::nn::Linear fc2_;
  int64_t inputDim_;
};

}  // namespace

std::shared_ptr<MilModel> buildTransMil(const MilModelOptions& o) { return std::make_shared<TransMil>(o); }

}  // namespace slidetrain::mil
