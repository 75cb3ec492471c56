// Transfer learning and PyTorch state_dict interop: slidetrain's weights.pt loads in Python
// (strict=True, same logits), Python's torch.save(model.state_dict()) loads here (also
// num_batches_tracked, pickle protocol 4, DDP "module." keys), missing/unexpected keys are
// reported, errors name the key and the file, freezing holds under optimizer steps and
// unfreezing happens after N epochs.
//
// The interop tests run tests/python/state_dict_interop.py with /usr/bin/python3 (Debian's
// python3-torch; override with SLIDETRAIN_TORCH_PYTHON). They FAIL, not skip, when that
// Python or its torch is missing: the test script installs python3-torch.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/serialize.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "src/models/StateDict.h"
#include "src/config/Settings.h"
#include "src/models/ModelZoo.h"
#include "src/train/Optim.h"
#include "src/models/Transfer.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

std::string torchPython() {
  const char* p = std::getenv("SLIDETRAIN_TORCH_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

std::string interopScript() {
  return std::string(SLIDETRAIN_SOURCE_DIR) + "/tests/python/state_dict_interop.py";
}

/// Fresh scratch folder per test.
std::string scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() /
                     ("slidetrain_transfer_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

/// Runs the interop script; on failure the returned string holds the command and its output.
::testing::AssertionResult runPython(const std::string& args, const std::string& dir) {
  const std::string py = torchPython();
  if (!fs::exists(py))
    return ::testing::AssertionFailure()
           << py << " not found: install Debian's python3-torch (the interop tests need it)";
  const std::string log = dir + "/python.log";
  const std::string cmd = py + " " + interopScript() + " " + args + " > " + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(log);
  const std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (rc != 0)
    return ::testing::AssertionFailure()
           << cmd << " exited with " << rc << " (is python3-torch installed?):\n" << out;
  return ::testing::AssertionSuccess();
}

std::shared_ptr<Model> makeModel(const std::string& name, int classes, int input = 32) {
  ModelOptions o;
  o.name = name;
  o.numClasses = classes;
  o.inputSize = input;
  return buildModel(o);
}

/// A few training-mode forwards so BatchNorm running statistics are not the defaults.
void moveRunningStats(Model& m, int64_t size) {
  torch::NoGradGuard ng;
  m.train();
  for (int i = 0; i < 2; ++i) m.forward(torch::randn({4, 3, size, size}) * 2 + 0.5);
  m.eval();
}

std::vector<float> readFloats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> v(b.size() / sizeof(float));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(float));
  return v;
}

void writePickle(const std::string& path, const c10::IValue& v) {
  const std::vector<char> bytes = torch::pickle_save(v);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void writeStateDictFile(const std::string& path,
                        const std::vector<std::pair<std::string, at::Tensor>>& entries) {
  const std::vector<char> bytes = stateDictBytes(entries);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::map<std::string, at::Tensor> asMap(const std::vector<std::pair<std::string, at::Tensor>>& v) {
  return {v.begin(), v.end()};
}

ModelSettings configWith(const std::vector<std::string>& overrides) {
  return Settings::defaults(overrides).model;
}

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not a ConfigError: ") + e.what();
  }
  return "no exception";
}

// ---- (a) slidetrain -> Python ------------------------------------------------------------------

class ExportToPython : public ::testing::TestWithParam<std::string> {};

TEST_P(ExportToPython, TorchLoadStrictGivesSameLogits) {
  const std::string arch = GetParam();
  const std::string dir = scratch("export_" + arch);
  torch::manual_seed(3);
  auto model = makeModel(arch, 3);
  moveRunningStats(*model, 32);
  // Parameters away from their initial values too (zero biases would hide a bias mix-up).
  {
    torch::NoGradGuard ng;
    for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);
  }
  exportStateDict(dir + "/weights.pt", *model);
  const at::Tensor x = torch::randn({2, 3, 32, 32});
  writeStateDictFile(dir + "/input.pt", {{"x", x}});
  at::Tensor expected;
  {
    torch::NoGradGuard ng;
    expected = model->forward(x).contiguous();
  }
  ASSERT_TRUE(runPython("load " + arch + " 3 " + dir + "/weights.pt " + dir + "/input.pt " + dir +
                            "/out.bin",
                        dir));
  const std::vector<float> got = readFloats(dir + "/out.bin");
  ASSERT_EQ(static_cast<int64_t>(got.size()), expected.numel());
  const float* e = expected.data_ptr<float>();
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - e[i]) / (1.0 + std::abs(double(e[i]))));
  EXPECT_LT(worst, 1e-5) << arch << ": Python logits differ from slidetrain's";
  // The logits are not trivially equal (e.g. all zero).
  EXPECT_GT(expected.abs().max().item<float>(), 1e-3);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Zoo, ExportToPython, ::testing::Values("small_cnn", "resnet18", "resnet50"));

