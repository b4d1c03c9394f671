// VerSe-layout datasets (see ctbmd/dataset.hpp).
#include "ctbmd/dataset.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"

namespace ctbmd {

namespace fs = std::filesystem;

namespace {
bool endsWith(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}
fs::path firstExisting(const std::vector<fs::path>& c) {
  for (const auto& p : c)
    if (fs::exists(p)) return p;
  return {};
}
}  // namespace

std::vector<VerseSubject> scanVerseDataset(const fs::path& root) {
  if (!fs::is_directory(root))
    throw InputError("dataset '" + root.string() +
                     "' is not a folder (expected the VerSe layout: "
                     "rawdata/sub-*/ and derivatives/sub-*/)");
  std::vector<VerseSubject> out;
  const std::string suffix = "_seg-vert_msk.nii.gz";
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file()) continue;
    const fs::path p = it->path();
    const std::string name = p.filename().string();
    if (!endsWith(name, suffix) && !endsWith(name, "_seg-vert_msk.nii")) continue;
    const fs::path subj_dir = p.parent_path(), deriv = subj_dir.parent_path();
    if (deriv.filename() != "derivatives") continue;
    VerseSubject s;
    s.key = name.substr(0, name.find("_seg-vert_msk"));
    s.subject = subj_dir.filename().string();
    s.split = fs::relative(deriv.parent_path(), root).string();
    if (s.split == ".") s.split.clear();
    s.vert_mask = p;
    const fs::path raw = deriv.parent_path() / "rawdata" / s.subject;
    s.ct = firstExisting({raw / (s.key + "_ct.nii.gz"), raw / (s.key + "_ct.nii")});
    s.subreg_mask = firstExisting(
        {subj_dir / (s.key + "_seg-subreg_msk.nii.gz"), subj_dir / (s.key + "_seg-subreg_msk.nii")});
    s.centroids =
        firstExisting({subj_dir / (s.key + "_seg-subreg_ctd.json"), subj_dir / (s.key + "_seg-vert_ctd.json"),
                       subj_dir / (s.key + "_ctd.json")});
    out.push_back(std::move(s));
  }
  if (out.empty())
    throw InputError("dataset '" + root.string() +
                     "' holds no VerSe-layout subject (no derivatives/sub-*/*_seg-vert_msk.nii.gz found)");
  std::sort(out.begin(), out.end(), [](const VerseSubject& a, const VerseSubject& b) {
    return a.split != b.split ? a.split < b.split : a.key < b.key;
  });
  return out;
}

VerseCentroids readVerseCentroids(const fs::path& file) {
  nlohmann::json j;
  try {
    std::ifstream in(file);
    if (!in) throw InputError("cannot open centroid file '" + file.string() + "'");
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InputError("centroid file '" + file.string() + "' is not valid JSON: " + jsonProblem(e));
  }
  VerseCentroids c;
  if (!j.is_array())
    throw InputError("centroid file '" + file.string() + "' is not a VerSe centroid list (a JSON array)");
  for (const auto& e : j) {
    if (e.contains("direction")) {
      for (const auto& a : e["direction"]) c.axes += a.get<std::string>();
      continue;
    }
    if (!e.contains("label") || !e.contains("X") || !e.contains("Y") || !e.contains("Z"))
      throw InputError("centroid file '" + file.string() + "': an entry lacks label, X, Y or Z: " + e.dump());
    c.voxel[e["label"].get<int>()] = {e["X"].get<double>(), e["Y"].get<double>(), e["Z"].get<double>()};
  }
  if (c.axes.size() != 3)
    throw InputError("centroid file '" + file.string() +
                     "' has no {\"direction\": [..3 axis codes..]} entry, so its voxel axes are unknown");
  return c;
}

