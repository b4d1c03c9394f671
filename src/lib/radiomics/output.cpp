// Feature rows of a scan's label map, and the features.csv table.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/radiomics.hpp"
#include "internal/parallel.hpp"

namespace ctbmd::radiomics {

namespace {
std::string roiName(int label, bool verse) {
  if (!verse) return std::to_string(label);
  try {
    return levelName(label);
  } catch (const std::invalid_argument&) {
    return std::to_string(label);
  }
}

std::string number(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream o;
  o.precision(10);
  o << v;
  return o.str();
}
}  // namespace

// The features of one ROI on every image of the feature set (IBSI 2 order: interpolate, filter
// the interpolated patch, keep the original image's masks, discretise the response).
FeatureList roiFeatures(const RoiImage& roi, const FeatureConfig& cfg) {
  RoiImage masked = roi;
  resegment(masked, cfg.settings);  // the intensity mask every response map uses
  std::vector<std::string> response_families = cfg.families;
  if (response_families.empty())
    response_families = {"loc", "stat", "ih", "ivh", "cm", "rlm", "szm", "dzm", "ngt", "ngl"};
  response_families.erase(std::remove(response_families.begin(), response_families.end(), "morph"),
                          response_families.end());
  const Volume vol{roi.grid, roi.intensity};
  // 1. The response maps, one task per LoG sigma and per wavelet decomposition (which gives all
  //    eight sub-bands at once).
  std::vector<std::vector<double>> response(cfg.images.size());
  std::vector<std::vector<std::size_t>> producers;  // image indices each task fills
  std::map<std::pair<std::string, int>, std::size_t> wavelet_task;
  for (std::size_t k = 0; k < cfg.images.size(); ++k) {
    const ImageSpec& im = cfg.images[k];
    if (im.kind == ImageSpec::Kind::original) continue;
    if (im.kind == ImageSpec::Kind::wavelet) {
      const auto key = std::make_pair(im.wavelet, im.level);
      const auto it = wavelet_task.find(key);
      if (it != wavelet_task.end()) {
        producers[it->second].push_back(k);
        continue;
      }
      wavelet_task[key] = producers.size();
    }
    producers.push_back({k});
  }
  parallelFor(int(producers.size()), [&](int t) {
    const ImageSpec& first = cfg.images[producers[std::size_t(t)].front()];
    if (first.kind == ImageSpec::Kind::log) {
      response[producers[std::size_t(t)].front()] =
          laplacianOfGaussian(vol, first.sigma_mm, 4.0, cfg.boundary).v;
      return;
    }
    auto bands = waveletSubbands(vol, first.wavelet, first.level, cfg.boundary);
    for (std::size_t k : producers[std::size_t(t)])
      for (auto& [name, v] : bands)
        if (name == cfg.images[k].subband) response[k] = v.v;
  });
  // 2. The features of every image, one task each (the original, with morphology, first).
  std::vector<FeatureList> per_image(cfg.images.size());
  parallelFor(int(cfg.images.size()), [&](int t) {
    const ImageSpec& im = cfg.images[std::size_t(t)];
    FeatureList f;
    if (im.kind == ImageSpec::Kind::original) {
      f = computeAll(roi, cfg.settings, cfg.families.empty() ? nullptr : &cfg.families);
    } else {
      RoiImage resp = masked;
      resp.intensity = std::move(response[std::size_t(t)]);
      f = computeAll(resp, cfg.filtered_settings, &response_families);
    }
    for (auto& x : f)
      if (cfg.keeps(x.tag)) per_image[std::size_t(t)].push_back({im.prefix() + x.tag, x.value});
  });
  FeatureList out;
  for (auto& f : per_image) out.insert(out.end(), f.begin(), f.end());
  return out;
}

std::vector<FeatureRow> extractFeatures(const CtImage* image, const LabelImage* labels, const RoiRequest& req,
                                        const FeatureConfig& cfg) {
  const Settings& s = cfg.settings;
  std::array<double, 3> spacing;
  for (unsigned a = 0; a < 3; ++a)
    spacing[a] = s.resampling.voxel_mm[a] > 0 ? s.resampling.voxel_mm[a] : image->GetSpacing()[a];
  double margin_mm = 7.0;
  for (int a = 0; a < 3; ++a)
    margin_mm = std::max(
        margin_mm, double(cfg.marginVoxels(spacing, a)) * *std::max_element(spacing.begin(), spacing.end()));
  const std::vector<int>& values = req.labels;
  std::set<int> present;
  const uint8_t* lab = labels->GetBufferPointer();
  const std::size_t n = labels->GetLargestPossibleRegion().GetNumberOfPixels();
  for (std::size_t k = 0; k < n; ++k)
    if (lab[k]) present.insert(lab[k]);
  std::vector<int> wanted;
  for (int v : values.empty() ? std::vector<int>(present.begin(), present.end()) : values)
    if (present.count(v)) wanted.push_back(v);
  if (wanted.empty())
    throw InputError(values.empty() ? "the label map is empty: no ROI to compute features of"
                                    : "none of the requested labels is in the label map");
  auto row = [&](const std::vector<int>& ls, int label, const std::string& name) {
    FeatureRow r;
    r.case_id = req.case_id;
    r.label = label;
    r.roi = name;
    const RoiImage roi = cropRoi(image, labels, ls, s.resampling, margin_mm);
    for (uint8_t m : roi.morph_mask) r.voxels += m;
    RoiImage probe = roi;
    r.moran_stride = moranStride(resegment(probe, s), s);
    r.features = roiFeatures(roi, cfg);
    return r;
  };
  std::vector<FeatureRow> rows;
  if (req.merged) {
    std::string name;
    for (int v : wanted) name += (name.empty() ? "" : "+") + roiName(v, req.verse_names);
    rows.push_back(row(wanted, 0, name));
  } else {
    for (int v : wanted) rows.push_back(row({v}, v, roiName(v, req.verse_names)));
  }
  return rows;
}

nlohmann::json interpolationJson(const Resampling& r) {
  if (!r.active()) return "none (the image's own grid)";
  return {{"voxel_mm", r.voxel_mm},
          {"image", toString(r.image)},
          {"mask", "trilinear"},
          {"mask_threshold", r.mask_threshold},
          {"round_intensities", r.round_intensities},
          {"grid", "centres aligned (IBSI 2.3)"},
          {"beyond_edge", "nearest edge voxel"}};
}

nlohmann::json settingsJson(const Settings& s) {
  auto orNull = [](double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); };
  return {{"standard", "IBSI 1 (reference manual v11)"},
          {"interpolation", interpolationJson(s.resampling)},
          {"discretisation", toString(s.discretisation)},
          {"bin_width_hu", s.discretisation == Discretisation::fixed_bin_size ? nlohmann::json(s.bin_width)
                                                                              : nlohmann::json()},
          {"bin_count", s.discretisation == Discretisation::fixed_bin_number ? nlohmann::json(s.bin_count)
                                                                             : nlohmann::json()},
          {"resegmentation_hu", {orNull(s.reseg_min), orNull(s.reseg_max)}},
          {"outlier_sigma", s.outlier_sigma > 0 ? nlohmann::json(s.outlier_sigma) : nlohmann::json()},
          {"texture_distance", "Chebyshev 1; GLCM symmetric; NGLDM alpha 0"},
          {"slices_2d", "axial (canonical LPS z)"},
          {"moran_max_voxels", s.moran_max_voxels}};
}