// ---- (b) Python -> slidetrain ------------------------------------------------------------------

class ImportFromPython : public ::testing::TestWithParam<std::string> {};

TEST_P(ImportFromPython, TorchSaveStateDictLoadsWithSameLogits) {
  const std::string arch = GetParam();
  const std::string dir = scratch("import_" + arch);
  ASSERT_TRUE(runPython("save " + arch + " 3 " + dir, dir));
  const auto io = asMap(readStateDict(dir + "/io.pt"));
  ASSERT_EQ(io.count("x"), 1u);
  ASSERT_EQ(io.count("y"), 1u);

  for (const char* file : {"full.pt", "proto4.pt", "ddp.pt"}) {
    SCOPED_TRACE(file);
    torch::manual_seed(11);
    auto model = makeModel(arch, 3);
    const StateDictReport r = importStateDict(dir + "/" + file, *model);
    EXPECT_TRUE(r.missing.empty()) << r.missing.front();
    EXPECT_TRUE(r.unexpected.empty()) << r.unexpected.front();
    EXPECT_TRUE(r.shapeMismatch.empty());
    EXPECT_EQ(r.loaded, static_cast<int64_t>(model->named_parameters().size() +
                                             model->named_buffers().size()));
    // num_batches_tracked (int64 scalar) came across: Python ran 3 training forwards.
    int64_t tracked = 0;
    for (const auto& kv : model->named_buffers()) {
      if (kv.key().find("num_batches_tracked") == std::string::npos) continue;
      ASSERT_EQ(kv.value().scalar_type(), at::kLong);
      EXPECT_EQ(kv.value().item<int64_t>(), 3) << kv.key();
      ++tracked;
    }
    EXPECT_GT(tracked, 0);
    model->eval();
    torch::NoGradGuard ng;
    const at::Tensor y = model->forward(io.at("x"));
    EXPECT_TRUE(torch::allclose(y, io.at("y"), 1e-5, 1e-5))
        << "max diff " << (y - io.at("y")).abs().max().item<float>();
  }
  fs::remove_all(dir);
}

TEST_P(ImportFromPython, MissingAndUnexpectedKeysAreReported) {
  const std::string arch = GetParam();
  const std::string dir = scratch("partial_" + arch);
  ASSERT_TRUE(runPython("save " + arch + " 3 " + dir, dir));
  auto model = makeModel(arch, 3);
  const StateDictReport r = importStateDict(dir + "/partial.pt", *model);
  const std::string head = arch == "small_cnn" ? "classifier.1.bias" : "fc.bias";
  EXPECT_EQ(r.missing, std::vector<std::string>{head});
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"extra.weight"});
  EXPECT_TRUE(r.shapeMismatch.empty());

  // The transfer-learning path reports both on stdout and loads the rest.
  const ModelSettings cfg = configWith({"model.name=" + arch, "model.pretrained=" + dir + "/partial.pt"});
  auto fresh = makeModel(arch, 3);
  testing::internal::CaptureStdout();
  applyTransferLearning(*fresh, cfg, /*verbose=*/true);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("missing (kept at initialisation): 1: " + head), std::string::npos) << out;
  EXPECT_NE(out.find("unexpected (ignored): 1: extra.weight"), std::string::npos) << out;
  EXPECT_NE(out.find(dir + "/partial.pt"), std::string::npos) << out;
  fs::remove_all(dir);
}

