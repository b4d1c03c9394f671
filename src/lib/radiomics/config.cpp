// Feature sets: which images (original, LoG, wavelet sub-bands), families and aggregations, and
// the processing settings, from a JSON file checked key by key.
#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/radiomics.hpp"

namespace ctbmd::radiomics {

namespace {
using json = nlohmann::json;

const std::vector<std::string>& familyNames() {
  static const std::vector<std::string> f{"morph", "loc", "stat", "ih",  "ivh", "cm",
                                          "rlm",   "szm", "dzm",  "ngt", "ngl"};
  return f;
}
const std::vector<std::string>& aggregationNames() {
  static const std::vector<std::string> a{"2D_avg",  "2D_comb", "2_5D_avg", "2_5D_comb", "3D_avg",
                                          "3D_comb", "2D",      "2_5D",     "3D"};
  return a;
}
const std::vector<std::string>& subbandNames() {
  static const std::vector<std::string> b{"LLL", "LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH"};
  return b;
}

// The aggregation suffix of a texture tag ("cm_joint_max_3D_avg" -> "3D_avg"), "" for others.
std::string aggregationOf(const std::string& tag) {
  static const char* texture[] = {"cm_", "rlm_", "szm_", "dzm_", "ngt_", "ngl_"};
  bool is_texture = false;
  for (const char* t : texture) is_texture = is_texture || tag.rfind(t, 0) == 0;
  if (!is_texture) return "";
  for (const char* suffix :
       {"_2_5D_avg", "_2_5D_comb", "_2D_avg", "_2D_comb", "_3D_avg", "_3D_comb", "_2_5D", "_2D", "_3D"}) {
    const std::string s(suffix);
    if (tag.size() > s.size() && tag.compare(tag.size() - s.size(), s.size(), s) == 0) return s.substr(1);
  }
  return "";
}

struct Reader {
  std::string file;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw InputError("feature-set file '" + file + "': " + key + ": " + what);
  }
  void onlyKeys(const json& j, const std::string& where, std::initializer_list<const char*> keys) const {
    if (!j.is_object()) fail(where, "must be an object");
    for (auto it = j.begin(); it != j.end(); ++it) {
      bool known = false;
      for (const char* k : keys) known = known || it.key() == k;
      if (!known) {
        std::string list;
        for (const char* k : keys) list += (list.empty() ? "" : ", ") + std::string(k);
        fail(where.empty() ? it.key() : where + "." + it.key(), "unknown key (expected one of " + list + ")");
      }
    }
  }
  double number(const json& j, const std::string& key, double lo, double hi) const {
    if (!j.is_number()) fail(key, "must be a number");
    const double v = j.get<double>();
    if (!(v >= lo && v <= hi))
      fail(key, "must lie in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v;
  }
  std::string oneOf(const json& j, const std::string& key, const std::vector<std::string>& allowed) const {
    if (!j.is_string()) fail(key, "must be a string");
    const std::string v = j.get<std::string>();
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      fail(key, "'" + v + "' is not one of " + list);
    }
    return v;
  }
  std::vector<std::string> list(const json& j, const std::string& key,
                                const std::vector<std::string>& allowed) const {
    if (!j.is_array()) fail(key, "must be a list");
    std::vector<std::string> out;
    for (std::size_t k = 0; k < j.size(); ++k)
      out.push_back(oneOf(j[k], key + "[" + std::to_string(k) + "]", allowed));
    return out;
  }
  void discretisation(const json& j, const std::string& key, Settings& s) const {
    onlyKeys(j, key, {"method", "bin_width", "bin_count"});
    if (j.contains("method"))
      s.discretisation = discretisationFromString(
          oneOf(j["method"], key + ".method", {"fixed-bin-size", "fixed-bin-number", "none"}));
    if (j.contains("bin_width")) s.bin_width = number(j["bin_width"], key + ".bin_width", 1e-3, 1e4);
    if (j.contains("bin_count")) s.bin_count = int(number(j["bin_count"], key + ".bin_count", 2, 4096));
  }
};

std::string fmt(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}
}  // namespace

std::string ImageSpec::prefix() const {
  switch (kind) {
    case Kind::original:
      return "";
    case Kind::log:
      return "log_s" + fmt(sigma_mm) + "_";
    case Kind::wavelet:
      return "wav_" + wavelet + "_l" + std::to_string(level) + "_" + subband + "_";
  }
  return "";
}

bool FeatureConfig::keeps(const std::string& tag) const {
  if (aggregations.empty()) return true;
  const std::string a = aggregationOf(tag);
  return a.empty() || std::find(aggregations.begin(), aggregations.end(), a) != aggregations.end();
}

