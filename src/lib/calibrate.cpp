// HU -> BMD calibration: phantom rods, paired data, internal reference tissues.
#include "ctbmd/calibrate.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "internal/raster2d.hpp"

namespace ctbmd {

using nlohmann::json;
namespace fs = std::filesystem;

// ---- JSON ----------------------------------------------------------------------------------
json CalibrationFit::toJson() const {
  const auto& f = fit;
  json pts = json::array();
  for (const auto& p : points) {
    json e = {{"name", p.name},     {"hu", p.hu},    {"hu_sd", p.hu_sd}, {"density_mg_cm3", p.density},
              {"voxels", p.voxels}, {"used", p.used}};
    if (!p.note.empty()) e["note"] = p.note;
    if (p.center_mm != std::array<double, 3>{0, 0, 0}) e["center_mm"] = p.center_mm;
    if (p.used && f.weights.size() == points.size()) e["weight"] = f.weights[&p - points.data()];
    pts.push_back(e);
  }
  long used = 0;
  for (const auto& p : points) used += p.used;
  json j = {{"calibrated", true},
            {"source_kind", source},
            {"material", material},
            {"model", "BMD[mg/cm3] = intercept + slope * HU"},
            {"intercept", f.intercept},
            {"slope", f.slope},
            {"intercept_se", f.intercept_se},
            {"slope_se", f.slope_se},
            {"covariance_intercept_slope", f.cov},
            {"intercept_ci95", f.intercept_ci95},
            {"slope_ci95", f.slope_ci95},
            {"r2", f.r2},
            {"residual_sd_mg_cm3", f.residual_sd},
            {"fit", {{"method", f.method}, {"n", used}, {"df", f.df}}},
            {"points", pts},
            {"valid_for", valid_for},
            {"details", details},
            {"warnings", warnings}};
  if (f.method == "huber") {
    j["fit"]["huber_k"] = f.huber_k;
    j["fit"]["scale"] = f.scale;
    j["fit"]["iterations"] = f.iterations;
  }
  return j;
}

json scanValidity(const ScanInfo& info) {
  json v = json::object();
  if (!info.kvp.empty()) v["kvp"] = info.kvp;
  if (!info.kernel.empty()) v["kernel"] = info.kernel;
  if (!info.manufacturer.empty() || !info.model.empty())
    v["scanner"] = info.manufacturer + (info.model.empty() ? "" : " " + info.model);
  if (v.empty())
    v["note"] = "scan parameters unknown (not DICOM): apply only to scans from the same scanner and protocol";
  return v;
}

std::vector<std::string> calibrationMismatch(const Calibration& cal, const json& scan_ct) {
  std::vector<std::string> w;
  if (!cal.calibrated || !cal.valid_for.is_object()) return w;
  for (const char* key : {"kvp", "kernel"}) {
    if (!cal.valid_for.contains(key) || !scan_ct.contains(key)) continue;
    std::string a = cal.valid_for[key].get<std::string>(), b = scan_ct[key].get<std::string>();
    if (!a.empty() && !b.empty() && a != b)
      w.push_back(std::string("calibration was made at ") + key + " " + a + " but this scan has " + b +
                  ": BMD may be biased");
  }
  return w;
}

// ---- phantom definitions ---------------------------------------------------------------------
PhantomDefinition PhantomDefinition::fromJson(const json& j, const std::string& where) {
  PhantomDefinition d;
  try {
    d.name = j.value("name", fs::path(where).stem().string());
    d.material = j.at("material").get<std::string>();
    d.description = j.value("description", "");
    d.source = j.value("source", "");
    d.rod_diameter_mm = j.at("rod_diameter_mm").get<double>();
    for (const auto& r : j.at("rods"))
      d.rods.push_back({r.at("name").get<std::string>(), r.at("density_mg_cm3").get<double>()});
  } catch (const json::exception& e) {
    throw InputError(
        "phantom definition '" + where +
        "' needs material, rod_diameter_mm and rods [{name, density_mg_cm3}]: " + jsonProblem(e));
  }
  if (d.material != "hydroxyapatite" && d.material != "K2HPO4")
    throw InputError("phantom definition '" + where + "': material must be hydroxyapatite or K2HPO4");
  if (d.rods.size() < 2) throw InputError("phantom definition '" + where + "' needs at least two rods");
  if (!(d.rod_diameter_mm >= 4 && d.rod_diameter_mm <= 60))
    throw InputError("phantom definition '" + where + "': rod_diameter_mm must be 4-60");
  std::vector<double> dens;
  for (const auto& r : d.rods) dens.push_back(r.density);
  std::sort(dens.begin(), dens.end());
  if (std::adjacent_find(dens.begin(), dens.end()) != dens.end())
    throw InputError("phantom definition '" + where + "': two rods have the same density");
  return d;
}

json PhantomDefinition::toJson() const {
  json rods_j = json::array();
  for (const auto& r : rods) rods_j.push_back({{"name", r.name}, {"density_mg_cm3", r.density}});
  return {{"name", name},
          {"material", material},
          {"description", description},
          {"source", source},
          {"rod_diameter_mm", rod_diameter_mm},
          {"rods", rods_j}};
}

std::vector<std::string> PhantomDefinition::builtinNames() { return {"esp-ha", "k2hpo4-5rod"}; }

PhantomDefinition PhantomDefinition::builtin(const std::string& name) {
  if (name == "esp-ha")
    return fromJson(
        {{"name", "esp-ha"},
         {"material", "hydroxyapatite"},
         {"description",
          "ESP-like hydroxyapatite phantom: three inserts of 50, 100 and 200 mg/cm3 HA in water-equivalent "
          "resin, modelled as 16 mm rods along the table"},
         {"source",
          "nominal densities of the European Spine Phantom (Kalender et al., Eur J Radiol 1995;20:83-92); "
          "use the values on your phantom's certificate"},
         {"rod_diameter_mm", 16.0},
         {"rods", json::array({{{"name", "HA50"}, {"density_mg_cm3", 50.0}},
                               {{"name", "HA100"}, {"density_mg_cm3", 100.0}},
                               {{"name", "HA200"}, {"density_mg_cm3", 200.0}}})}},
        name);
  if (name == "k2hpo4-5rod")
    return fromJson(
        {{"name", "k2hpo4-5rod"},
         {"material", "K2HPO4"},
         {"description", "five-rod dipotassium hydrogen phosphate (K2HPO4) solution phantom, 16 mm rods"},
         {"source",
          "generic nominal concentrations; every K2HPO4 phantom has its own certified values: copy this "
          "definition (ctbmd-calibrate rods --print-definition k2hpo4-5rod) and edit density_mg_cm3"},
         {"rod_diameter_mm", 16.0},
         {"rods", json::array({{{"name", "A"}, {"density_mg_cm3", 25.0}},
                               {{"name", "B"}, {"density_mg_cm3", 50.0}},
                               {{"name", "C"}, {"density_mg_cm3", 100.0}},
                               {{"name", "D"}, {"density_mg_cm3", 150.0}},
                               {{"name", "E"}, {"density_mg_cm3", 250.0}}})}},
        name);
  std::string names;
  for (const auto& n : builtinNames()) names += (names.empty() ? "" : ", ") + n;
  throw UsageError("unknown phantom definition '" + name + "' (built in: " + names + "; or a JSON file)");
}

PhantomDefinition PhantomDefinition::load(const std::string& name_or_path) {
  auto names = builtinNames();
  if (std::find(names.begin(), names.end(), name_or_path) != names.end()) return builtin(name_or_path);
  if (!fs::exists(name_or_path))
    throw InputError("phantom definition '" + name_or_path + "' is neither a built-in name nor a file");
  return fromJson(readJsonFile(name_or_path), name_or_path);
}

// ---- reference tissues -----------------------------------------------------------------------
const ReferenceTissue* TissueTable::find(const std::string& name) const {
  for (const auto& t : tissues)
    if (t.name == name) return &t;
  return nullptr;
}

TissueTable TissueTable::builtin() {
  TissueTable t;
  t.material = "hydroxyapatite";
  t.source =
      "Equivalent densities are the HA densities a reference 120 kVp scanner with the calibration "
      "BMD = 0.8 * HU assigns to typical tissue CT numbers (air -1000, subcutaneous fat -100, paraspinal "
      "muscle +50, unenhanced aortic blood +40 HU). Internal calibration with air, fat, muscle and blood "
      "follows Boden et al., J Comput Assist Tomogr 1989;13:1026 and Michalski et al., Med Eng Phys "
      "2020;78:55-63; phantomless air/blood calibration: Lee et al., Bone 2017;103:325-333. The table "
      "corrects a scanner's HU scale against typical tissues; for best accuracy replace the densities "
      "with values measured against a phantom on your scanner (--tissues FILE).";
  t.tissues = {{"air", -800.0, {-1100, -900}, "air outside the body, away from skin, table and padding"},
               {"fat", -80.0, {-150, -50}, "subcutaneous fat, 2-15 mm under the skin"},
               {"muscle", 40.0, {15, 85}, "paraspinal (erector spinae) muscle beside the spinous processes"},
               {"blood",
                32.0,
                {20, 65},
                "blood in the abdominal aorta; unenhanced scans only (contrast fails the range)"}};
  return t;
}

TissueTable TissueTable::fromJson(const json& j, const std::string& where) {
  TissueTable t;
  try {
    t.material = j.at("material").get<std::string>();
    t.source = j.value("source", "");
    for (const auto& e : j.at("tissues"))
      t.tissues.push_back({e.at("name").get<std::string>(), e.at("density_mg_cm3").get<double>(),
                           e.at("hu_range").get<std::array<double, 2>>(), e.value("description", "")});
  } catch (const json::exception& e) {
    throw InputError("tissue table '" + where +
                     "' needs material and tissues [{name, density_mg_cm3, hu_range}]: " + jsonProblem(e));
  }
  for (const auto& x : t.tissues)
    if (x.name != "air" && x.name != "fat" && x.name != "muscle" && x.name != "blood")
      throw InputError("tissue table '" + where + "': unknown tissue '" + x.name +
                       "' (known: air, fat, muscle, blood)");
  return t;
}

json TissueTable::toJson() const {
  json a = json::array();
  for (const auto& x : tissues)
    a.push_back({{"name", x.name},
                 {"density_mg_cm3", x.density},
                 {"hu_range", x.hu_range},
                 {"description", x.description}});
  return {{"material", material}, {"source", source}, {"tissues", a}};
}

// ---- helpers on the canonical volume --------------------------------------------------------------
namespace {

struct Vol {
  const int16_t* v = nullptr;
  int nx = 0, ny = 0, nz = 0;
  double sx = 1, sy = 1, sz = 1;
  const itk::Image<int16_t, 3>* img = nullptr;
  size_t at(int i, int j, int k) const {
    return (static_cast<size_t>(k) * ny + static_cast<size_t>(j)) * nx + static_cast<size_t>(i);
  }
  std::array<double, 3> phys(double i, double j, double k) const {
    itk::ContinuousIndex<double, 3> ci;
    ci[0] = i;
    ci[1] = j;
    ci[2] = k;
    itk::Point<double, 3> p;
    img->TransformContinuousIndexToPhysicalPoint(ci, p);
    return {p[0], p[1], p[2]};
  }
  std::array<double, 3> index(const std::array<double, 3>& mm) const {
    itk::Point<double, 3> p;
    for (int a = 0; a < 3; ++a) p[a] = mm[a];
    itk::ContinuousIndex<double, 3> ci;
    img->TransformPhysicalPointToContinuousIndex(p, ci);
    return {ci[0], ci[1], ci[2]};
  }
};

Vol volOf(const Scan& scan) {
  const auto& cc = canonicalOf(scan);
  Vol v;
  v.img = cc.image.GetPointer();
  v.v = cc.image->GetBufferPointer();
  auto sz = cc.image->GetLargestPossibleRegion().GetSize();
  auto sp = cc.image->GetSpacing();
  v.nx = static_cast<int>(sz[0]);
  v.ny = static_cast<int>(sz[1]);
  v.nz = static_cast<int>(sz[2]);
  v.sx = sp[0];
  v.sy = sp[1];
  v.sz = sp[2];
  return v;
}

// Summed-area table for box means and variances on a 2-D float image.
struct Integral {
  int nx = 0, ny = 0;
  std::vector<double> s, s2;  // (nx+1) x (ny+1)
  explicit Integral(const std::vector<float>& img, int nx_, int ny_) : nx(nx_), ny(ny_) {
    s.assign(static_cast<size_t>(nx + 1) * (ny + 1), 0.0);
    s2 = s;
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i) {
        double v = img[static_cast<size_t>(j) * nx + i];
        size_t o = static_cast<size_t>(j + 1) * (nx + 1) + (i + 1);
        s[o] = v + s[o - 1] + s[o - (nx + 1)] - s[o - (nx + 1) - 1];
        s2[o] = v * v + s2[o - 1] + s2[o - (nx + 1)] - s2[o - (nx + 1) - 1];
      }
  }
  // Sums over [i0, i1] x [j0, j1] (inclusive, clipped).
  void box(int i0, int i1, int j0, int j1, double& sum, double& sum2, double& n) const {
    i0 = std::max(i0, 0);
    j0 = std::max(j0, 0);
    i1 = std::min(i1, nx - 1);
    j1 = std::min(j1, ny - 1);
    if (i1 < i0 || j1 < j0) {
      sum = sum2 = n = 0;
      return;
    }
    auto S = [&](const std::vector<double>& t, int i, int j) {
      return t[static_cast<size_t>(j) * (nx + 1) + i];
    };
    sum = S(s, i1 + 1, j1 + 1) - S(s, i0, j1 + 1) - S(s, i1 + 1, j0) + S(s, i0, j0);
    sum2 = S(s2, i1 + 1, j1 + 1) - S(s2, i0, j1 + 1) - S(s2, i1 + 1, j0) + S(s2, i0, j0);
    n = static_cast<double>(i1 - i0 + 1) * (j1 - j0 + 1);
  }
};

struct Disk {
  double i = 0, j = 0;  // pixel centre
  double inner = 0, inner_sd = 0, ring = 0, ring_sd = 0, score = 0;
};

// Uniform disks of radius r_mm that differ from a uniform ring around them (box approximations:
// inner square of half-width 0.55 r, ring between squares of half-widths 1.25 r and 1.8 r).
std::vector<Disk> findDisks(const std::vector<float>& img, int nx, int ny, double sx, double sy, double r_mm,
                            double min_contrast, double max_inner_sd, const std::vector<uint8_t>* allowed,
                            double inner_min, double inner_max, double max_ring_sd) {
  Integral I(img, nx, ny);
  int hi_x = std::max(1, static_cast<int>(std::lround(0.55 * r_mm / sx)));
  int hi_y = std::max(1, static_cast<int>(std::lround(0.55 * r_mm / sy)));
  int hm_x = static_cast<int>(std::lround(1.25 * r_mm / sx)),
      hm_y = static_cast<int>(std::lround(1.25 * r_mm / sy));
  int ho_x = static_cast<int>(std::lround(1.8 * r_mm / sx)),
      ho_y = static_cast<int>(std::lround(1.8 * r_mm / sy));
  std::vector<Disk> cand;
  for (int j = ho_y; j < ny - ho_y; ++j)
    for (int i = ho_x; i < nx - ho_x; ++i) {
      if (allowed && !(*allowed)[static_cast<size_t>(j) * nx + i]) continue;
      double s, s2, n;
      I.box(i - hi_x, i + hi_x, j - hi_y, j + hi_y, s, s2, n);
      double m = s / n, var = std::max(0.0, s2 / n - m * m);
      if (m < inner_min || m > inner_max || std::sqrt(var) > max_inner_sd) continue;
      double so, so2, no, sm, sm2, nm;
      I.box(i - ho_x, i + ho_x, j - ho_y, j + ho_y, so, so2, no);
      I.box(i - hm_x, i + hm_x, j - hm_y, j + hm_y, sm, sm2, nm);
      double rn = no - nm;
      if (rn <= 0) continue;
      double rm = (so - sm) / rn, rvar = std::max(0.0, (so2 - sm2) / rn - rm * rm);
      double contrast = m - rm;
      if (std::abs(contrast) < min_contrast || std::sqrt(rvar) > max_ring_sd) continue;
      Disk d;
      d.i = i;
      d.j = j;
      d.inner = m;
      d.inner_sd = std::sqrt(var);
      d.ring = rm;
      d.ring_sd = std::sqrt(rvar);
      d.score = std::abs(contrast) / (d.inner_sd + 2.0) / (1.0 + d.ring_sd / 50.0);
      cand.push_back(d);
    }
  std::sort(cand.begin(), cand.end(), [](const Disk& a, const Disk& b) { return a.score > b.score; });
  std::vector<Disk> kept;
  double sep2 = std::pow(1.8 * r_mm, 2);
  for (const auto& c : cand) {
    bool near = false;
    for (const auto& k : kept)
      if (std::pow((c.i - k.i) * sx, 2) + std::pow((c.j - k.j) * sy, 2) < sep2) {
        near = true;
        break;
      }
    if (!near) kept.push_back(c);
    if (kept.size() >= 80) break;
  }
  return kept;
}

}  // namespace

