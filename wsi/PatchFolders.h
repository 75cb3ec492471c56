#pragma once
// Patch-folder datasets (data.source: patch_folders): pre-cut patches stored one folder per class,
// the layout of Keras' image_dataset_from_directory and of the Kaggle patch datasets.
//
//   ROOT/<split>/<class>/**/*.{png,jpg,jpeg}   split in train, val (also "valid", "validation"), test
//   ROOT/<class>/**/*.{png,jpg,jpeg}           no split folders: every image is in train
//
// The layout is chosen by the top level: when any folder there is a split name, every folder must
// be one. Extensions are matched case-insensitively; other files, and names starting with '.',
// are ignored. Images inside a class folder may sit in sub-folders (the class is the folder under
// the split). The result is a Cohort with one entry per image (imageFiles set): slide_id is the
// path relative to ROOT without the extension, label the class folder, split the split folder,
// patient_id empty (each image is its own group in k-fold cv). Entries are sorted by
// (split, class, relative path), so every rank and every run sees the same list.
#include <string>

#include "wsi/Cohort.h"

namespace slidetrain::wsi {

/// Scans `root`. Throws DataError naming the folder when root is missing or not a folder, a
/// class folder holds no image, split and class folders are mixed at the top level, a split
/// folder holds no class folder, or there is no image at all.
Cohort scanPatchFolders(const std::string& root);

/// Whether `path` has a patch-image extension (.png, .jpg, .jpeg; any case).
bool isPatchImage(const std::string& path);

}  // namespace slidetrain::wsi