std::map<int, std::array<double, 3>> centroidsToPhysical(const VerseCentroids& c,
                                                         const itk::ImageBase<3>* grid,
                                                         const std::string& what) {
  CtImage::DirectionType d = grid->GetDirection();
  const std::string code = orientationCode(d);
  // VerSe (nibabel) codes name the direction an axis points to in RAS terms; ITK codes (ours)
  // name where the index increases in LPS terms. The two agree letter for letter: nibabel's
  // "P" axis increases toward posterior, as does ITK's "P".
  if (c.axes != code)
    throw InputError(what + ": the centroids are given for axes " + c.axes + " but the mask is stored as " +
                     code + "; reorient one of them first");
  std::map<int, std::array<double, 3>> out;
  for (const auto& [label, v] : c.voxel) {
    itk::ContinuousIndex<double, 3> ci;
    for (int a = 0; a < 3; ++a) ci[a] = v[a];
    itk::Point<double, 3> pt;
    grid->TransformContinuousIndexToPhysicalPoint(ci, pt);
    out[label] = {pt[0], pt[1], pt[2]};
  }
  return out;
}

void writeVerseCentroids(const fs::path& file, const itk::ImageBase<3>* grid,
                         const std::map<int, std::array<double, 3>>& lps_mm, bool force) {
  CtImage::DirectionType d = grid->GetDirection();
  const std::string code = orientationCode(d);
  nlohmann::json j = nlohmann::json::array();
  j.push_back({{"direction", {std::string(1, code[0]), std::string(1, code[1]), std::string(1, code[2])}}});
  for (const auto& [label, p] : lps_mm) {
    itk::Point<double, 3> pt;
    for (int a = 0; a < 3; ++a) pt[a] = p[a];
    itk::ContinuousIndex<double, 3> ci;
    grid->TransformPhysicalPointToContinuousIndex(pt, ci);
    auto r1 = [](double v) { return std::round(v * 10) / 10; };
    j.push_back({{"label", label}, {"X", r1(ci[0])}, {"Y", r1(ci[1])}, {"Z", r1(ci[2])}});
  }
  writeJsonFile(file, j, force);
}

VerseCase loadVerseCase(const VerseSubject& s) {
  if (s.ct.empty())
    throw InputError("subject " + s.key + " has a mask (" + s.vert_mask.string() + ") but no CT in rawdata/" +
                     s.subject + "/ (" + s.key + "_ct.nii.gz)");
  VerseCase c;
  c.subject = s;
  c.scan = readScan(s.ct);
  auto vert = readLabels(s.vert_mask, c.scan.image.GetPointer());
  LabelImage::Pointer sub;
  if (!s.subreg_mask.empty()) sub = readLabels(s.subreg_mask, c.scan.image.GetPointer());
  c.bodies = LabelImage::New();
  c.bodies->CopyInformation(vert);
  c.bodies->SetRegions(vert->GetLargestPossibleRegion());
  c.bodies->Allocate();
  const uint8_t* v = vert->GetBufferPointer();
  uint8_t* b = c.bodies->GetBufferPointer();
  const size_t n = vert->GetLargestPossibleRegion().GetNumberOfPixels();
  c.bodies_from_subregions = static_cast<bool>(sub);
  const uint8_t* r = sub ? sub->GetBufferPointer() : nullptr;
  std::map<int, std::array<double, 4>> acc;  // label -> sum of index, count
  for (size_t i = 0; i < n; ++i) {
    uint8_t l = v[i];
    if (r && r[i] != 49 && r[i] != 50) l = 0;
    b[i] = l;
  }
  if (!s.centroids.empty()) {
    c.centroids =
        centroidsToPhysical(readVerseCentroids(s.centroids), vert.GetPointer(), s.centroids.string());
  } else {
    auto sz = vert->GetLargestPossibleRegion().GetSize();
    size_t i = 0;
    for (size_t z = 0; z < sz[2]; ++z)
      for (size_t y = 0; y < sz[1]; ++y)
        for (size_t x = 0; x < sz[0]; ++x, ++i)
          if (b[i]) {
            auto& a = acc[b[i]];
            a[0] += static_cast<double>(x);
            a[1] += static_cast<double>(y);
            a[2] += static_cast<double>(z);
            a[3] += 1;
          }
    for (const auto& [label, a] : acc) {
      itk::ContinuousIndex<double, 3> ci;
      for (int k = 0; k < 3; ++k) ci[k] = a[k] / a[3];
      itk::Point<double, 3> pt;
      vert->TransformContinuousIndexToPhysicalPoint(ci, pt);
      c.centroids[label] = {pt[0], pt[1], pt[2]};
    }
  }
  return c;
}

}  // namespace ctbmd