// ---- rods ------------------------------------------------------------------------------------------
CalibrationFit calibrateRods(const Scan& scan, const PhantomDefinition& def, const RodParams& p) {
  Vol V = volOf(scan);
  const size_t n2 = static_cast<size_t>(V.nx) * V.ny;
  // Rods are the same in every slice: average the central 80 % of the slices (noise / sqrt(n),
  // anatomy blurs) and find uniform disks of the rod's radius that stand out from their ring.
  int k0 = static_cast<int>(0.1 * V.nz), k1 = std::max(k0 + 1, static_cast<int>(std::ceil(0.9 * V.nz)));
  std::vector<float> M(n2, 0.0f);
  for (int k = k0; k < k1; ++k)
    for (size_t q = 0; q < n2; ++q) M[q] += V.v[static_cast<size_t>(k) * n2 + q];
  for (auto& x : M) x /= static_cast<float>(k1 - k0);
  double r = def.rod_diameter_mm / 2;
  if (r < 2.5 * std::max(V.sx, V.sy))
    throw InputError("rods of " + std::to_string(def.rod_diameter_mm) + " mm are too small for " +
                     std::to_string(V.sx) + " mm pixels in " + scan.info.path.string());
  // Rods are solid material (not air, not metal) embedded in a uniform housing.
  auto cands = findDisks(M, V.nx, V.ny, V.sx, V.sy, r, p.min_contrast_hu, 12.0, nullptr, -300, 2000, 20.0);
  const size_t n = def.rods.size();
  // The rods lie on a line (the phantom lies flat along the table): the best group of n
  // candidates within 0.5 r of a line through two of them, spaced at least a diameter apart.
  std::vector<size_t> best;
  double best_score = -1;
  for (size_t a = 0; a < cands.size(); ++a)
    for (size_t b = a + 1; b < cands.size(); ++b) {
      double dx = (cands[b].i - cands[a].i) * V.sx, dy = (cands[b].j - cands[a].j) * V.sy;
      double len = std::hypot(dx, dy);
      if (len < 2 * r) continue;
      std::vector<size_t> g;
      for (size_t c = 0; c < cands.size(); ++c) {
        double ex = (cands[c].i - cands[a].i) * V.sx, ey = (cands[c].j - cands[a].j) * V.sy;
        if (std::abs(ex * dy - ey * dx) / len < 0.5 * r) g.push_back(c);
      }
      if (g.size() < n) continue;
      std::sort(g.begin(), g.end(), [&](size_t u, size_t v) { return cands[u].score > cands[v].score; });
      g.resize(n);
      double sc = 0;
      for (size_t c : g) sc += cands[c].score;
      if (sc > best_score) {
        best_score = sc;
        best = g;
      }
    }
  if (best.empty())
    throw ProcessingError(
        "found no line of " + std::to_string(n) + " rods of " + std::to_string(def.rod_diameter_mm) +
        " mm (definition '" + def.name + "') in " + scan.info.path.string() + " (" +
        std::to_string(cands.size()) +
        " uniform disks seen). Check the definition's rod count and diameter; rods within " +
        std::to_string(p.min_contrast_hu) +
        " HU of the surrounding material cannot be seen: leave them out of the definition");
  // Measure each rod slice by slice in a disk of roi_radius_frac * r.
  CalibrationFit out;
  out.source = "rods";
  out.material = def.material;
  double rr = p.roi_radius_frac * r;
  std::vector<CalibrationPoint> pts;
  for (size_t c : best) {
    const Disk& d = cands[c];
    std::vector<double> slice_means;
    long vox = 0;
    for (int k = k0; k < k1; ++k) {
      double s = 0;
      long cnt = 0;
      for (int j = static_cast<int>(d.j - rr / V.sy) - 1; j <= static_cast<int>(d.j + rr / V.sy) + 1; ++j)
        for (int i = static_cast<int>(d.i - rr / V.sx) - 1; i <= static_cast<int>(d.i + rr / V.sx) + 1; ++i) {
          if (i < 0 || j < 0 || i >= V.nx || j >= V.ny) continue;
          if (std::pow((i - d.i) * V.sx, 2) + std::pow((j - d.j) * V.sy, 2) > rr * rr) continue;
          s += V.v[V.at(i, j, k)];
          ++cnt;
        }
      if (cnt) slice_means.push_back(s / cnt);
      vox += cnt;
    }
    CalibrationPoint pt;
    pt.hu = stats::median(slice_means);
    pt.hu_sd = slice_means.size() > 1 ? stats::sd(slice_means) : 0.0;
    pt.voxels = vox;
    pt.center_mm = V.phys(d.i, d.j, 0.5 * (k0 + k1 - 1));
    pts.push_back(pt);
  }
  // Pair by order: density rises with HU.
  std::sort(pts.begin(), pts.end(), [](const auto& a, const auto& b) { return a.hu < b.hu; });
  auto rods = def.rods;
  std::sort(rods.begin(), rods.end(), [](const auto& a, const auto& b) { return a.density < b.density; });
  std::vector<double> x, y;
  for (size_t i = 0; i < n; ++i) {
    pts[i].name = rods[i].name;
    pts[i].density = rods[i].density;
    x.push_back(pts[i].hu);
    y.push_back(pts[i].density);
  }
  out.points = pts;
  out.fit = stats::fitOls(x, y);
  out.valid_for = scanValidity(scan.info);
  out.details = {{"phantom", def.toJson()},
                 {"roi", "disk of " + std::to_string(p.roi_radius_frac) +
                             " x rod radius; median of per-slice means over the central 80 % of slices"},
                 {"slices_used", {k0, k1 - 1}},
                 {"pairing", "rods sorted by HU paired with densities sorted ascending"}};
  // What was found must behave like rods of the given densities: a tight line with a plausible
  // slope. Otherwise the disks were something else (anatomy, table) and nothing is written.
  std::string where;
  for (const auto& pt : pts)
    where += "\n  " + pt.name + ": " + std::to_string(static_cast<int>(std::lround(pt.hu))) + " HU at (" +
             std::to_string(static_cast<int>(pt.center_mm[0])) + ", " +
             std::to_string(static_cast<int>(pt.center_mm[1])) + ") mm";
  if (!(out.fit.slope > 0.3 && out.fit.slope < 2.0) || out.fit.r2 < 0.98)
    throw ProcessingError(
        "no calibration phantom '" + def.name + "' found in " + scan.info.path.string() +
        ": the best line of disks does not behave like its rods (R^2 " + std::to_string(out.fit.r2) +
        ", slope " + std::to_string(out.fit.slope) + " mg/cm3 per HU):" + where +
        "\nCheck the phantom definition (rod count, diameter, densities) or use another source.");
  if (out.fit.r2 < 0.995)
    out.warnings.push_back("rod fit R^2 = " + std::to_string(out.fit.r2) +
                           " < 0.995: check that the right rods were found (see points[].center_mm)");
  for (const auto& pt : pts)
    if (pt.hu_sd > 15)
      out.warnings.push_back("rod " + pt.name + " varies by " + std::to_string(pt.hu_sd) +
                             " HU SD between slices: it may not span the whole scan");
  return out;
}

