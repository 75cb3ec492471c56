#include "wsi/PatchFolders.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "wsi/Errors.h"

namespace fs = std::filesystem;

namespace slidetrain::wsi {

namespace {

bool hidden(const fs::path& p) { return !p.filename().empty() && p.filename().string()[0] == '.'; }

/// "val" for the names a split folder may have, "" for a class folder.
std::string splitOf(const std::string& name) {
  if (name == "train" || name == "test") return name;
  if (name == "val" || name == "valid" || name == "validation") return "val";
  return "";
}

/// Sub-folders of `dir`, sorted, hidden ones left out.
std::vector<fs::path> folders(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && !hidden(e.path())) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

/// Images under a class folder (recursively), sorted.
std::vector<fs::path> images(const fs::path& dir) {
  std::vector<fs::path> out;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    if (hidden(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && isPatchImage(it->path().string())) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

bool isPatchImage(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

Cohort scanPatchFolders(const std::string& rootName) {
  if (rootName.empty())
    throw DataError("data.patch_folders is empty: set it to the folder of <split>/<class>/ images");
  const fs::path root = fs::absolute(rootName).lexically_normal();
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw DataError("patch folders '" + root.string() + "': not a folder");
  const std::vector<fs::path> top = folders(root);
  std::vector<fs::path> splitDirs, classDirs;
  for (const auto& d : top) (splitOf(d.filename().string()).empty() ? classDirs : splitDirs).push_back(d);
  if (!splitDirs.empty() && !classDirs.empty())
    throw DataError("patch folders '" + root.string() + "': '" + classDirs.front().filename().string() +
                    "' sits beside the split folder '" + splitDirs.front().filename().string() +
                    "'. HINT: use either <root>/<split>/<class>/ (split in train, val, test) or "
                    "<root>/<class>/ (everything is train), not both");
  // (split, class folder) pairs.
  std::vector<std::pair<std::string, fs::path>> classFolders;
  if (splitDirs.empty()) {
    for (const auto& d : classDirs) classFolders.emplace_back("train", d);
  } else {
    std::set<std::string> seen;
    for (const auto& s : splitDirs) {
      const std::string split = splitOf(s.filename().string());
      if (!seen.insert(split).second)
        throw DataError("patch folders '" + root.string() + "': two folders are the " + split +
                        " split (val, valid and validation are one split)");
      const auto classes = folders(s);
      if (classes.empty())
        throw DataError("patch folders: split folder '" + s.string() + "' holds no class folder");
      for (const auto& c : classes) classFolders.emplace_back(split, c);
    }
  }
  if (classFolders.empty())
    throw DataError("patch folders '" + root.string() + "': no class folder (expected <root>/<class>/*.png "
                    "or <root>/<split>/<class>/*.png)");
  Cohort c;
  c.imageFiles = true;
  std::set<std::string> labels;
  for (const auto& [split, dir] : classFolders) {
    const auto files = images(dir);
    if (files.empty())
      throw DataError("patch folders: class folder '" + dir.string() + "' holds no .png, .jpg or .jpeg image");
    const std::string label = dir.filename().string();
    labels.insert(label);
    for (const auto& f : files) {
      CohortEntry e;
      e.slideId = f.lexically_relative(root).replace_extension().generic_string();
      e.path = f.string();
      e.label = label;
      e.split = split;
      c.slides.push_back(std::move(e));
    }
  }
  const auto rank = [](const std::string& s) { return s == "train" ? 0 : s == "val" ? 1 : 2; };
  std::stable_sort(c.slides.begin(), c.slides.end(), [&](const CohortEntry& a, const CohortEntry& b) {
    return std::make_tuple(rank(a.split), a.label, a.slideId) < std::make_tuple(rank(b.split), b.label, b.slideId);
  });
  c.classes.assign(labels.begin(), labels.end());
  std::map<std::string, int> index;
  for (size_t i = 0; i < c.classes.size(); ++i) index[c.classes[i]] = static_cast<int>(i);
  for (auto& e : c.slides) e.labelIndex = index.at(e.label);
  return c;
}

}  // namespace slidetrain::wsi
