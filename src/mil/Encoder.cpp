#include "src/mil/Encoder.h"

#include <filesystem>
#include <stdexcept>

#include <sys/stat.h>

#include <torch/autograd.h>
#include <torch/utils.h>
#include <torch/script.h>

#include "src/models/ModelZoo.h"
#include "src/models/Transfer.h"

namespace fs = std::filesystem;

namespace slidetrain::mil {
namespace {

/// "file (N bytes, modified T)": changes when the weights are replaced.
std::string fileId(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return fs::absolute(path).lexically_normal().string() + " (" + std::to_string(st.st_size) +
         " bytes, mtime " + std::to_string(st.st_mtime) + ")";
}

class ZooEncoder : public Encoder {
 public:
  ZooEncoder(const ModelSettings& settings, int inputSize, c10::Device device, bool verbose)
      : name_(settings.name),
        weights_(settings.pretrained.empty() ? "random init" : fileId(settings.pretrained)) {
    // The classifier's width does not matter: embed() stops before it.
    model_ = buildModel(modelOptions(settings, 2, inputSize));
    applyTransferLearning(*model_, settings, verbose);
    model_->to(device);
    model_->eval();
    inputSize_ = inputSize;
    device_ = device;
    dim_ = model_->embeddingDim(inputSize);
  }
  at::Tensor encode(const at::Tensor& images) override {
    return model_->embed(images).to(at::kFloat);
  }
  std::string name() const override { return name_; }
  std::string weightsId() const override { return weights_; }

 private:
  std::shared_ptr<Model> model_;
  std::string name_, weights_;
};

class ScriptEncoder : public Encoder {
 public:
  ScriptEncoder(const std::string& path, int inputSize, c10::Device device) : path_(path) {
    const std::string key = "features.encoder: " + path;
    if (!fs::is_regular_file(path)) throw ConfigError(key + ": no such file");
    try {
      module_ = torch::jit::load(path, device);
    } catch (const std::exception& e) {
      throw ConfigError(key + ": not a TorchScript module (torch.jit.script or trace, then "
                        "save): " + firstLine(e.what()));
    }
    module_.eval();
    inputSize_ = inputSize;
    device_ = device;
    torch::NoGradGuard noGrad;
    at::Tensor out;
    try {
      out = call(at::zeros({1, 3, inputSize, inputSize}, at::TensorOptions().device(device)));
    } catch (const std::exception& e) {
      throw ConfigError(key + ": the module does not take a [1, 3, " + std::to_string(inputSize) +
                        ", " + std::to_string(inputSize) + "] image batch (set features.input_size "
                        "to the size it expects): " + firstLine(e.what()));
    }
    if (out.dim() != 2 || out.size(0) != 1)
      throw ConfigError(key + ": the module returns a tensor of shape " + shapeOf(out) +
                        " for one image; expected [1, D] features");
    dim_ = out.size(1);
  }
  at::Tensor encode(const at::Tensor& images) override { return call(images).to(at::kFloat); }
  std::string name() const override { return "torchscript:" + fs::path(path_).filename().string(); }
  std::string weightsId() const override { return fileId(path_); }

 private:
  at::Tensor call(const at::Tensor& x) {
    c10::IValue v = module_.forward({x});
    if (v.isTuple()) v = v.toTupleRef().elements().at(0);  // (features, ...) modules
    if (!v.isTensor()) throw std::runtime_error("the module's forward does not return a tensor");
    return v.toTensor();
  }
  static std::string firstLine(const std::string& s) { return s.substr(0, s.find('\n')); }
  static std::string shapeOf(const at::Tensor& t) {
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + "]";
  }
  std::string path_;
  torch::jit::Module module_;
};

}  // namespace

std::unique_ptr<Encoder> makeEncoder(const FeaturesSettings& features, const ModelSettings& model,
                                     int inputSize, c10::Device device, bool verbose) {
  if (features.encoder == "model") return std::make_unique<ZooEncoder>(model, inputSize, device, verbose);
  return std::make_unique<ScriptEncoder>(features.encoder, inputSize, device);
}

}  // namespace slidetrain::mil