// ---- paired data ------------------------------------------------------------------------------------
std::vector<PairedRow> readPairedCsv(const fs::path& path) {
  CsvTable t = readCsv(path);
  int c_case = t.column({"case_id", "case"}), c_level = t.column({"level"});
  int c_hu = t.column({"hu", "hu_mean", "mean_hu"});
  int c_bmd = t.column({"bmd", "reference_bmd", "qct_bmd", "bmd_mg_cm3"});
  if (c_hu < 0 || c_bmd < 0)
    throw InputError("paired-data CSV '" + path.string() +
                     "' needs a header with columns 'hu' and 'bmd' (optional: case, level)");
  std::vector<PairedRow> rows;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    PairedRow r;
    r.case_id = t.cell(i, c_case);
    r.level = t.cell(i, c_level);
    try {
      r.hu = std::stod(t.cell(i, c_hu));
      r.bmd = std::stod(t.cell(i, c_bmd));
    } catch (const std::exception&) {
      throw InputError("paired-data CSV '" + path.string() + "' line " + std::to_string(t.line_numbers[i]) +
                       ": hu and bmd must be numbers");
    }
    rows.push_back(r);
  }
  if (rows.size() < 3)
    throw InputError("paired-data CSV '" + path.string() + "' has " + std::to_string(rows.size()) +
                     " rows; a calibration needs at least 3");
  return rows;
}

