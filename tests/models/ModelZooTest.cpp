// Model zoo: every model runs forward/backward; torchvision architectures have torchvision's
// parameter counts (num_classes=1000) and state_dict keys; options and freezing behave.
#include <algorithm>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/optim/sgd.h>

#include "src/models/ModelZoo.h"

namespace slidetrain {
namespace {

struct ZooCase {
  std::string name;
  int64_t torchvisionParams;  ///< 0: not a torchvision architecture
  int inputSize;              ///< smallest convenient input for a quick forward/backward
};

std::ostream& operator<<(std::ostream& os, const ZooCase& c) { return os << c.name; }

// Reference counts from torchvision 0.14 with num_classes=1000 (googlenet without aux heads).
const std::vector<ZooCase> kCases = {
    {"small_cnn", 0, 64},          {"cnn_1conv", 0, 64},
    {"cnn_2conv", 0, 64},          {"cnn_4conv", 0, 64},
    {"lenet5", 0, 32},             {"alexnet", 61100840, 64},
    {"vgg11", 132863336, 32},      {"vgg11_bn", 132868840, 32},
    {"vgg16", 138357544, 32},      {"vgg16_bn", 138365992, 32},
    {"vgg19", 143667240, 32},      {"vgg19_bn", 143678248, 32},
    {"resnet18", 11689512, 32},    {"resnet34", 21797672, 32},
    {"resnet50", 25557032, 32},    {"densenet121", 7978856, 32},
    {"efficientnet_b0", 5288548, 32}, {"efficientnet_b1", 7794184, 32},
    {"efficientnet_b2", 9109994, 32}, {"efficientnet_b3", 12233232, 32},
    {"googlenet", 6624904, 32},
};

std::set<std::string> stateKeys(const torch::nn::Module& m) {
  std::set<std::string> keys;
  for (const auto& p : m.named_parameters()) keys.insert(p.key());
  for (const auto& b : m.named_buffers()) keys.insert(b.key());
  return keys;
}

class ZooModelTest : public ::testing::TestWithParam<ZooCase> {};

TEST_P(ZooModelTest, CountsMatchTorchvisionAndForwardBackwardWorks) {
  const ZooCase& c = GetParam();
  ModelOptions o;
  o.name = c.name;
  o.numClasses = c.torchvisionParams ? 1000 : 2;
  o.inputSize = c.inputSize;
  auto model = buildModel(o);
  if (c.torchvisionParams) {
    EXPECT_EQ(countParameters(*model), c.torchvisionParams);
  }
  EXPECT_EQ(countParameters(*model, true), countParameters(*model));

  at::Tensor x = at::randn({2, 3, c.inputSize, c.inputSize});
  at::Tensor y = model->forward(x);
  ASSERT_EQ(y.sizes(), (at::IntArrayRef{2, o.numClasses}));
  EXPECT_TRUE(at::isfinite(y).all().item<bool>());
  y.logsumexp(1).sum().backward();
  int64_t withGrad = 0;
  for (const auto& p : model->parameters()) withGrad += p.grad().defined();
  EXPECT_EQ(withGrad, static_cast<int64_t>(model->parameters().size()));

  model->eval();  // eval path (running statistics) also gives the right shape
  EXPECT_EQ(model->forward(x).size(1), o.numClasses);
  EXPECT_FALSE(model->layerNames().empty());

  // The classifier removed (slidetrain features): [N, D], D the width torchvision's pooled
  // trunk has (what `fc = Identity()` gives) for the architectures torchvision has.
  const std::map<std::string, int64_t> widths = {
      {"small_cnn", 64},     {"alexnet", 256},     {"vgg16", 512},         {"vgg19_bn", 512},
      {"resnet18", 512},     {"resnet50", 2048},   {"densenet121", 1024},  {"googlenet", 1024},
      {"efficientnet_b0", 1280}, {"efficientnet_b3", 1536}};
  const at::Tensor e = model->embed(x);
  ASSERT_EQ(e.dim(), 2);
  EXPECT_EQ(e.size(0), 2);
  EXPECT_EQ(model->embeddingDim(c.inputSize), e.size(1));
  if (widths.count(c.name)) {
    EXPECT_EQ(e.size(1), widths.at(c.name)) << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllModels, ZooModelTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

TEST(ModelZoo, EveryRegisteredModelIsTested) {
  std::vector<std::string> tested;
  for (const auto& c : kCases) tested.push_back(c.name);
  EXPECT_EQ(modelNames(), tested);
}

TEST(ModelZoo, StateDictKeysFollowTorchvision) {
  auto keys = [](const std::string& name) {
    ModelOptions o;
    o.name = name;
    return stateKeys(*buildModel(o));
  };
  auto expectKeys = [](const std::set<std::string>& have, std::vector<std::string> want) {
    for (const auto& k : want) EXPECT_TRUE(have.count(k)) << "missing " << k;
  };
  expectKeys(keys("vgg16_bn"), {"features.0.weight", "features.1.running_var",
                                "features.1.num_batches_tracked", "classifier.6.weight"});
  expectKeys(keys("resnet50"), {"conv1.weight", "bn1.bias", "layer1.0.conv3.weight",
                                "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_mean",
                                "layer4.2.bn3.weight", "fc.weight", "fc.bias"});
  expectKeys(keys("densenet121"),
             {"features.conv0.weight", "features.norm0.weight",
              "features.denseblock1.denselayer1.norm1.weight",
              "features.denseblock4.denselayer16.conv2.weight", "features.transition3.conv.weight",
              "features.norm5.running_var", "classifier.weight"});
  expectKeys(keys("efficientnet_b0"),
             {"features.0.0.weight", "features.0.1.running_mean", "features.1.0.block.1.fc1.weight",
              "features.2.0.block.2.fc2.bias", "features.7.0.block.3.1.weight",
              "features.8.0.weight", "classifier.1.weight"});
  expectKeys(keys("googlenet"), {"conv1.conv.weight", "conv3.bn.running_var",
                                 "inception4a.branch2.1.conv.weight",
                                 "inception5b.branch4.1.bn.weight", "fc.weight"});
}

TEST(ModelZoo, OptionsChangeTheNetwork) {
  ModelOptions o;
  o.inputSize = 32;
  for (const std::string act : {"relu", "leaky_relu", "elu", "softplus", "shifted_relu"}) {
    o.activation = act;
    EXPECT_EQ(buildModel(o)->forward(at::randn({2, 3, 32, 32})).size(1), 2) << act;
  }
  o.activation = "relu";
  const int64_t withBn = countParameters(*buildModel(o));
  o.bnPosition = "after";
  EXPECT_EQ(countParameters(*buildModel(o)), withBn + 16 + 32 + 64 + 64);  // conv biases back
  o.batchNorm = false;
  auto plain = buildModel(o);
  for (const auto& k : stateKeys(*plain)) EXPECT_EQ(k.find("running_mean"), std::string::npos);

  ModelOptions t;
  t.name = "resnet18";
  t.head = "bn_dense";
  t.numClasses = 3;
  t.dropout = 0.3;
  auto transfer = buildModel(t);
  auto keys = stateKeys(*transfer);
  EXPECT_TRUE(keys.count("fc.0.running_mean"));  // BN -> Dense 256 -> act -> Dropout -> Dense k
  EXPECT_TRUE(keys.count("fc.1.weight"));
  EXPECT_TRUE(keys.count("fc.4.weight"));
  EXPECT_EQ(transfer->forward(at::randn({2, 3, 32, 32})).sizes(), (at::IntArrayRef{2, 3}));
}

TEST(ModelZoo, ValidateNamesTheField) {
  auto message = [](const ModelOptions& o) {
    try {
      o.validate();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  ModelOptions o;
  EXPECT_EQ(message(o), "");
  o.name = "resnet9000";
  EXPECT_NE(message(o).find("model.name"), std::string::npos);
  o = ModelOptions{};
  o.activation = "tanhh";
  EXPECT_NE(message(o).find("model.activation"), std::string::npos);
  o = ModelOptions{};
  o.bnPosition = "middle";
  EXPECT_NE(message(o).find("model.bn_position"), std::string::npos);
  o = ModelOptions{};
  o.dropout = 1.0;
  EXPECT_NE(message(o).find("model.dropout"), std::string::npos);
  o = ModelOptions{};
  o.head = "mlp";
  EXPECT_NE(message(o).find("model.head"), std::string::npos);
  o = ModelOptions{};
  o.numClasses = 0;
  EXPECT_NE(message(o).find("model.num_classes"), std::string::npos);
  o = ModelOptions{};
  o.name = "convnn_1";
  o.inputSize = 8;
  o.validate();
  o.name = "lenet5";  // two 5x5 valid convs and two pools do not fit in 8 px
  EXPECT_THROW(buildModel(o), std::invalid_argument);
}

TEST(ModelZoo, KerasVggNamesResolveToTorchvisionIndices) {
  ModelOptions o;
  o.name = "vgg19";
  auto vgg19 = buildModel(o);
  EXPECT_EQ(vgg19->resolveLayerName("block1_conv1"), "features.0");
  EXPECT_EQ(vgg19->resolveLayerName("block5_conv1"), "features.28");
  EXPECT_EQ(vgg19->resolveLayerName("fc2"), "classifier.3");
  // Everything before block5 is frozen: 12 convs x (weight, bias).
  EXPECT_EQ(freezeUpTo(*vgg19, "block5_conv1"), 24);
  EXPECT_FALSE(vgg19->named_parameters()["features.25.bias"].requires_grad());
  EXPECT_TRUE(vgg19->named_parameters()["features.28.weight"].requires_grad());
}

TEST(ModelZoo, FrozenParametersDoNotMove) {
  ModelOptions o;
  o.name = "resnet18";
  auto model = buildModel(o);
  const int64_t total = countParameters(*model);
  EXPECT_GT(freezeUpTo(*model, "layer3"), 0);
  EXPECT_LT(countParameters(*model, true), total);
  EXPECT_THROW(freezeUpTo(*model, "layer7"), std::invalid_argument);

  std::map<std::string, at::Tensor> before;
  for (const auto& p : model->named_parameters()) before[p.key()] = p.value().clone();
  std::vector<at::Tensor> trainable;
  for (const auto& p : model->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  torch::optim::SGD sgd(trainable, torch::optim::SGDOptions(0.1).weight_decay(1e-2));
  model->forward(at::randn({4, 3, 32, 32})).pow(2).mean().backward();
  sgd.step();
  for (const auto& p : model->named_parameters()) {
    const bool frozen = p.key().rfind("layer3", 0) != 0 && p.key().rfind("layer4", 0) != 0 &&
                        p.key().rfind("fc", 0) != 0;
    EXPECT_EQ(p.value().requires_grad(), !frozen) << p.key();
    if (frozen) {
      EXPECT_TRUE(p.value().equal(before[p.key()])) << p.key();
    }
  }
  EXPECT_FALSE(model->named_parameters()["fc.weight"].equal(before["fc.weight"]));
}

TEST(ModelZoo, SeedPaperNamesAreAliasesOfTheDescriptiveOnes) {
  const auto aliases = modelAliases();
  ASSERT_EQ(aliases.size(), 3u);
  const auto names = modelNames();
  for (const auto& [alias, name] : aliases) {
    EXPECT_EQ(std::find(names.begin(), names.end(), alias), names.end()) << alias << " is listed as a model";
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
    EXPECT_EQ(canonicalModelName(alias), name);
    ModelOptions a;
    a.name = alias;
    a.inputSize = 64;
    ModelOptions b = a;
    b.name = name;
    torch::manual_seed(5);
    auto ma = buildModel(a);
    torch::manual_seed(5);
    auto mb = buildModel(b);
    EXPECT_EQ(stateKeys(*ma), stateKeys(*mb)) << alias;
    EXPECT_EQ(countParameters(*ma, false), countParameters(*mb, false)) << alias;
  }
  EXPECT_EQ(canonicalModelName("resnet18"), "resnet18");
  ModelOptions bad;
  bad.name = "convnn_3";
  try {
    bad.validate();
    ADD_FAILURE() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("seed-paper alias: convnn_1, convnn_2, cnn4"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slidetrain
