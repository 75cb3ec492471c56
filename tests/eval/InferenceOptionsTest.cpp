#include <gtest/gtest.h>

#include "src/data/StreamOptions.h"
#include "src/eval/Inference.h"

namespace slidetrain {
namespace {

InferenceOptions optionsOf(const Settings& s) {
  return inferenceOptions(s.predict, streamOptions(s.data, s.run.skipBadSlides, 1), normalization(s.data),
                          s.augment);
}

TEST(Settings, InferenceUsesTheStreamAndStainSettingsOfTraining) {
  const Settings c = Settings::defaults({"augment.stain_norm=reinhard", "augment.reinhard_mean=[60, 20, -10]",
                    "data.direct_reads=false", "data.workers=3", "predict.batch_size=7",
                    "augment.hed=0.1"});
  const InferenceOptions io = optionsOf(c);
  EXPECT_EQ(io.batchSize, 7);
  EXPECT_EQ(io.stream.workers, 3);
  EXPECT_FALSE(io.stream.directReads);
  EXPECT_EQ(io.stainNorm, wsi::StainNorm::Reinhard);
  EXPECT_DOUBLE_EQ(io.reinhardMean[0], 60);
  EXPECT_EQ(optionsOf(Settings::defaults()).stainNorm, wsi::StainNorm::None);
}

}  // namespace
}  // namespace slidetrain