void writeFeatureCsv(const std::filesystem::path& path, const std::vector<FeatureRow>& rows,
                     const FeatureConfig& cfg, bool force) {
  const Settings& s = cfg.settings;
  if (rows.empty()) throw InputError("no feature rows to write to '" + path.string() + "'");
  std::ostringstream o;
  o << "case_id,roi,label,voxels,discretisation,bin_width_hu,bin_count,reseg_min_hu,reseg_max_hu,moran_"
       "stride";
  for (const auto& f : rows.front().features) o << ',' << f.tag;
  o << '\n';
  for (const auto& r : rows) {
    if (r.features.size() != rows.front().features.size())
      throw std::logic_error("feature rows with different feature sets");
    o << csvField(r.case_id) << ',' << csvField(r.roi) << ',' << r.label << ',' << r.voxels << ','
      << toString(s.discretisation) << ','
      << (s.discretisation == Discretisation::fixed_bin_size ? number(s.bin_width) : "") << ','
      << (s.discretisation == Discretisation::fixed_bin_number ? std::to_string(s.bin_count) : "") << ','
      << number(s.reseg_min) << ',' << number(s.reseg_max) << ',' << r.moran_stride;
    for (std::size_t k = 0; k < r.features.size(); ++k) {
      if (r.features[k].tag != rows.front().features[k].tag)
        throw std::logic_error("feature rows with different feature orders");
      o << ',' << number(r.features[k].value);
    }
    o << '\n';
  }
  writeTextFile(path, o.str(), force);
}

}  // namespace ctbmd::radiomics