CalibrationFit calibratePaired(const std::vector<PairedRow>& rows, const std::string& method,
                               const std::string& material, double huber_k) {
  if (method != "ols" && method != "huber") throw UsageError("--fit must be ols or huber");
  if (material != "hydroxyapatite" && material != "K2HPO4")
    throw UsageError("--material must be hydroxyapatite or K2HPO4");
  std::vector<double> x, y;
  CalibrationFit out;
  out.source = "paired";
  out.material = material;
  for (const auto& r : rows) {
    x.push_back(r.hu);
    y.push_back(r.bmd);
    CalibrationPoint p;
    p.name = r.case_id + (r.level.empty() ? "" : "/" + r.level);
    p.hu = r.hu;
    p.density = r.bmd;
    out.points.push_back(p);
  }
  try {
    out.fit = method == "ols" ? stats::fitOls(x, y) : stats::fitHuber(x, y, huber_k);
  } catch (const std::invalid_argument& e) {
    throw InputError(std::string("paired data cannot be fitted: ") + e.what());
  }
  if (method == "huber")
    for (size_t i = 0; i < out.points.size(); ++i)
      if (out.fit.weights[i] < 1) out.points[i].note = "down-weighted (huber)";
  out.valid_for = {{"note", "the scanner and protocol of the paired cases"}};
  out.details = {{"regression", "reference BMD on measured HU"}};
  if (!(out.fit.slope > 0)) throw ProcessingError("paired data give a non-positive slope; check the columns");
  return out;
}

