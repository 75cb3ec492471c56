#include "src/eval/Inference.h"

#include <limits>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "src/models/StateDict.h"
#include "src/models/Outputs.h"

namespace slidetrain {

InferenceOptions inferenceOptions(const PredictSettings& predict, const wsi::StreamOptions& stream,
                                  const Normalization& norm, const wsi::AugmentOptions& augment) {
  InferenceOptions io;
  io.batchSize = predict.batchSize;
  io.stream = stream;
  io.norm = norm;
  io.stainNorm = augment.stainNorm;
  io.reinhardMean = augment.reinhardMean;
  io.reinhardStd = augment.reinhardStd;
  return io;
}

at::Tensor predictProbabilities(Model& model, const SplitData& data, int numClasses,
                                const InferenceOptions& o, dist::Comm& comm) {
  const int64_t n = static_cast<int64_t>(data.samples.size());
  const int world = comm.size(), rank = comm.rank();
  const auto [begin, end] = shareOf(n, rank, world);
  const int64_t maxShare = (n + world - 1) / world;

  std::vector<std::vector<wsi::PatchRequest>> batches;
  for (int64_t i = begin; i < end; i += o.batchSize)
    batches.emplace_back(data.samples.begin() + i,
                         data.samples.begin() + std::min<int64_t>(end, i + o.batchSize));
  wsi::PatchTransform transform;
  if (o.stainNorm == wsi::StainNorm::Reinhard)
    transform = [&o](wsi::RgbImage& img, const wsi::PatchRequest&) {
      wsi::reinhardNormalize(img, o.reinhardMean, o.reinhardStd);
    };
  const at::Device device = modelDevice(model);
  wsi::StreamOptions so = o.stream;
  so.pixelAllocator = pixelAllocatorFor(device);  // pinned batches for a GPU
  wsi::PatchStream stream(data.paths, so, transform, data.slideOptions);
  stream.start(std::move(batches));

  // Local rows padded to maxShare so the all-gather has one shape on every rank; they stay on
  // the model's device (device-plane data) until gathered.
  at::Tensor local = at::full({std::max<int64_t>(maxShare, 1), numClasses},
                              std::numeric_limits<float>::quiet_NaN(),
                              at::TensorOptions().dtype(at::kFloat).device(device));
  comm.declareDeviceTensor(local);
  const bool wasTraining = model.is_training();
  model.eval();
  const DeviceBatch inputs(o.norm, device);  // mean/std on the device once
  {
    torch::NoGradGuard ng;
    while (auto b = stream.next()) {
      if (b->count() == 0) continue;
      // One-logit (bce) models give [1 - p, p]; others softmax. index_put_ (not index_copy_):
      // it has a deterministic CUDA kernel (train.deterministic).
      at::Tensor p = logitsToProbabilities(model.forward(inputs.inputs(*b)));
      at::Tensor rows = at::tensor(b->ids, at::kLong).sub_(begin).to(device);
      local.index_put_({rows}, p.to(at::kFloat));
    }
  }
  model.train(wasTraining);
  at::Tensor all = comm.allGather(local).to(at::kCPU);  // [world, maxShare, k]
  at::Tensor out = at::empty({n, numClasses}, at::kFloat);
  for (int r = 0; r < world; ++r) {
    const auto [b, e] = shareOf(n, r, world);
    if (e > b) out.narrow(0, b, e - b).copy_(all[r].narrow(0, 0, e - b));
  }
  return out;
}

}  // namespace slidetrain
