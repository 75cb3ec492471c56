// The schema of every configuration key: type, default, help. docs/config.md is generated from
// this table (`slidetrain config --doc`), so the docs cannot drift from the code.
#include "src/Config.h"

namespace slidetrain {

namespace {
using T = KeyType;
constexpr double kBig = 1e300;
}  // namespace

const std::vector<KeySpec>& configSchema() {
  static const std::vector<KeySpec> schema = {
      // --- run ---------------------------------------------------------------------------
      {"run_dir", T::String, "runs/default", "Run directory: config.yaml, metrics.jsonl, checkpoints/, weights.pt, patches.csv, slides.csv"},
      {"seed", T::Int, "1", "Seed of patch order, augmentation and initial weights", {}, 0, kBig},
      {"cohort", T::String, "cohort.csv", "Cohort CSV: slide_id,path,label[,split][,patient_id][,mpp]; relative paths are relative to the CSV"},
      {"cache_dir", T::String, "cache", "Folder of patch-index cache files (shared by all ranks and runs)"},
      {"on_bad_slide", T::String, "fail", "A slide or patch that cannot be read: fail the run with its name, or skip it and list it with its reason", {"skip", "fail"}},
      // --- synthetic cohort (slidetrain synth) ---------------------------------------------
      {"synth.out_dir", T::String, "synthetic", "Output folder of `slidetrain synth`"},
      {"synth.num_slides", T::Int, "16", "Number of synthetic slides", {}, 2, 100000},
      {"synth.width", T::Int, "4096", "Level-0 width in pixels", {}, 256, 1e7},
      {"synth.height", T::Int, "3072", "Level-0 height in pixels", {}, 256, 1e7},
      {"synth.mpp", T::Float, "0.5", "Microns per pixel recorded in the files", {}, 0.01, 100},
      {"synth.tumor_fraction", T::Float, "0.5", "Share of slides labelled tumor", {}, 0, 1},
      {"synth.test_fraction", T::Float, "0.25", "Share of slides in the test split", {}, 0, 1},
      {"synth.val_fraction", T::Float, "0.0", "Share of slides in the val split", {}, 0, 1},
      {"synth.tile_size", T::Int, "256", "TIFF tile size", {}, 16, 4096},
      {"synth.jpeg_quality", T::Int, "85", "JPEG quality of the tiles", {}, 1, 100},
      // --- tiling (slidetrain tile) ----------------------------------------------------------
      {"tiling.level", T::Int, "0", "Pyramid level patches are read at (ignored when tiling.target_mpp or tiling.target_magnification is set)", {}, 0, 64},
      {"tiling.patch_size", T::Int, "224", "Patch side in output pixels (the model input size)", {}, 8, 16384},
      {"tiling.stride", T::Int, "0", "Grid step in output pixels; 0 means patch_size (no overlap)", {}, 0, 16384},
      {"tiling.target_mpp", T::OptFloat, "null", "Microns per output pixel: read the coarsest level at or finer than this and resample to patch_size (needs the slide mpp); null = use tiling.level", {}, 0.001, 1000},
      {"tiling.target_magnification", T::OptFloat, "null", "Objective magnification (e.g. 20) instead of target_mpp: target downsample = objective power / this (needs the slide's objective power)", {}, 0.01, 1000},
      {"tiling.min_tissue", T::Float, "0.5", "Keep patches whose tissue fraction is at least this", {}, 0, 1},
      {"tiling.mpp_override", T::OptFloat, "null", "Level-0 microns per pixel for slides that record none (a cohort `mpp` column wins)", {}, 0, 1000},
      {"tiling.use_annotations", T::Bool, "true", "Label patches from annotations/<slide_id>.geojson, .json (QuPath) or .xml (ASAP/CAMELYON) beside the cohort when present (see tiling.label_mode)"},
      {"tiling.background_class", T::String, "normal", "Label of patches outside every annotation polygon of an annotated slide (the slide label when the cohort has no such class)"},
      {"tiling.label_mode", T::String, "centre", "How annotations label a patch: the polygon under its centre, or the class covering the largest area share (>= min_label_area)", {"centre", "area"}},
      {"tiling.min_label_area", T::Float, "0.5", "label_mode area: share of the patch a class polygon must cover to label it (else the background class)", {}, 0.001, 1},
      {"tiling.label_grid", T::Int, "8", "label_mode area: the area share is estimated on a k x k lattice of points", {}, 1, 64},
      {"tiling.roi_only", T::Bool, "false", "Keep only patches whose centre is inside an annotation polygon (slides without an annotation file are tiled whole)"},
      {"tiling.max_white_fraction", T::Float, "1.0", "Skip patches whose share of white thumbnail pixels exceeds this (1 = off)", {}, 0, 1},
      {"tiling.max_black_fraction", T::Float, "1.0", "Skip patches whose share of black thumbnail pixels exceeds this (1 = off)", {}, 0, 1},
      {"tiling.white_threshold", T::Int, "220", "A thumbnail pixel is white when every channel is above this", {}, 0, 255},
      {"tiling.black_threshold", T::Int, "30", "A thumbnail pixel is black when every channel is below this", {}, 0, 255},
      {"tiling.export_csv", T::Bool, "false", "`slidetrain tile` also writes <run_dir>/patches/<slide_id>.csv (slide_id,x,y,level,size,tissue,label,read_size)"},
      {"tiling.threads", T::Int, "0", "Slides processed in parallel by `tile`; 0 = number of cores", {}, 0, 1024},
      {"tissue.level", T::Int, "-1", "Pyramid level the tissue mask is computed on; -1 = the level nearest a 32x downsample (thumbnail_max_side still caps its size)", {}, -1, 64},
      {"tissue.thumbnail_max_side", T::Int, "2048", "Longer side of the tissue-mask thumbnail: the mask level is shrunk to fit it when larger", {}, 64, 16384},
      {"tissue.mask_dir", T::String, "", "Folder of user tissue masks <slide_id>.png (any size, scaled to the slide, non-zero = tissue) used instead of Otsu; slides without one use Otsu"},
      {"tissue.threshold", T::Float, "-1", "Saturation threshold 0..255; negative = Otsu", {}, -1, 255},
      {"tissue.median_radius", T::Int, "2", "Median blur radius (thumbnail pixels, 0 = off)", {}, 0, 64},
      {"tissue.close_radius", T::Int, "2", "Morphological close radius (0 = off)", {}, 0, 64},
      {"tissue.min_component_area", T::Int, "16", "Drop tissue components smaller than this (thumbnail pixels)", {}, 0, 1e9},
      {"tissue.fill_holes", T::Bool, "true", "Fill holes inside tissue components"},
      // --- data stream ------------------------------------------------------------------------
      {"data.workers", T::Int, "0", "Patch reader threads per rank; 0 = cores / ranks on the node", {}, 0, 1024},
      {"data.prefetch_batches", T::Int, "4", "Batches decoded ahead (bounds memory)", {}, 1, 1024},
      {"data.slide_cache", T::Int, "32", "Open slide handles kept per rank", {}, 1, 100000},
      {"data.max_patches_per_slide", T::Int, "0", "Cap of training patches per slide per epoch (seeded); 0 = all", {}, 0, 1e12},
      {"data.class_balanced", T::Bool, "false", "Sample training patches class-balanced (seeded, same epoch size)"},
      {"data.mean", T::FloatList, "[0.485, 0.456, 0.406]", "Per-channel mean for normalisation (of pixel/255)"},
      {"data.std", T::FloatList, "[0.229, 0.224, 0.225]", "Per-channel std for normalisation"},
      {"augment.flips", T::Bool, "true", "Random horizontal and vertical flips"},
      {"augment.rot90", T::Bool, "true", "Random 90-degree rotations"},
      {"augment.brightness", T::Float, "0.1", "Brightness jitter amplitude (fraction)", {}, 0, 1},
      {"augment.contrast", T::Float, "0.1", "Contrast jitter amplitude (fraction)", {}, 0, 1},
      {"augment.saturation", T::Float, "0.1", "Saturation jitter amplitude (fraction)", {}, 0, 1},
      {"augment.hue", T::Float, "0.02", "Hue jitter amplitude (fraction of the hue circle)", {}, 0, 0.5},
      // --- model --------------------------------------------------------------------------------
      {"model.name", T::String, "small_cnn", "Architecture (see docs/models.md)"},
      {"model.activation", T::String, "relu", "Activation", {"relu", "leaky_relu", "elu", "softplus", "shifted_relu"}},
      {"model.batch_norm", T::Bool, "true", "BatchNorm layers on/off"},
      {"model.bn_position", T::String, "before", "BatchNorm before or after the activation", {"before", "after"}},
      {"model.dropout", T::Float, "0.0", "Dropout rate of the head", {}, 0, 1},
      {"model.head", T::String, "linear", "Classifier head: linear, or bn_dense (BatchNorm, Dense 256, Dropout, Dense k)", {"linear", "bn_dense"}},
      {"model.pretrained", T::String, "", "PyTorch state_dict file to load weights from (empty: random init)"},
      {"model.freeze_up_to", T::String, "", "Freeze every layer before this one (e.g. block5_conv1 for VGG19)"},
      // --- optimizer and schedule -----------------------------------------------------------
      {"optimizer.name", T::String, "sgd", "Optimizer", {"gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"}},
      {"optimizer.lr", T::Float, "0.01", "Base learning rate", {}, 0, 100},
      {"optimizer.momentum", T::Float, "0.9", "Momentum (momentum, nesterov, rmsprop)", {}, 0, 1},
      {"optimizer.weight_decay", T::Float, "0.0", "L2 weight decay", {}, 0, 10},
      {"optimizer.beta1", T::Float, "0.9", "Adam beta1", {}, 0, 1},
      {"optimizer.beta2", T::Float, "0.999", "Adam beta2", {}, 0, 1},
      {"optimizer.eps", T::Float, "1e-8", "Adam/RMSprop/Adagrad epsilon", {}, 0, 1},
      {"schedule.name", T::String, "constant", "LR schedule", {"constant", "step", "multistep", "cosine"}},
      {"schedule.gamma", T::Float, "0.1", "Factor of step/multistep", {}, 0, 1},
      {"schedule.milestones", T::FloatList, "[0.5]", "Fractions of training at which step/multistep multiply by gamma"},
      {"schedule.warmup_steps", T::Int, "0", "Linear warmup steps", {}, 0, 1e12},
      {"schedule.min_lr", T::Float, "0.0", "Floor of the cosine schedule", {}, 0, 100},
      // --- training -------------------------------------------------------------------------
      {"train.epochs", T::Int, "3", "Epochs", {}, 1, 1e9},
      {"train.batch_size", T::Int, "64", "GLOBAL batch size (divided among ranks; must be divisible by the world size)", {}, 1, 1e9},
      {"train.backend", T::String, "auto", "Gradient all-reduce backend", {"auto", "mpi", "nccl"}},
      {"train.sync_batchnorm", T::Bool, "true", "Synchronise BatchNorm statistics across ranks"},
      {"train.bucket_mb", T::Float, "25", "Gradient bucket size (MB)", {}, 0.001, 1e6},
      {"train.first_bucket_mb", T::Float, "1", "First gradient bucket size (MB)", {}, 0.001, 1e6},
      {"train.timeout_s", T::Float, "600", "Timeout of every collective; a stuck or dead rank ends the job", {}, 1, 1e9},
      {"train.threads", T::Int, "0", "Torch intra-op threads per rank; 0 = cores / ranks on the node", {}, 0, 1024},
      {"train.log_every", T::Int, "20", "Log a progress line every this many steps (rank 0)", {}, 1, 1e9},
      {"train.loss", T::String, "cross_entropy", "Loss", {"cross_entropy"}},
      {"train.label_smoothing", T::Float, "0.0", "Label smoothing of the cross-entropy", {}, 0, 1},
      // --- prediction and aggregation ------------------------------------------------------
      {"predict.split", T::String, "test", "Cohort split predicted by `slidetrain predict`"},
      {"predict.batch_size", T::Int, "128", "Inference batch size per rank", {}, 1, 1e9},
      {"predict.checkpoint", T::String, "", "Checkpoint to load; empty = <run_dir>/checkpoints/last.pt"},
      {"predict.aggregation", T::String, "max", "Slide label from patch probabilities: the reported accuracy uses this one", {"mean", "max", "topk"}},
      {"predict.topk", T::Int, "5", "k of top-k mean pooling", {}, 1, 1e9},
      {"predict.threshold", T::Float, "0.5", "Positive-class threshold on the pooled probability", {}, 0, 1},
  };
  return schema;
}

}  // namespace slidetrain