std::size_t FeatureConfig::marginVoxels(const std::array<double, 3>& spacing_mm, int axis) const {
  int m = int(std::ceil(7.0 / spacing_mm[std::size_t(axis)]));  // the local-intensity sphere
  for (const auto& im : images) {
    if (im.kind == ImageSpec::Kind::log)
      m = std::max(m, logSupportVoxels(im.sigma_mm, spacing_mm[std::size_t(axis)]) + 1);
    if (im.kind == ImageSpec::Kind::wavelet) m = std::max(m, waveletSupportVoxels(im.wavelet, im.level) + 1);
  }
  return std::size_t(m);
}

FeatureConfig loadFeatureConfig(const std::filesystem::path& path) {
  json j;
  try {
    j = readJsonFile(path);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError("feature-set file '" + path.string() + "' is not valid JSON: " + jsonProblem(e));
  }
  return featureConfigFromJson(j, path.string());
}

FeatureConfig featureConfigFromJson(const nlohmann::json& j, const std::string& where) {
  const Reader r{where};
  r.onlyKeys(
      j, "",
      {"schema", "name", "description", "interpolation", "resegmentation", "discretisation",
       "filtered_discretisation", "ivh_discretisation", "boundary", "images", "families", "aggregations"});
  if (!j.contains("schema") || j["schema"] != "ctbmd.radiomics-config")
    r.fail("schema", "must be \"ctbmd.radiomics-config\"");
  FeatureConfig c;
  if (j.contains("name")) {
    if (!j["name"].is_string()) r.fail("name", "must be a string");
    c.name = j["name"].get<std::string>();
  }
  Settings& s = c.settings;
  if (j.contains("interpolation")) {
    const json& in = j["interpolation"];
    r.onlyKeys(in, "interpolation", {"voxel_mm", "image", "mask_threshold", "round"});
    if (in.contains("voxel_mm")) {
      const json& v = in["voxel_mm"];
      if (!v.is_array() || v.size() != 3)
        r.fail("interpolation.voxel_mm", "must be [x, y, z] (0 keeps an axis)");
      for (std::size_t a = 0; a < 3; ++a)
        s.resampling.voxel_mm[a] = r.number(v[a], "interpolation.voxel_mm", 0, 50);
    }
    if (in.contains("image"))
      s.resampling.image = interpolationFromString(
          r.oneOf(in["image"], "interpolation.image", {"trilinear", "bspline", "nearest"}));
    if (in.contains("mask_threshold"))
      s.resampling.mask_threshold = r.number(in["mask_threshold"], "interpolation.mask_threshold", 0.01, 1);
    if (in.contains("round")) {
      if (!in["round"].is_boolean()) r.fail("interpolation.round", "must be true or false");
      s.resampling.round_intensities = in["round"].get<bool>();
    }
  }
  if (j.contains("resegmentation")) {
    const json& rs = j["resegmentation"];
    r.onlyKeys(rs, "resegmentation", {"min_hu", "max_hu", "outlier_sigma"});
    if (rs.contains("min_hu") && !rs["min_hu"].is_null())
      s.reseg_min = r.number(rs["min_hu"], "resegmentation.min_hu", -1e5, 1e5);
    if (rs.contains("max_hu") && !rs["max_hu"].is_null())
      s.reseg_max = r.number(rs["max_hu"], "resegmentation.max_hu", -1e5, 1e5);
    if (rs.contains("outlier_sigma"))
      s.outlier_sigma = r.number(rs["outlier_sigma"], "resegmentation.outlier_sigma", 0, 100);
    if (!std::isnan(s.reseg_min) && !std::isnan(s.reseg_max) && s.reseg_min >= s.reseg_max)
      r.fail("resegmentation", "min_hu must be below max_hu");
  }
  if (j.contains("discretisation")) r.discretisation(j["discretisation"], "discretisation", s);
  if (j.contains("ivh_discretisation")) {
    Settings t;
    t.discretisation = Discretisation::none;
    t.bin_width = s.ivh.bin_width;
    t.bin_count = s.ivh.bin_count;
    r.discretisation(j["ivh_discretisation"], "ivh_discretisation", t);
    s.ivh.own = true;
    s.ivh.method = t.discretisation;
    s.ivh.bin_width = t.bin_width;
    s.ivh.bin_count = t.bin_count;
  }
  c.filtered_settings = s;
  c.filtered_settings.reseg_min = c.filtered_settings.reseg_max = std::numeric_limits<double>::quiet_NaN();
  c.filtered_settings.outlier_sigma = 0;
  if (j.contains("filtered_discretisation"))
    r.discretisation(j["filtered_discretisation"], "filtered_discretisation", c.filtered_settings);
  if (j.contains("boundary"))
    c.boundary = boundaryFromString(r.oneOf(j["boundary"], "boundary", {"mirror", "nearest", "zero"}));
  if (j.contains("families")) c.families = r.list(j["families"], "families", familyNames());
  if (j.contains("aggregations"))
    c.aggregations = r.list(j["aggregations"], "aggregations", aggregationNames());
  if (j.contains("images")) {
    const json& ims = j["images"];
    if (!ims.is_array() || ims.empty()) r.fail("images", "must be a non-empty list");
    c.images.clear();
    for (std::size_t k = 0; k < ims.size(); ++k) {
      const std::string key = "images[" + std::to_string(k) + "]";
      const json& im = ims[k];
      r.onlyKeys(im, key, {"type", "sigma_mm", "wavelet", "level", "subbands"});
      if (!im.contains("type")) r.fail(key, "needs \"type\" (original, log or wavelet)");
      const std::string type = r.oneOf(im["type"], key + ".type", {"original", "log", "wavelet"});
      if (type == "original") {
        c.images.push_back({});
      } else if (type == "log") {
        if (!im.contains("sigma_mm")) r.fail(key, "a log image needs sigma_mm (a number or a list, mm)");
        const json sig = im["sigma_mm"].is_array() ? im["sigma_mm"] : json::array({im["sigma_mm"]});
        for (const auto& sv : sig) {
          ImageSpec spec;
          spec.kind = ImageSpec::Kind::log;
          spec.sigma_mm = r.number(sv, key + ".sigma_mm", 0.1, 50);
          c.images.push_back(spec);
        }
      } else {
        if (!im.contains("wavelet")) r.fail(key, "a wavelet image needs \"wavelet\" (e.g. coif1)");
        const std::string w = r.oneOf(im["wavelet"], key + ".wavelet", waveletNames());
        const int level = im.contains("level") ? int(r.number(im["level"], key + ".level", 1, 4)) : 1;
        std::vector<std::string> bands = subbandNames();
        if (im.contains("subbands") && im["subbands"] != "all")
          bands = r.list(im["subbands"], key + ".subbands", subbandNames());
        for (const auto& b : bands) {
          ImageSpec spec;
          spec.kind = ImageSpec::Kind::wavelet;
          spec.wavelet = w;
          spec.level = level;
          spec.subband = b;
          c.images.push_back(spec);
        }
      }
    }
  }
  return c;
}