// A vessel in canonical slice `s`: the most disk-like uniform region of one of `radii` (mm),
// -20..700 HU and brighter than its ring, centred in the box [i0, i1] x [j0, j1] (pixels,
// clipped). Appends the HU of its inner 5 mm disk to `vals`; false when the box is empty or
// holds no such region.
bool vesselInBox(const Vol& V, const int16_t* s, int i0, int i1, int j0, int j1,
                 std::initializer_list<double> radii, std::vector<double>& vals, double& bi, double& bj) {
  i0 = std::max(i0, 0);
  j0 = std::max(j0, 0);
  i1 = std::min(i1, V.nx - 1);
  j1 = std::min(j1, V.ny - 1);
  if (i1 < i0 || j1 < j0) return false;
  const size_t n2 = static_cast<size_t>(V.nx) * V.ny;
  std::vector<float> img(s, s + n2);
  std::vector<uint8_t> allowed(n2, 0);
  for (int j = j0; j <= j1; ++j)
    for (int i = i0; i <= i1; ++i) allowed[static_cast<size_t>(j) * V.nx + i] = 1;
  std::vector<Disk> best;
  for (double rad : radii) {
    auto d = findDisks(img, V.nx, V.ny, V.sx, V.sy, rad, 25.0, 40.0, &allowed, -20, 700, 1e9);
    for (const auto& x : d)
      if (x.inner > x.ring) best.push_back(x);
  }
  if (best.empty()) return false;
  auto b = *std::max_element(best.begin(), best.end(),
                             [](const Disk& u, const Disk& v) { return u.score < v.score; });
  for (int j = static_cast<int>(b.j - 5 / V.sy); j <= static_cast<int>(b.j + 5 / V.sy); ++j)
    for (int i = static_cast<int>(b.i - 5 / V.sx); i <= static_cast<int>(b.i + 5 / V.sx); ++i)
      if (i >= 0 && j >= 0 && i < V.nx && j < V.ny &&
          std::pow((i - b.i) * V.sx, 2) + std::pow((j - b.j) * V.sy, 2) <= 25.0)
        vals.push_back(s[V.at(i, j, 0)]);
  bi = b.i;
  bj = b.j;
  return true;
}

