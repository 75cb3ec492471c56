#pragma once
// predict.*: `slidetrain predict` and the slide decisions (part of Settings, src/config/Settings.h).
#include <string>
#include <vector>

namespace slidetrain {

class Config;

/// predict.*
struct PredictSettings {
  std::string split;
  int batchSize{};
  std::string checkpoint;    ///< "" = <run_dir>/checkpoints/last.pt
  std::string aggregation;   ///< mean, max, topk, vote, quantile
  int topk{};
  double quantile{};         ///< in (0, 1]
  bool heatmaps{};
  int heatmapSize{};
  bool exports{};  ///< run_dir/exports/<slide_id>.geojson and <slide_id>_heatmap.tiff
  bool viewer{};       ///< run_dir/viewer/<slide_id>.html with deep-zoom tiles (src/eval/SlideViewer.h)
  int viewerMaxSide{}; ///< longer side of the slide image in the viewer
  double threshold{};
  std::string thresholdFrom;  ///< val (Youden's J on the val split) or fixed
};

namespace detail {
PredictSettings predictFrom(const Config& c);
}  // namespace detail

}  // namespace slidetrain