#include "ctbmd/pipeline.hpp"
#include "ctbmd/provenance.hpp"

namespace ctbmd::radiomics {

std::filesystem::path featuresJsonPath(const std::filesystem::path& csv_path) {
  auto p = csv_path;
  return p.replace_extension(".json");
}

void saveFeatures(const std::filesystem::path& csv_path, const std::vector<FeatureRow>& rows,
                  const Scan& scan, const std::filesystem::path& mask_path, const RoiRequest& req,
                  const FeatureConfig& cfg, bool force) {
  const auto jp = featuresJsonPath(csv_path);
  checkWritable(csv_path, force);
  checkWritable(jp, force);
  writeFeatureCsv(csv_path, rows, cfg, force);
  nlohmann::json inputs = scanInputs(scan);
  inputs["labels"] = fileInput(mask_path);
  nlohmann::json rois = nlohmann::json::array();
  for (const auto& r : rows) {
    std::size_t defined = 0;
    for (const auto& f : r.features) defined += std::isnan(f.value) ? 0 : 1;
    rois.push_back({{"roi", r.roi},
                    {"label", r.label},
                    {"voxels", r.voxels},
                    {"features", r.features.size()},
                    {"features_undefined", r.features.size() - defined},
                    {"moran_stride", r.moran_stride}});
  }
  nlohmann::json body = {{"case_id", req.case_id},
                         {"table", csv_path.filename().string()},
                         {"settings", settingsJson(cfg.settings)},
                         {"feature_set", toJson(cfg)},
                         {"rois", rois}};
  nlohmann::json params = {{"labels", req.labels}, {"merged", req.merged}, {"verse_names", req.verse_names}};
  writeStageJson(jp, body, "ctbmd.radiomics", inputs, params, force);
}

}  // namespace ctbmd::radiomics

namespace ctbmd::radiomics {

std::vector<FeatureRow> readFeatureCsv(const std::filesystem::path& path) {
  const CsvTable t = readCsv(path);
  const int c_case = t.column({"case_id"}), c_roi = t.column({"roi"}), c_label = t.column({"label"}),
            c_vox = t.column({"voxels"}), c_stride = t.column({"moran_stride"});
  if (c_case < 0 || c_roi < 0 || c_label < 0 || c_vox < 0 || c_stride < 0)
    throw InputError("'" + path.string() +
                     "' is not a ctbmd-radiomics features.csv (needs case_id, roi, label, "
                     "voxels, moran_stride and feature columns)");
  std::vector<FeatureRow> rows;
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    FeatureRow row;
    row.case_id = t.cell(r, c_case);
    row.roi = t.cell(r, c_roi);
    try {
      row.label = std::stoi(t.cell(r, c_label));
      row.voxels = std::stoul(t.cell(r, c_vox));
      row.moran_stride = std::stoul(t.cell(r, c_stride));
    } catch (const std::exception&) {
      throw InputError("'" + path.string() + "' line " + std::to_string(t.line_numbers[r]) +
                       ": label, voxels and moran_stride must be whole numbers");
    }
    for (std::size_t c = std::size_t(c_stride) + 1; c < t.header.size(); ++c) {
      const std::string& cell = t.cell(r, int(c));
      double v = std::numeric_limits<double>::quiet_NaN();
      if (!cell.empty()) {
        try {
          std::size_t used = 0;
          v = std::stod(cell, &used);
          if (used != cell.size()) throw std::invalid_argument(cell);
        } catch (const std::exception&) {
          throw InputError("'" + path.string() + "' line " + std::to_string(t.line_numbers[r]) + ": " +
                           t.header[c] + " = '" + cell + "' is not a number");
        }
      }
      row.features.push_back({t.header[c], v});
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace ctbmd::radiomics