// The aorta in one canonical slice: a vessel of radius 8-12 mm 15-80 mm in front of the spine
// centre (ci, cj), from 35 mm right to 55 mm left of it.
bool aortaInSlice(const Vol& V, const int16_t* s, double ci, double cj, std::vector<double>& vals, double& bi,
                  double& bj) {
  return vesselInBox(V, s, static_cast<int>(ci - 35 / V.sx), static_cast<int>(ci + 55 / V.sx),
                     static_cast<int>(cj - 80 / V.sy), static_cast<int>(cj - 15 / V.sy), {8.0, 10.0, 12.0},
                     vals, bi, bj);
}

// The inferior vena cava: a vessel of radius 7-10 mm (fat around it) 15-50 mm to the patient's
// right of the aorta centre (ai, aj), from 20 mm in front of it to 25 mm behind. In the arterial
// phase the infrarenal IVC is still unenhanced.
bool ivcInSlice(const Vol& V, const int16_t* s, double ai, double aj, std::vector<double>& vals) {
  double bi = 0, bj = 0;
  return vesselInBox(V, s, static_cast<int>(ai - 50 / V.sx), static_cast<int>(ai - 15 / V.sx),
                     static_cast<int>(aj - 20 / V.sy), static_cast<int>(aj + 25 / V.sy), {7.0, 8.5, 10.0},
                     vals, bi, bj);
}

AortaMeasure measureAorta(const Scan& scan, const LocalizeResult& loc) {
  AortaMeasure out;
  Vol V = volOf(scan);
  std::vector<std::array<double, 3>> cl;
  for (const auto& pnt : loc.centerline) cl.push_back(V.index(pnt));
  if (cl.empty()) return out;
  double klo = -1e9, khi = 1e9;  // L1..L3 when named: the aorta runs straight in front of them
  const LevelLocation* l1 = loc.find(kL1);
  const LevelLocation* l3 = loc.find(kL3);
  if (l1 && l1->status != LevelStatus::Missing && l3 && l3->status != LevelStatus::Missing) {
    const double a = V.index(l1->center_mm)[2], b = V.index(l3->center_mm)[2];
    klo = std::min(a, b) - 2;
    khi = std::max(a, b) + 2;
  }
  std::vector<double> vals, ivc;
  const int step = std::max(1, static_cast<int>(std::lround(3.0 / V.sz)));
  for (int k = 0; k < V.nz; k += step) {
    if (k < klo || k > khi) continue;
    double best = 1e30, ci = 0, cj = 0;
    for (const auto& c : cl)
      if (std::abs(c[2] - k) < best) {
        best = std::abs(c[2] - k);
        ci = c[0];
        cj = c[1];
      }
    if (best * V.sz >= 6) continue;
    double bi = 0, bj = 0;
    const int16_t* slice = V.v + static_cast<size_t>(k) * V.nx * V.ny;
    if (!aortaInSlice(V, slice, ci, cj, vals, bi, bj)) continue;
    ++out.slices;
    if (ivcInSlice(V, slice, bi, bj, ivc)) ++out.ivc_slices;
  }
  out.voxels = static_cast<long>(vals.size());
  if (out.voxels >= 50) out.hu = stats::median(vals);
  out.ivc_voxels = static_cast<long>(ivc.size());
  if (out.ivc_voxels >= 50 && out.ivc_slices >= 2) out.ivc_hu = stats::median(ivc);
  return out;
}

