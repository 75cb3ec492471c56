#include "src/config/PredictSettings.h"

#include "src/config/Config.h"
#include "src/config/Errors.h"

namespace slidetrain::detail {
namespace {
int toInt(int64_t v) { return static_cast<int>(v); }
}  // namespace

PredictSettings predictFrom(const Config& c) {
  PredictSettings p;
  p.split = c.getString("predict.split");
  p.batchSize = toInt(c.getInt("predict.batch_size"));
  p.checkpoint = c.getString("predict.checkpoint");
  p.aggregation = c.getString("predict.aggregation");
  p.topk = toInt(c.getInt("predict.topk"));
  p.quantile = c.getFloat("predict.quantile");
  if (!(p.quantile > 0)) throw ConfigError("predict.quantile: expected a number in (0, 1], got 0");
  p.heatmaps = c.getBool("predict.heatmaps");
  p.heatmapSize = toInt(c.getInt("predict.heatmap_size"));
  p.exports = c.getBool("predict.exports");
  p.viewer = c.getBool("predict.viewer");
  p.viewerMaxSide = toInt(c.getInt("predict.viewer_max_side"));
  p.threshold = c.getFloat("predict.threshold");
  p.thresholdFrom = c.getString("predict.threshold_from");
  return p;
}

}  // namespace slidetrain::detail