TEST_P(ImportFromPython, ExportToolFileLoadsIntoAnyNumberOfClasses) {
  // tools/export_torchvision.py drops the 1000-class head; the rest loads, the head is missing.
  const std::string arch = GetParam();
  const std::string dir = scratch("tool_" + arch);
  const std::string file = dir + "/imagenet.pt";
  ASSERT_TRUE(runPython("tool " + arch + " 1000 " + file, dir));
  auto model = makeModel(arch, 2);
  testing::internal::CaptureStdout();
  applyTransferLearning(*model, configWith({"model.name=" + arch, "model.pretrained=" + file}),
                        /*verbose=*/true);
  const std::string out = testing::internal::GetCapturedStdout();
  const std::string head = arch == "small_cnn" ? "classifier.1" : "fc";
  EXPECT_NE(out.find("missing (kept at initialisation): 2: " + head + ".weight, " + head + ".bias"),
            std::string::npos) << out;
  EXPECT_EQ(out.find("unexpected"), std::string::npos) << out;
  const auto file_ = asMap(readStateDict(file));
  for (const auto& kv : model->named_parameters()) {
    if (kv.key().rfind(head + ".", 0) != 0) {
      EXPECT_TRUE(torch::equal(kv.value(), file_.at(kv.key()))) << kv.key();
    }
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Zoo, ImportFromPython, ::testing::Values("small_cnn", "resnet18"));

// ---- C++ round trip and the reader on its own ---------------------------------------------------

TEST(StateDict, ExportImportRoundTripKeepsEveryTensor) {
  const std::string dir = scratch("roundtrip");
  torch::manual_seed(5);
  auto a = makeModel("resnet18", 4);
  moveRunningStats(*a, 32);
  exportStateDict(dir + "/w.pt", *a);
  const auto entries = asMap(readStateDict(dir + "/w.pt"));
  EXPECT_EQ(entries.size(), a->named_parameters().size() + a->named_buffers().size());
  EXPECT_EQ(entries.at("layer1.0.bn1.num_batches_tracked").item<int64_t>(), 2);
  torch::manual_seed(6);
  auto b = makeModel("resnet18", 4);
  const StateDictReport r = importStateDict(dir + "/w.pt", *b);
  EXPECT_TRUE(r.missing.empty() && r.unexpected.empty() && r.shapeMismatch.empty());
  b->eval();
  const at::Tensor x = torch::randn({2, 3, 32, 32});
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
  fs::remove_all(dir);
}

TEST(StateDict, ReaderStillReadsWeightsOfEarlierVersions) {
  // Before weights.pt moved to torch.save's layout, slidetrain wrote it with torch::pickle_save
  // of a typed dict; those files must keep working as model.pretrained.
  const std::string dir = scratch("older");
  torch::manual_seed(7);
  auto a = makeModel("small_cnn", 2);
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& kv : a->named_parameters()) dict.insert(kv.key(), kv.value().detach());
  for (const auto& kv : a->named_buffers()) dict.insert(kv.key(), kv.value().detach());
  writePickle(dir + "/old.pt", dict);
  const auto entries = asMap(readStateDict(dir + "/old.pt"));
  ASSERT_EQ(entries.size(), dict.size());
  for (const auto& kv : a->named_parameters()) EXPECT_TRUE(at::equal(entries.at(kv.key()), kv.value()));
  fs::remove_all(dir);
}