// ---- internal calibration -----------------------------------------------------------------------------
CalibrationFit calibrateInternal(const Scan& scan, const LocalizeResult& loc, const TissueTable& table,
                                 const InternalParams& p) {
  Vol V = volOf(scan);
  const std::string file = scan.info.path.string();
  r2::Grid2 g{V.nx, V.ny, V.sx, V.sy};
  const size_t n2 = g.size();
  // Slice range: the lumbar spine (T12..L5 centres), else the central half of the scan.
  int kmin = V.nz, kmax = -1;
  std::map<int, std::array<double, 3>> centre_idx;  // by label, canonical index
  for (const auto& l : loc.levels) {
    if (l.status == LevelStatus::Missing) continue;
    auto ci = V.index(l.center_mm);
    centre_idx[l.label] = ci;
    kmin = std::min(kmin, static_cast<int>(std::floor(ci[2])));
    kmax = std::max(kmax, static_cast<int>(std::ceil(ci[2])));
  }
  std::vector<std::string> warnings;
  bool have_spine = kmax >= kmin;
  if (!have_spine) {
    kmin = V.nz / 4;
    kmax = 3 * V.nz / 4;
    warnings.push_back("no lumbar level localized: muscle and blood are not measured");
  }
  kmin = std::clamp(kmin, 0, V.nz - 1);
  kmax = std::clamp(kmax, 0, V.nz - 1);
  // Spine centre per slice from the centreline (canonical index).
  std::vector<std::array<double, 3>> cl;
  for (const auto& pnt : loc.centerline) cl.push_back(V.index(pnt));
  auto spineAt = [&](int k, double& ci, double& cj) {
    double best = 1e30;
    bool ok = false;
    for (const auto& c : cl)
      if (std::abs(c[2] - k) < best) {
        best = std::abs(c[2] - k);
        ci = c[0];
        cj = c[1];
        ok = best * V.sz < 6;
      }
    return ok;
  };
  std::vector<double> air, fat, muscle, blood;
  std::array<double, 3> pos_blood{0, 0, 0};  // the aorta's median position (the other tissues are spread out)
  std::vector<double> blood_i, blood_j, blood_k;
  // Padding outside the reconstruction circle: a value repeated exactly across many pixels.
  std::map<int, long> outside_hist;
  int step = std::max(1, static_cast<int>(std::lround(3.0 / V.sz)));  // one slice per ~3 mm
  int l1k = centre_idx.count(kL1) ? static_cast<int>(centre_idx[kL1][2]) : -1;
  int l3k = centre_idx.count(kL3) ? static_cast<int>(centre_idx[kL3][2]) : -1;
  for (int k = kmin; k <= kmax; k += step) {
    const int16_t* s = V.v + static_cast<size_t>(k) * n2;
    std::vector<uint8_t> fg(n2);
    for (size_t q = 0; q < n2; ++q) fg[q] = s[q] > -500;
    std::vector<long> areas;
    auto comp = r2::components(g, fg, areas);
    long big = 0;
    for (size_t c = 1; c < areas.size(); ++c)
      if (areas[c] > areas[static_cast<size_t>(big)]) big = static_cast<long>(c);
    if (big == 0) continue;
    std::vector<uint8_t> body(n2), other(n2);
    for (size_t q = 0; q < n2; ++q) {
      body[q] = comp[q] == big;
      other[q] = comp[q] != 0 && comp[q] != big;
    }
    body = r2::fillHoles(g, body);
    auto near_body = r2::dilate(g, body, 15.0);
    auto near_other = r2::dilate(g, other, 10.0);
    // Air: outside the body, 15 mm from it and 10 mm from the table and anything else.
    for (size_t q = 0; q < n2; ++q)
      if (!near_body[q] && !near_other[q] && s[q] > -1500 && s[q] < -600) {
        air.push_back(s[q]);
        ++outside_hist[s[q]];
      }
    // Subcutaneous fat: 2-15 mm under the skin, fat-range voxels.
    auto d2 = r2::edtSquared(g, body);
    for (size_t q = 0; q < n2; ++q)
      if (body[q] && d2[q] >= 4.0f && d2[q] <= 225.0f && s[q] > -250 && s[q] < -20) fat.push_back(s[q]);
    double ci = 0, cj = 0;
    if (!have_spine || !spineAt(k, ci, cj)) continue;
    // Paraspinal muscle: 15-55 mm either side, 35-75 mm behind the body centre.
    for (int j = static_cast<int>(cj + 35 / V.sy); j <= static_cast<int>(cj + 75 / V.sy); ++j)
      for (int i = static_cast<int>(ci - 55 / V.sx); i <= static_cast<int>(ci + 55 / V.sx); ++i) {
        if (i < 0 || j < 0 || i >= V.nx || j >= V.ny) continue;
        if (std::abs(i - ci) * V.sx < 15) continue;
        size_t q = static_cast<size_t>(j) * V.nx + i;
        if (body[q] && s[q] > -20 && s[q] < 120) muscle.push_back(s[q]);
      }
    // Aorta: a round, uniform disk in front of the spine (between L1 and L3 when known).
    bool aorta_slice = (l1k < 0 || k <= l1k + 2) && (l3k < 0 || k >= l3k - 2);
    double bi = 0, bj = 0;
    if (aorta_slice && aortaInSlice(V, s, ci, cj, blood, bi, bj)) {
      blood_i.push_back(bi);
      blood_j.push_back(bj);
      blood_k.push_back(k);
    }
  }
  // Drop padding values (exactly repeated values at or below -1024 covering > 5 % of air).
  std::vector<std::string> notes;
  for (const auto& [val, cnt] : outside_hist)
    if (val <= -1024 && cnt > static_cast<long>(0.05 * air.size())) {
      air.erase(std::remove(air.begin(), air.end(), static_cast<double>(val)), air.end());
      notes.push_back("air: ignored padding value " + std::to_string(val));
    }
  if (!blood_k.empty())
    pos_blood = V.phys(stats::median(blood_i), stats::median(blood_j), stats::median(blood_k));
  CalibrationFit out;
  out.source = "internal";
  out.material = table.material;
  std::vector<double> x, y;
  auto add = [&](const std::string& name, std::vector<double>& v, const std::array<double, 3>& pos,
                 const std::string& extra) {
    const ReferenceTissue* t = table.find(name);
    if (!t) return;
    CalibrationPoint pt;
    pt.name = name;
    pt.density = t->density;
    pt.voxels = static_cast<long>(v.size());
    pt.center_mm = pos;
    if (pt.voxels < p.min_voxels) {
      pt.used = false;
      pt.note = "not found (" + std::to_string(pt.voxels) + " voxels)" + extra;
    } else {
      pt.hu = stats::median(v);
      // Robust spread: MAD scaled to an SD.
      std::vector<double> dev(v.size());
      for (size_t i = 0; i < v.size(); ++i) dev[i] = std::abs(v[i] - pt.hu);
      pt.hu_sd = 1.4826 * stats::median(dev);
      if (pt.hu < t->hu_range[0] || pt.hu > t->hu_range[1]) {
        pt.used = false;
        pt.note = "median " + std::to_string(static_cast<int>(std::lround(pt.hu))) +
                  " HU outside the plausible " + std::to_string(static_cast<int>(t->hu_range[0])) + ".." +
                  std::to_string(static_cast<int>(t->hu_range[1])) + " HU" +
                  (name == "blood" && pt.hu > t->hu_range[1] ? " (contrast-enhanced?)" : "") + extra;
      }
    }
    if (pt.used) {
      x.push_back(pt.hu);
      y.push_back(pt.density);
    }
    out.points.push_back(pt);
  };
  const std::array<double, 3> spread{0, 0, 0};
  add("air", air, spread, "");
  add("fat", fat, spread, "");
  add("muscle", muscle, spread, have_spine ? "" : " (needs the spine)");
  add("blood", blood, pos_blood, have_spine ? "" : " (needs the spine)");
  out.valid_for = scanValidity(scan.info);
  out.valid_for["note"] = "this scan only (internal calibration)";
  out.details = {{"tissues", table.toJson()},
                 {"slices", {kmin, kmax, step}},
                 {"statistic", "median HU of each tissue's voxels"},
                 {"checks",
                  {{"slope_range", p.slope_range},
                   {"intercept_range", p.intercept_range},
                   {"max_residual_sd_mg_cm3", p.max_residual_sd}}}};
  if (!notes.empty()) out.details["notes"] = notes;
  out.warnings = warnings;
  std::string summary;
  for (const auto& pt : out.points)
    summary += "\n  " + pt.name + ": " +
               (pt.voxels ? std::to_string(static_cast<int>(std::lround(pt.hu))) + " HU" : "-") +
               (pt.used ? " (used)" : " (not used: " + pt.note + ")");
  if (x.size() < 3)
    throw ProcessingError("internal calibration refused for " + file + ": only " + std::to_string(x.size()) +
                          " of the reference tissues are plausible (need 3):" + summary +
                          "\nUse rods or a calibration file instead, or check the scan.");
  out.fit = stats::fitOls(x, y);
  const auto& f = out.fit;
  std::string why;
  if (f.slope < p.slope_range[0] || f.slope > p.slope_range[1])
    why = "slope " + std::to_string(f.slope) + " mg/cm3 per HU outside " + std::to_string(p.slope_range[0]) +
          ".." + std::to_string(p.slope_range[1]);
  else if (f.intercept < p.intercept_range[0] || f.intercept > p.intercept_range[1])
    why = "intercept " + std::to_string(f.intercept) + " mg/cm3 outside " +
          std::to_string(p.intercept_range[0]) + ".." + std::to_string(p.intercept_range[1]);
  else if (f.residual_sd > p.max_residual_sd)
    why = "tissues disagree with a line (residual SD " + std::to_string(f.residual_sd) + " mg/cm3 > " +
          std::to_string(p.max_residual_sd) + ")";
  if (!why.empty())
    throw ProcessingError("internal calibration refused for " + file + ": " + why + summary +
                          "\nUse rods or a calibration file instead.");
  return out;
}

}  // namespace ctbmd