nlohmann::json toJson(const FeatureConfig& c) {
  auto orNull = [](double v) { return std::isnan(v) ? json() : json(v); };
  auto disc = [](const Settings& s) {
    json d = {{"method", toString(s.discretisation)}};
    if (s.discretisation == Discretisation::fixed_bin_size) d["bin_width"] = s.bin_width;
    if (s.discretisation == Discretisation::fixed_bin_number) d["bin_count"] = s.bin_count;
    return d;
  };
  const Settings& s = c.settings;
  json images = json::array();
  for (const auto& im : c.images) {
    switch (im.kind) {
      case ImageSpec::Kind::original:
        images.push_back({{"type", "original"}});
        break;
      case ImageSpec::Kind::log:
        images.push_back({{"type", "log"}, {"sigma_mm", im.sigma_mm}});
        break;
      case ImageSpec::Kind::wavelet:
        images.push_back(
            {{"type", "wavelet"}, {"wavelet", im.wavelet}, {"level", im.level}, {"subbands", {im.subband}}});
        break;
    }
  }
  json out = {{"schema", "ctbmd.radiomics-config"},
              {"name", c.name},
              {"interpolation",
               {{"voxel_mm", s.resampling.voxel_mm},
                {"image", toString(s.resampling.image)},
                {"mask_threshold", s.resampling.mask_threshold},
                {"round", s.resampling.round_intensities}}},
              {"resegmentation",
               {{"min_hu", orNull(s.reseg_min)},
                {"max_hu", orNull(s.reseg_max)},
                {"outlier_sigma", s.outlier_sigma}}},
              {"discretisation", disc(s)},
              {"filtered_discretisation", disc(c.filtered_settings)},
              {"boundary", toString(c.boundary)},
              {"images", images}};
  if (s.ivh.own) {
    Settings t;
    t.discretisation = s.ivh.method;
    t.bin_width = s.ivh.bin_width;
    t.bin_count = s.ivh.bin_count;
    out["ivh_discretisation"] = disc(t);
  }
  if (!c.families.empty()) out["families"] = c.families;
  if (!c.aggregations.empty()) out["aggregations"] = c.aggregations;
  return out;
}

}  // namespace ctbmd::radiomics