TEST(StateDict, ReaderRejectsNonZipFilesNamingThem) {
  const std::string dir = scratch("garbage");
  const std::string f = dir + "/notes.pt";
  std::ofstream(f) << "not a pickle";
  try {
    readStateDict(f);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("legacy"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// ---- applyTransferLearning errors ---------------------------------------------------------------

TEST(Transfer, MissingFileNamesKeyAndFile) {
  auto m = makeModel("small_cnn", 2);
  const std::string f = "/nonexistent/dir/weights.pt";
  const std::string e = errorOf([&] { applyTransferLearning(*m, configWith({"model.pretrained=" + f}), false); });
  EXPECT_NE(e.find("model.pretrained"), std::string::npos) << e;
  EXPECT_NE(e.find(f), std::string::npos) << e;
}

TEST(Transfer, NothingMatchingIsAnError) {
  const std::string dir = scratch("nomatch");
  exportStateDict(dir + "/resnet.pt", *makeModel("resnet18", 2));
  auto m = makeModel("small_cnn", 2);
  const std::string e = errorOf([&] {
    applyTransferLearning(*m, configWith({"model.pretrained=" + dir + "/resnet.pt"}), false);
  });
  EXPECT_NE(e.find("model.pretrained"), std::string::npos) << e;
  EXPECT_NE(e.find(dir + "/resnet.pt"), std::string::npos) << e;
  EXPECT_NE(e.find("no tensor name matches"), std::string::npos) << e;
  fs::remove_all(dir);
}

TEST(Transfer, ShapeMismatchIsAnErrorNamingTheTensor) {
  const std::string dir = scratch("shape");
  exportStateDict(dir + "/five.pt", *makeModel("small_cnn", 5));
  auto m = makeModel("small_cnn", 2);
  const std::string e = errorOf([&] {
    applyTransferLearning(*m, configWith({"model.pretrained=" + dir + "/five.pt"}), false);
  });
  EXPECT_NE(e.find("model.pretrained"), std::string::npos) << e;
  EXPECT_NE(e.find(dir + "/five.pt"), std::string::npos) << e;
  EXPECT_NE(e.find("classifier.1.weight: file [5, 64] vs model [2, 64]"), std::string::npos) << e;
  fs::remove_all(dir);
}

TEST(Transfer, UnknownFreezeLayerNamesTheKey) {
  auto m = makeModel("small_cnn", 2);
  const std::string e = errorOf([&] {
    applyTransferLearning(*m, configWith({"model.freeze_up_to=block9_conv9"}), false);
  });
  EXPECT_NE(e.find("model.freeze_up_to"), std::string::npos) << e;
  EXPECT_NE(e.find("block9_conv9"), std::string::npos) << e;
}

// ---- freezing and unfreezing --------------------------------------------------------------------

/// Three SGD steps (momentum) on random data; returns the parameters before.
std::map<std::string, at::Tensor> trainSteps(Model& m) {
  std::map<std::string, at::Tensor> before;
  for (const auto& kv : m.named_parameters()) before[kv.key()] = kv.value().detach().clone();
  OptimizerOptions oo;
  oo.name = "momentum";
  oo.lr = 0.1;
  oo.weightDecay = 1e-3;  // decay must not move frozen weights either
  auto opt = makeOptimizer(oo, m.parameters());
  m.train();
  for (int i = 0; i < 3; ++i) {
    opt->zero_grad();
    const at::Tensor x = torch::randn({4, 3, 32, 32});
    const at::Tensor y = torch::randint(0, 2, {4}, at::kLong);
    torch::nn::functional::cross_entropy(m.forward(x), y).backward();
    opt->step();
  }
  return before;
}

TEST(Transfer, FrozenParametersDoNotMoveOthersDo) {
  torch::manual_seed(2);
  auto m = makeModel("small_cnn", 2);
  testing::internal::CaptureStdout();
  applyTransferLearning(*m, configWith({"model.freeze_up_to=features.8"}), /*verbose=*/true);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("froze 6 parameter tensors"), std::string::npos) << out;
  EXPECT_NE(out.find("frozen layers: features.0, features.1, features.4, features.5"),
            std::string::npos) << out;
  const auto before = trainSteps(*m);
  int frozen = 0, moved = 0;
  for (const auto& kv : m->named_parameters()) {
    const bool isFrozen = kv.key().rfind("features.0.", 0) == 0 ||
                          kv.key().rfind("features.1.", 0) == 0 ||
                          kv.key().rfind("features.4.", 0) == 0 ||
                          kv.key().rfind("features.5.", 0) == 0;
    EXPECT_EQ(kv.value().requires_grad(), !isFrozen) << kv.key();
    if (isFrozen) {
      EXPECT_TRUE(torch::equal(kv.value(), before.at(kv.key()))) << kv.key() << " moved";
      ++frozen;
    } else {
      EXPECT_FALSE(torch::equal(kv.value(), before.at(kv.key()))) << kv.key() << " did not move";
      ++moved;
    }
  }
  EXPECT_EQ(frozen, 6);
  EXPECT_GT(moved, 0);
}

TEST(Transfer, KerasNameFreezesVgg19UpToBlock5) {
  auto m = makeModel("vgg19", 2);
  applyTransferLearning(*m, configWith({"model.freeze_up_to=block5_conv1"}), false);
  for (const auto& kv : m->named_parameters()) {
    const bool early = kv.key().rfind("features.", 0) == 0 &&
                       std::stoi(kv.key().substr(9)) < 28;  // block5_conv1 = features.28
    EXPECT_EQ(kv.value().requires_grad(), !early) << kv.key();
  }
}

TEST(Transfer, UnfreezesAfterConfiguredEpochs) {
  auto m = makeModel("small_cnn", 2);
  const ModelSettings cfg = configWith({"model.freeze_up_to=classifier", "model.unfreeze_after_epochs=2"});
  applyTransferLearning(*m, cfg, false);
  const int64_t all = countParameters(*m, false);
  const int64_t head = countParameters(*m, true);
  EXPECT_EQ(head, 64 * 2 + 2);
  EXPECT_FALSE(unfreezeIfDue(*m, cfg, 0));
  EXPECT_FALSE(unfreezeIfDue(*m, cfg, 1));
  EXPECT_EQ(countParameters(*m, true), head);
  EXPECT_TRUE(unfreezeIfDue(*m, cfg, 2));
  EXPECT_EQ(countParameters(*m, true), all);
  // After unfreezing, every parameter trains.
  const auto before = trainSteps(*m);
  for (const auto& kv : m->named_parameters())
    EXPECT_FALSE(torch::equal(kv.value(), before.at(kv.key()))) << kv.key();
  EXPECT_FALSE(unfreezeIfDue(*m, cfg, 3));

  // Off by default: nothing unfreezes.
  auto n = makeModel("small_cnn", 2);
  const ModelSettings never = configWith({"model.freeze_up_to=classifier"});
  applyTransferLearning(*n, never, false);
  for (int64_t e = 0; e < 5; ++e) EXPECT_FALSE(unfreezeIfDue(*n, never, e));
  EXPECT_EQ(countParameters(*n, true), head);
}

}  // namespace
}  // namespace slidetrain
