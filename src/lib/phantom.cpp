// Digital QCT phantom. All geometry is built in patient coordinates (LPS, mm; x to the
// patient's left, y posterior, z superior), rasterised slice by slice with sub-slice
// sampling over the slice thickness (partial volume along z) and a small in-plane
// point-spread blur, then stored in the requested orientation by an exact axis
// permutation. Every random choice comes from one seeded generator, so a seed always
// gives the same scan.
#include "ctbmd/phantom.hpp"

#include <itkMultiThreaderBase.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <thread>

#include "ctbmd/canonical.hpp"
#include "ctbmd/clinical_rules.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/random.hpp"
#include "internal/tissue_physics.hpp"

namespace ctbmd {
namespace {

using namespace phantom_labels;
constexpr double kPi = 3.14159265358979323846;

double clamp01(double v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

struct Vertebra {
  int label = 0;
  std::string name;
  double h = 25, disc_below = 9;  // body height and disc height below it, mm
  double a = 20, b = 15;          // half width (x), half depth (y)
  double cx = 0, cy = 0, cz = 0;  // body centre
  double tilt = 0;                // sagittal tilt of the body axis (rad)
  double rot = 0;                 // axial rotation (rad)
  double tp_len = 25;             // transverse process length beyond the pedicle
  bool ribs = false, fractured = false, metal = false, sacrum = false;
  double rib_arc = 0;  // rib length beyond the tubercle, mm
  double bmd = 150, hu_trab = 180, hu_cortex = 700, cortex_mm = 1.0;
  double loss = 0;  // anterior height loss fraction (fracture)
};

struct Local {
  double u, v, w;  // lateral, anteroposterior (posterior +), along the body axis
};

inline Local toLocal(const Vertebra& vb, double x, double y, double z) {
  double qx = x - vb.cx, qy = y - vb.cy, qz = z - vb.cz;
  double st = std::sin(vb.tilt), ct = std::cos(vb.tilt);
  double w = qy * st + qz * ct;
  double yy = qy * ct - qz * st;
  double sr = std::sin(vb.rot), cr = std::cos(vb.rot);
  return {qx * cr + yy * sr, -qx * sr + yy * cr, w};
}

// In-plane body outline: ellipse anteriorly, flatter posteriorly. Returns r (1 on the edge).
inline double bodyR(double u, double v, double a, double b) {
  double p = v > 0 ? 3.0 : 2.0;
  return std::pow(std::pow(std::abs(u) / a, p) + std::pow(std::abs(v) / b, p), 1.0 / p);
}

struct RibPoint {
  double x, y, z;
};

struct Rib {
  int label;  // 160 + vertebra
  std::vector<RibPoint> pts;
  double radius = 4.5;
};

struct Rod {
  double x, y, r, density, hu;
};

struct Model {
  PhantomParams p;
  std::vector<Vertebra> vb;      // top to bottom; the last one is the sacrum (S1 segment)
  std::vector<Vertebra> sacral;  // S2..S5
  std::vector<Rib> ribs;
  std::vector<Rod> rods;
  double At = 165, Bt = 115, fat = 25;  // torso half axes, subcutaneous fat
  double y_spine0 = 40;
  double z_t12 = 0, z_l2 = 0, z_l4 = 0, z_l5 = 0, z_crest = 0;
  double z_apex = 1e9;  // lung apices: just above T1's body
  double hu_aorta = 40, hu_ivc = 38, hu_liver = 58, hu_kidney = 32, hu_spleen = 50;
  double hu_medulla = 32;  // the renal medulla: as the cortex unless the phase separates them
  // Reference tissues: their own attenuation at the scanner's energy (referenceTissues).
  double hu_air = -1000, hu_fat = -100, hu_muscle = 50, hu_muscle_wall = 45, hu_housing = 15;
  double e_eff_kev = 0, rho_fat = 0, rho_muscle = 0, rho_blood = 0;  // the scanner and tissue model
  std::array<std::array<double, 4>, 12> tex{};                       // texture waves: kx, ky, kz, phase
  std::vector<std::array<double, 4>> gas;                            // bowel gas pockets x, y, z, r
  double spineY(double z) const;
};

double Model::spineY(double z) const {
  // Lumbar lordosis (anterior bulge, negative y) and thoracic kyphosis above T12.
  double zl = z_t12;
  double lord = -p.rotations * 0 - 14.0 * std::sin(kPi * clamp01(z / std::max(zl, 1.0)));
  double kyph = z > zl ? 18.0 * std::pow((z - zl) / 160.0, 2) : 0.0;
  return y_spine0 + lord + kyph;
}

// Phase: the torso's half axes and subcutaneous fat; returns the skeleton's size factor.
double torsoShape(Model& m, PortableRandom& rng) {
  auto N = [](PortableRandom& r) { return r.normal(); };
  auto U = [](PortableRandom& r) { return r.uniform01(); };
  m.At = 150 + 30 * U(rng);
  m.Bt = 105 + 25 * U(rng);
  m.fat = 12 + 25 * U(rng);
  m.y_spine0 = m.Bt - m.fat - 62;
  return 1.0 + 0.04 * N(rng);  // the skeleton's size factor
}

// Phase: T1 to the last lumbar vertebra: heights from the sacrum up, rotations, ribs,
// the landmarks' heights, and the curve (lordosis, kyphosis).
void buildColumn(Model& m, const PhantomParams& p, PortableRandom& rng, double scale) {
  auto N = [](PortableRandom& r) { return r.normal(); };
  std::vector<int> labels;
  for (int t = 8; t <= 19; ++t) labels.push_back(t);
  if (p.rib_pairs == 13) labels.push_back(kT13);
  int nl = p.lumbar6 ? 6 : 5;
  for (int l = 0; l < nl; ++l) labels.push_back(kL1 + l);
  int nrib = p.rib_pairs;  // the top nrib vertebrae carry ribs
  if (nrib < 11 || nrib > 13) throw UsageError("--ribs must be 11, 12 or 13");

  // Heights from the bottom up: z = 0 is the top of the sacrum.
  int n = static_cast<int>(labels.size());
  m.vb.resize(n);
  double z = 0;
  for (int i = n - 1; i >= 0; --i) {
    Vertebra& v = m.vb[i];
    v.label = labels[i];
    v.name = levelName(v.label);
    int from_bottom = n - 1 - i;  // 0 = last lumbar
    int lumbar_rank = from_bottom < nl ? from_bottom : -1;
    if (lumbar_rank >= 0) {
      v.h = (27.0 - 0.4 * lumbar_rank) * scale;
      v.disc_below = (10.5 - 0.4 * lumbar_rank) * scale;
      v.a = (25.0 - 0.9 * lumbar_rank) * scale;
      v.b = (17.0 - 0.35 * lumbar_rank) * scale;
      v.tp_len = (lumbar_rank == 2 ? 30.0 : 25.0 - 2.0 * std::abs(lumbar_rank - 2)) * scale;
    } else {
      int t_rank = from_bottom - nl;  // 0 = last thoracic
      v.h = (24.5 - 0.6 * t_rank) * scale;
      v.disc_below = (7.5 - 0.25 * t_rank) * scale;
      v.a = (20.0 - 0.6 * t_rank) * scale;
      v.b = (15.0 - 0.3 * t_rank) * scale;
      v.tp_len = 16.0 * scale;
    }
    z += v.disc_below;
    v.cz = z + v.h / 2;
    z += v.h;
    v.rot = p.rotations ? (3.0 * N(rng)) * kPi / 180 : 0.0;
  }
  for (int i = 0; i < n; ++i) {
    Vertebra& v = m.vb[i];
    v.ribs = i < nrib;
    if (v.ribs) {
      int from_last = nrib - 1 - i;  // 0 = last rib pair
      v.rib_arc = from_last == 0 ? 95 : (from_last == 1 ? 150 : (from_last == 2 ? 230 : 300));
      v.tp_len = 18 * scale;
    }
    if (v.label == kL1 && p.lumbar_rib_mm > 0) {
      v.ribs = true;
      v.rib_arc = p.lumbar_rib_mm;
    }
    if (v.label == kT12) m.z_t12 = v.cz;
    if (v.label == kL2) m.z_l2 = v.cz;
    if (v.label == kL4) m.z_l4 = v.cz;
  }
  m.z_l5 = m.vb[n - 1].cz;
  m.z_crest = m.vb[n - 1].cz + m.vb[n - 1].h * 0.5 + 4;
  for (auto& v : m.vb) {
    double dz = 1.0;
    double slope = (m.spineY(v.cz + dz) - m.spineY(v.cz - dz)) / (2 * dz);
    v.cy = m.spineY(v.cz);
    v.cx = p.rotations ? 2.0 * std::sin(v.cz / 90.0 + p.seed) : 0.0;
    v.tilt = std::atan(slope);
  }
}

// Phase: bone density per level (the population sets the L1-L2 mean), its HU on the
// scanner line, cortex, fracture and metal.
void levelDensities(Model& m, const PhantomParams& p, PortableRandom& rng) {
  auto N = [](PortableRandom& r) { return r.normal(); };
  auto U = [](PortableRandom& r) { return r.uniform01(); };
  std::string pop = p.population;
  if (pop == "random") {
    const char* pops[] = {"normal", "osteopenia", "osteoporosis"};
    pop = pops[rng.uniformInt(0, 2)];
  }
  double mean;
  if (pop == "normal")
    mean = 128 + 60 * U(rng);
  else if (pop == "osteopenia")
    mean = 84 + 32 * U(rng);
  else if (pop == "osteoporosis")
    mean = 35 + 40 * U(rng);
  else if (pop == "cohort")
    // A screening cohort aged ~50-80: L1-L2 QCT mean ~110 mg/cm3, SD ~35, so the ACR
    // thresholds (80, 120) fall inside it and cases lie on both sides of each, close to it.
    mean = std::clamp(110 + 35 * N(rng), 30.0, 210.0);
  else
    throw UsageError("--population must be normal, osteopenia, osteoporosis, cohort or random");
  m.p.population = pop;
  double l1 = 0, l2 = 0;
  for (auto& v : m.vb) {
    int k = v.label >= kL1 && v.label <= kL6 ? v.label - kL1 + 1 : (v.label == kT13 ? 0 : v.label - kT12);
    v.bmd = mean + 2.0 - 1.5 * k + 3.0 * N(rng);
    if (v.label == kL1) l1 = v.bmd;
    if (v.label == kL2) l2 = v.bmd;
  }
  double shift = mean - 0.5 * (l1 + l2);
  for (auto& v : m.vb) {
    v.bmd += shift;
    auto it = p.bmd.find(v.name);
    if (it != p.bmd.end()) v.bmd = it->second;
    v.bmd = std::max(v.bmd, 5.0);
    v.hu_trab = p.cal_intercept_hu + p.cal_slope_hu * v.bmd;
    v.cortex_mm = 0.8 + 0.5 * clamp01(v.bmd / 180.0);
    v.hu_cortex = 550 + 1.5 * v.bmd;
    if (!p.fracture_level.empty() && v.name == p.fracture_level) {
      v.fractured = true;
      v.loss = p.fracture_height_loss;
    }
    if (!p.metal_level.empty() && v.name == p.metal_level) v.metal = true;
  }
  if (!p.fracture_level.empty() &&
      std::none_of(m.vb.begin(), m.vb.end(), [](const Vertebra& v) { return v.fractured; }))
    throw UsageError("--fracture names level '" + p.fracture_level + "', which this phantom lacks");
  if (!p.metal_level.empty() &&
      std::none_of(m.vb.begin(), m.vb.end(), [](const Vertebra& v) { return v.metal; }))
    throw UsageError("--metal names level '" + p.metal_level + "', which this phantom lacks");
}

// Phase: the sacrum: S1 as a "vertebra" plus fused S2-S5 going posterior-inferior.
void addSacrum(Model& m, const PhantomParams& p, double scale) {
  const Vertebra l5 = m.vb.back();  // a copy: m.vb grows below
  double dir_y = std::sin(40 * kPi / 180), dir_z = -std::cos(40 * kPi / 180);
  double y0 = m.spineY(0) + 4, z0 = 0;
  double hs[5] = {26, 21, 17, 14, 11};
  double along = 0;
  for (int s = 0; s < 5; ++s) {
    Vertebra v;
    v.label = kSacrum;
    v.name = "S" + std::to_string(s + 1);
    v.sacrum = true;
    v.h = hs[s] * scale;
    v.a = (s == 0 ? l5.a * 1.05 : l5.a * (0.95 - 0.15 * s));
    v.b = l5.b * (1.0 - 0.12 * s);
    along += v.h / 2;
    v.cx = l5.cx;
    v.cy = y0 + dir_y * along;
    v.cz = z0 + dir_z * along;
    along += v.h / 2;  // fused: segments touch
    v.tilt = -std::atan2(dir_y, -dir_z);
    v.bmd = l5.bmd - 8;
    v.hu_trab = p.cal_intercept_hu + p.cal_slope_hu * v.bmd;
    v.hu_cortex = l5.hu_cortex;
    v.cortex_mm = l5.cortex_mm;
    if (s == 0)
      m.vb.push_back(v);
    else
      m.sacral.push_back(v);
  }
}

// Phase: cervical vertebrae C7 and C6 above T1, without ribs: with them in a scan's field of
// view the first rib pair is recognisably in it too, so rib pairs can be counted from T1 down.
// Derived from T1 without random draws, so phantoms of other levels are unchanged.
void addCervical(Model& m, double scale) {
  const Vertebra t1 = m.vb.front();
  double ztop = t1.cz + t1.h / 2;
  std::vector<Vertebra> cervical;
  for (int c = 7; c >= 6; --c) {
    Vertebra v = t1;
    v.label = c;
    v.name = levelName(c);
    v.ribs = v.fractured = v.metal = false;
    v.loss = 0;
    v.rib_arc = 0;
    const double f = c == 7 ? 0.85 : 0.75;
    v.h = t1.h * f;
    v.disc_below = std::max(4.0, t1.disc_below * 0.9);
    v.a = t1.a * f;
    v.b = t1.b * f;
    v.tp_len = 14 * scale;
    ztop += v.disc_below;
    v.cz = ztop + v.h / 2;
    ztop += v.h;
    v.cy = m.spineY(v.cz);
    v.tilt = std::atan((m.spineY(v.cz + 1) - m.spineY(v.cz - 1)) / 2);
    cervical.insert(cervical.begin(), v);  // top to bottom
  }
  m.vb.insert(m.vb.begin(), cervical.begin(), cervical.end());
  m.z_apex = t1.cz + t1.h / 2 + 8;
}

// Phase: ribs: head at the vertebra, out past the transverse process, then around the body wall.
void addRibs(Model& m) {
  for (const auto& v : m.vb) {
    if (!v.ribs) continue;
    for (int side : {-1, 1}) {
      Rib r;
      r.label = kRibOffset + v.label;
      double hx = v.cx + side * (v.a + 3), hy = v.cy + v.b * 0.55, hz = v.cz + 0.3 * v.h;
      double tx = hx + side * 20, ty = hy + 14, tz = hz - 3;
      for (double s = 0; s <= 1.0; s += 0.04)
        r.pts.push_back({hx + s * (tx - hx), hy + s * (ty - hy), hz + s * (tz - hz)});
      double Ar = m.At - m.fat - 14, Br = m.Bt - m.fat - 14;
      double s0 = std::clamp(std::abs(tx) / Ar, 0.0, 0.99);
      double psi0 = std::asin(s0);
      if (ty < 0) psi0 = kPi - psi0;
      double len = 0, psi = psi0;
      double px = tx, py = ty;
      while (len < v.rib_arc && psi < kPi * 0.95) {
        psi += 0.01;
        double x = side * Ar * std::sin(psi), y = Br * std::cos(psi);
        len += std::hypot(x - px, y - py);
        px = x;
        py = y;
        r.pts.push_back({x, y, tz - 28.0 * (psi - psi0)});
      }
      m.ribs.push_back(std::move(r));
    }
  }
}

// Reference tissues from their own attenuation (internal/tissue_physics.hpp), not from the
// internal calibrator's table: the scanner is monochromatic at the energy where
// hydroxyapatite gives its slope; each subject's fat, muscle and blood densities vary (their
// own generator, so the geometry's draws stay as they were). The scanner's water offset
// (cal_intercept_hu) shifts every CT number alike.
void referenceTissues(Model& m, const PhantomParams& p) {
  using tissue::Material;
  PortableRandom trng(p.seed * 0xD1B54A32D192ED03ULL + 29);
  m.e_eff_kev = tissue::effectiveEnergyForSlope(p.cal_slope_hu);
  m.rho_fat = trng.uniform(0.910, 0.940);     // subcutaneous fat, -85 to -120 HU at 120 kVp
  m.rho_muscle = trng.uniform(1.040, 1.060);  // skeletal muscle (ICRU-44: 1.05)
  m.rho_blood = trng.uniform(1.045, 1.060);   // whole blood, haematocrit ~35-50 %
  auto H = [&](Material t, double rho) { return p.cal_intercept_hu + tissue::ctNumber(t, rho, m.e_eff_kev); };
  m.hu_air = H(Material::Air, 0.001205);
  m.hu_fat = H(Material::Adipose, m.rho_fat);
  m.hu_muscle = H(Material::Muscle, m.rho_muscle);
  m.hu_muscle_wall = 0.9 * m.hu_muscle + 0.1 * m.hu_fat;  // abdominal wall: some fat between fibres
  m.hu_aorta = H(Material::Blood, m.rho_blood);
  m.hu_ivc = m.hu_aorta - 2;
  m.hu_housing = p.cal_intercept_hu;  // water-equivalent resin
}

// Phase: the contrast phase's blood and organ enhancement.
void contrastPhase(Model& m, const PhantomParams& p) {
  if (p.contrast == "arterial") {
    m.hu_aorta = 320;
    m.hu_ivc = 90;
    m.hu_liver = 75;
    m.hu_kidney = 170;  // corticomedullary nephrogram: cortex bright, medulla lagging
    m.hu_medulla = 85;
    m.hu_spleen = 110;
  } else if (p.contrast == "portal-venous") {
    m.hu_aorta = 170;
    m.hu_ivc = 160;
    m.hu_liver = 115;
    m.hu_kidney = 155;  // nephrographic: homogeneous parenchyma
    m.hu_medulla = 150;
    m.hu_spleen = 120;
  } else if (p.contrast != "none") {
    throw UsageError("--contrast must be none, arterial or portal-venous");
  }
}

// Phase: calibration rods under the patient (ESP-like block).
void addRods(Model& m, const PhantomParams& p) {
  for (size_t i = 0; i < p.rods.size(); ++i) {
    double x = (static_cast<double>(i) - 0.5 * (p.rods.size() - 1)) * 45.0;
    double d = p.rods[i];
    m.rods.push_back({x, m.Bt + 22, 8.0, d, p.cal_intercept_hu + p.cal_slope_hu * d});
  }
}

// Phase: the trabecular texture's waves and the bowel gas pockets.
void textureAndGas(Model& m, PortableRandom& rng) {
  auto U = [](PortableRandom& r) { return r.uniform01(); };
  for (auto& t : m.tex) {
    double lam = 1.2 + 1.8 * U(rng);  // fine, so ROI-sized regions average it out
    double th = std::acos(2 * U(rng) - 1), ph = 2 * kPi * U(rng);
    double k = 2 * kPi / lam;
    t = {k * std::sin(th) * std::cos(ph), k * std::sin(th) * std::sin(ph), k * std::cos(th),
         2 * kPi * U(rng)};
  }
  for (int g = 0; g < 14; ++g) {
    double zg = m.z_l2 - 60 + 200 * U(rng) - 100;
    m.gas.push_back({(U(rng) - 0.5) * 1.6 * (m.At - 50), -(m.Bt - 45) * U(rng) - 10, zg, 7 + 12 * U(rng)});
  }
}

Model buildModel(const PhantomParams& p) {
  Model m;
  m.p = p;
  PortableRandom rng(p.seed * 0x9E3779B97F4A7C15ULL + 17);  // ctbmd/random.hpp: same on every library
  // The phases draw from one generator in this order: reordering them changes every phantom.
  const double scale = torsoShape(m, rng);
  buildColumn(m, p, rng, scale);
  levelDensities(m, p, rng);
  addSacrum(m, p, scale);
  addCervical(m, scale);
  addRibs(m);
  referenceTissues(m, p);
  contrastPhase(m, p);
  addRods(m, p);
  textureAndGas(m, rng);
  return m;
}

// ---- rasteriser --------------------------------------------------------------------------
struct Grid {
  int nx, ny;
  double px, x0, y0;  // x = x0 + i * px
};

template <typename F>
void forBox(const Grid& g, double xmin, double xmax, double ymin, double ymax, F&& f) {
  int i0 = std::max(0, static_cast<int>(std::floor((xmin - g.x0) / g.px)));
  int i1 = std::min(g.nx - 1, static_cast<int>(std::ceil((xmax - g.x0) / g.px)));
  int j0 = std::max(0, static_cast<int>(std::floor((ymin - g.y0) / g.px)));
  int j1 = std::min(g.ny - 1, static_cast<int>(std::ceil((ymax - g.y0) / g.px)));
  for (int j = j0; j <= j1; ++j) {
    double y = g.y0 + j * g.px;
    for (int i = i0; i <= i1; ++i) f(i, j, g.x0 + i * g.px, y, static_cast<size_t>(j) * g.nx + i);
  }
}

template <typename F>
void ellipse(const Grid& g, double cx, double cy, double ra, double rb, F&& f) {
  forBox(g, cx - ra, cx + ra, cy - rb, cy + rb, [&](int, int, double x, double y, size_t k) {
    double dx = (x - cx) / ra, dy = (y - cy) / rb;
    if (dx * dx + dy * dy <= 1) f(k, x, y);
  });
}

// The texture's scale factor for a level of this BMD (PhantomParams::texture_model).
double textureScale(const Model& m, double bmd) {
  if (m.p.texture_model != "density") return 1.0;
  return std::clamp(1.0 + (150.0 - bmd) / 150.0, 0.6, 2.0);
}

double texture(const Model& m, double x, double y, double z, double scale = 1.0) {
  double s = 0;
  for (const auto& t : m.tex) s += std::sin((t[0] * x + t[1] * y + t[2] * z) / scale + t[3]);
  return scale * m.p.texture_sd * s / std::sqrt(0.5 * m.tex.size());
}

// One axial plane being painted: its grid, height and buffers, and the torso at that height.
struct Plane {
  const Grid& g;
  double z;
  float* hu;
  uint8_t* lab;               // null: no labels wanted
  double At = 0, Bt = 0;      // the torso's half axes at this height
  double vi_a = 0, vi_b = 0;  // the visceral cavity's
  double ys = 0;              // the spine's AP position at this height
  void set(size_t k, double v, int l = -1) const {
    hu[k] = static_cast<float>(v);
    if (lab && l >= 0) lab[k] = static_cast<uint8_t>(l);
  }
};

// Phase: the table, and the calibration block with its rods under the patient.
void paintTableAndRods(const Model& m, const Plane& P) {
  const Grid& g = P.g;
  auto set = [&P](size_t k, double v, int l = -1) { P.set(k, v, l); };
  double table_y = m.Bt + (m.rods.empty() ? 4 : 48);
  forBox(g, -230, 230, table_y, table_y + 9, [&](int, int, double, double, size_t k) { set(k, -350); });
  if (!m.rods.empty()) {
    forBox(g, -125, 125, m.Bt + 3, m.Bt + 43,
           [&](int, int, double, double, size_t k) { set(k, m.hu_housing, kHousing); });
    for (size_t r = 0; r < m.rods.size(); ++r)
      ellipse(g, m.rods[r].x, m.rods[r].y, m.rods[r].r, m.rods[r].r,
              [&](size_t k, double, double) { set(k, m.rods[r].hu, kRodFirst + static_cast<int>(r)); });
  }
}

// Phase: the torso (subcutaneous fat, muscle wall, visceral fat), the lungs above the
// diaphragm, the organs and the bowel gas.
void paintTorso(const Model& m, const Plane& P) {
  const Grid& g = P.g;
  const double z = P.z, ys = P.ys, vi_a = P.vi_a, vi_b = P.vi_b, At = P.At, Bt = P.Bt;
  auto set = [&P](size_t k, double v, int l = -1) { P.set(k, v, l); };
  ellipse(g, 0, 0, At, Bt, [&](size_t k, double, double) { set(k, m.hu_fat); });
  ellipse(g, 0, 0, At - m.fat, Bt - m.fat, [&](size_t k, double, double) { set(k, m.hu_muscle_wall); });
  ellipse(g, 0, 0, vi_a, vi_b, [&](size_t k, double, double) { set(k, -75); });
  // Lungs above the diaphragm (posterior recesses reach down to about T12/L1).
  double zd = m.z_t12 - 12;
  if (z > zd && z < m.z_apex) {
    double s = std::sqrt(clamp01((z - zd) / 70.0) * clamp01((m.z_apex - z) / 35.0));
    for (int side : {-1, 1})
      ellipse(g, side * 0.5 * vi_a, ys - 25, 0.45 * vi_a * s + 1e-3, 0.75 * vi_b * s + 1e-3,
              [&](size_t k, double, double) { set(k, -850); });
  }
  // Organs (ellipsoids).
  auto ellipsoid = [&](double cx, double cy, double cz, double ra, double rb, double rc, double v) {
    double t = (z - cz) / rc;
    if (std::abs(t) >= 1) return;
    double s = std::sqrt(1 - t * t);
    ellipse(g, cx, cy, ra * s, rb * s, [&](size_t k, double, double) { set(k, v); });
  };
  ellipsoid(-0.42 * vi_a, -0.1 * vi_b, m.z_t12 + 35, 0.5 * vi_a, 0.62 * vi_b, 95, m.hu_liver);
  ellipsoid(0.55 * vi_a, 0.25 * vi_b, m.z_t12 + 25, 0.22 * vi_a, 0.35 * vi_b, 55, m.hu_spleen);
  for (int side : {-1, 1}) {
    ellipsoid(side * 72, ys + 2, m.z_l2 + 8, 28, 22, 55, m.hu_kidney);
    if (m.hu_medulla != m.hu_kidney)  // the medulla inside the cortex (a 7-10 mm shell)
      ellipsoid(side * 70, ys + 2, m.z_l2 + 8, 18, 13, 40, m.hu_medulla);
  }
  for (const auto& gp : m.gas) {
    double t = (z - gp[2]) / gp[3];
    if (std::abs(t) < 1) {
      double s = std::sqrt(1 - t * t);
      ellipse(g, gp[0], gp[1], gp[3] * s, gp[3] * 0.8 * s, [&](size_t k, double, double) { set(k, -900); });
    }
  }
}

// Phase: erector spinae along the whole spine, psoas from T12 down.
void paintMuscles(const Model& m, const Plane& P) {
  const Grid& g = P.g;
  const double z = P.z, ys = P.ys;
  auto set = [&P](size_t k, double v, int l = -1) { P.set(k, v, l); };
  for (int side : {-1, 1}) {
    ellipse(g, side * 36, ys + 50, 27, 21, [&](size_t k, double, double) { set(k, m.hu_muscle); });
    double grow = clamp01((m.z_t12 - z) / std::max(1.0, m.z_t12 - m.z_l4));
    if (z < m.z_t12 && z > -40) {
      double r = 5 + 18 * grow;
      ellipse(g, side * (24 + r * 0.9), ys - 4, r, r * 0.9,
              [&](size_t k, double, double) { set(k, m.hu_muscle_wall); });
    }
  }
}

// Phase: the aorta (and the iliac arteries below L4) and the IVC.
void paintVessels(const Model& m, const Plane& P) {
  const Grid& g = P.g;
  const double z = P.z, ys = P.ys;
  auto set = [&P](size_t k, double v, int l = -1) { P.set(k, v, l); };
  if (z > m.z_l4) {
    ellipse(g, 14, ys - 17 - 30, 11, 11, [&](size_t k, double, double) { set(k, m.hu_aorta); });
  } else {
    double off = 14 + (m.z_l4 - z) * 0.45;
    for (int side : {-1, 1})
      ellipse(g, side * off, ys - 40, 7, 7, [&](size_t k, double, double) { set(k, m.hu_aorta); });
  }
  if (z > m.z_l5) ellipse(g, -24, ys - 40, 13, 9, [&](size_t k, double, double) { set(k, m.hu_ivc); });
}

// Phase: the ilium, a plate from the sacroiliac joint forward and outward, up to the crest.
void paintIlium(const Model& m, const Plane& P) {
  const Grid& g = P.g;
  const double z = P.z, vi_a = P.vi_a;
  auto set = [&P](size_t k, double v, int l = -1) { P.set(k, v, l); };
  if (z < m.z_crest) {
    const Vertebra& s1 = m.vb.back();
    for (int side : {-1, 1}) {
      double x1 = side * (s1.a + 28), y1 = s1.cy + 12;
      double x2 = side * (vi_a - 18), y2 = s1.cy - 75;
      double top_fade = clamp01((m.z_crest - z) / 6.0);
      double th = 4 + 5 * top_fade;
      forBox(g, std::min(x1, x2) - th, std::max(x1, x2) + th, std::min(y1, y2) - th, std::max(y1, y2) + th,
             [&](int, int, double x, double y, size_t k) {
               double dx = x2 - x1, dy = y2 - y1, L2 = dx * dx + dy * dy;
               double t = clamp01(((x - x1) * dx + (y - y1) * dy) / L2);
               double bow = 10 * std::sin(kPi * t);
               double qx = x1 + t * dx - side * bow, qy = y1 + t * dy;
               double d = std::hypot(x - qx, y - qy);
               if (d <= th) set(k, d > th - 1.5 ? 650 : 160, kIlium);
             });
    }
  }
}

// Phase: the ribs, tubes with a cortex along their centre lines.
void paintRibs(const Model& m, const Plane& P) {
  const Grid& g = P.g;
  const double z = P.z;
  auto set = [&P](size_t k, double v, int l = -1) { P.set(k, v, l); };
  for (const auto& r : m.ribs) {
    for (const auto& pt : r.pts) {
      double dz = z - pt.z;
      if (std::abs(dz) >= r.radius) continue;
      double rr = std::sqrt(r.radius * r.radius - dz * dz);
      ellipse(g, pt.x, pt.y, rr, rr, [&](size_t k, double x, double y) {
        double d = std::hypot(x - pt.x, y - pt.y);
        set(k, d > r.radius - 1.4 ? 650 : 200, r.label);
      });
    }
  }
}

// Phase: pedicle screws and their streaks.
void paintMetal(const Model& m, const Plane& P) {
  const Grid& g = P.g;
  const double z = P.z;
  float* hu = P.hu;
  auto set = [&P](size_t k, double v, int l = -1) { P.set(k, v, l); };
  for (const auto& v : m.vb) {
    if (!v.metal) continue;
    for (int side : {-1, 1}) {
      // from the posterior entry point through the pedicle into the body (local coords)
      double u0 = side * 0.75 * v.a, v0 = v.b + 22, u1 = side * 0.2 * v.a, v1 = -0.45 * v.b;
      double w = 0.05 * v.h;
      forBox(g, v.cx - v.a - 10, v.cx + v.a + 10, v.cy - v.b - 5, v.cy + v.b + 30,
             [&](int, int, double x, double y, size_t k) {
               Local q = toLocal(v, x, y, z);
               if (std::abs(q.w - w) > 3) return;
               double dx = u1 - u0, dy = v1 - v0, L2 = dx * dx + dy * dy;
               double t = clamp01(((q.u - u0) * dx + (q.v - v0) * dy) / L2);
               double d2 =
                   std::pow(q.u - u0 - t * dx, 2) + std::pow(q.v - v0 - t * dy, 2) + std::pow(q.w - w, 2);
               if (d2 <= 9) set(k, 3000, kMetal);
             });
    }
    if (std::abs(z - (v.cz + 0.05 * v.h)) < 8) {
      double fade = 1 - std::abs(z - (v.cz + 0.05 * v.h)) / 8;
      forBox(g, v.cx - 120, v.cx + 120, v.cy - 120, v.cy + 120, [&](int, int, double x, double y, size_t k) {
        if (hu[k] < -500 || hu[k] >= 2999) return;
        double dx = x - v.cx, dy = y - (v.cy + 0.3 * v.b);
        double rr = std::hypot(dx, dy) + 1;
        double ang = std::atan2(dy, dx);
        hu[k] += static_cast<float>(fade * 220 * std::cos(6 * ang) * std::exp(-rr / 45));
      });
    }
  }
}

// Phase: one vertebra (disc below, body, posterior elements) in its local frame.
void paintVertebra(const Model& m, const Plane& P, const Vertebra& v, const Vertebra* below) {
  const Grid& g = P.g;
  const double z = P.z;
  auto set = [&P](size_t k, double v, int l = -1) { P.set(k, v, l); };
  double reach = v.h / 2 + 70 * std::abs(std::sin(v.tilt)) + 4;
  if (std::abs(z - v.cz) > reach + (below ? v.disc_below + 2 : 0) + 20) return;
  double half_x = v.a + v.tp_len + 14, yfront = v.cy - v.b - 8, yback = v.cy + v.b + 60;
  const int body = v.label, pe = kPosteriorOffset + v.label;
  forBox(g, v.cx - half_x, v.cx + half_x, yfront, yback, [&](int, int, double x, double y, size_t k) {
    Local q = toLocal(v, x, y, z);
    // Disc below the body (in the body's frame).
    if (below && !v.sacrum) {
      double wtop = -v.h / 2 * (1 - v.loss * 0.65);
      if (q.w < wtop + 0.5 && q.w > wtop - v.disc_below - 0.5) {
        double ad = 0.5 * (v.a + below->a), bd = 0.5 * (v.b + below->b);
        double rr = bodyR(q.u, q.v, ad, bd);
        if (rr <= 1.0) set(k, rr < 0.6 ? 75 : 95, kDiscOffset + v.label);
      }
    }
    double hv = v.h * (1 - v.loss * (0.65 - 0.35 * std::clamp(q.v / v.b, -1.0, 1.0)));
    double r = bodyR(q.u, q.v, v.a, v.b);
    if (r <= 1.0 && std::abs(q.w) <= hv / 2) {
      double edge = std::min((1 - r) * std::min(v.a, v.b), hv / 2 - std::abs(q.w));
      double val = edge < v.cortex_mm ? v.hu_cortex : v.hu_trab + texture(m, x, y, z, textureScale(m, v.bmd));
      set(k, val, body);
      return;
    }
    if (v.sacrum) {
      // Sacral alae out to the sacroiliac joints.
      if (std::abs(q.w) <= v.h / 2 && q.v > -0.6 * v.b && q.v < v.b * 1.1 && std::abs(q.u) < v.a + 25)
        set(k, std::abs(q.u) > v.a + 23.5 || std::abs(q.w) > v.h / 2 - 1.2 ? v.hu_cortex : v.hu_trab + 20,
            body);
      return;
    }
    // Posterior elements.
    double vc = v.b + 9, rcu = 10.5, rcv = 8;
    double cu = q.u / rcu, cv = (q.v - vc) / rcv;
    bool in_canal = cu * cu + cv * cv <= 1;
    double hpe = v.h / 2;
    bool pe_z = q.w > -0.35 * hpe * 2 / 2 - 0.35 * v.h && q.w < 0.42 * v.h;
    if (in_canal && std::abs(q.w) < v.h / 2 + v.disc_below / 2) {
      set(k, 18);
      return;
    }
    if (!pe_z) {
      // Spinous process extends lower than the rest.
      double vs = vc + rcv + 1;
      if (std::abs(q.u) <= 3.5 && q.v > vs && q.v < vs + 32) {
        double drop = 0.45 * (q.v - vs);
        if (q.w < 0.3 * v.h - drop && q.w > -0.5 * v.h - drop) set(k, v.hu_trab + 260, pe);
      }
      return;
    }
    double hu_pe = v.hu_trab + 260;
    // pedicles
    if (std::abs(std::abs(q.u) - 0.62 * v.a) <= 4.5 && q.v > v.b * 0.55 && q.v < vc + 3 &&
        q.w > -0.15 * v.h) {
      set(k, hu_pe, pe);
      return;
    }
    // lamina ring around the canal's posterior half
    double lu = q.u / (rcu + 5.5), lv = (q.v - vc) / (rcv + 5.5);
    if (lu * lu + lv * lv <= 1 && q.v > vc - 1) {
      set(k, hu_pe, pe);
      return;
    }
    // transverse processes
    if (std::abs(q.u) >= 0.6 * v.a && std::abs(q.u) <= 0.6 * v.a + v.tp_len && q.v > vc - 7 && q.v < vc + 2 &&
        q.w > -0.05 * v.h && q.w < 0.3 * v.h) {
      set(k, hu_pe, pe);
      return;
    }
    // spinous process
    double vs = vc + rcv + 1;
    if (std::abs(q.u) <= 3.5 && q.v > vs && q.v < vs + 32) {
      double drop = 0.45 * (q.v - vs);
      if (q.w < 0.3 * v.h - drop && q.w > -0.5 * v.h - drop) set(k, hu_pe, pe);
    }
  });
}

// Paints one axial plane at height z into hu (and lab, when not null).
void paintPlane(const Model& m, const Grid& g, double z, float* hu, uint8_t* lab) {
  const size_t n = static_cast<size_t>(g.nx) * g.ny;
  std::fill(hu, hu + n, static_cast<float>(m.hu_air));
  if (lab) std::fill(lab, lab + n, 0);
  Plane P{g, z, hu, lab};
  P.At = m.At * (1 + 0.04 * std::sin(z / 130.0));
  P.Bt = m.Bt;
  P.vi_a = P.At - m.fat - 11;
  P.vi_b = P.Bt - m.fat - 11;
  P.ys = m.spineY(z);
  // In this order: later structures paint over earlier ones.
  paintTableAndRods(m, P);
  paintTorso(m, P);
  paintMuscles(m, P);
  paintVessels(m, P);
  paintIlium(m, P);
  paintRibs(m, P);
  for (size_t i = 0; i < m.vb.size(); ++i)
    paintVertebra(m, P, m.vb[i], i + 1 < m.vb.size() ? &m.vb[i + 1] : nullptr);
  for (const auto& s : m.sacral) paintVertebra(m, P, s, nullptr);
  paintMetal(m, P);
}

// Deterministic fast Gaussian noise: xorshift + inverse-CDF table.
struct NoiseTable {
  std::vector<float> t;
  NoiseTable() : t(65536) {
    for (int i = 0; i < 65536; ++i) {
      double p = (i + 0.5) / 65536.0;
      // Acklam's inverse normal approximation refined by one Newton step.
      double q = p - 0.5, x;
      if (std::abs(q) < 0.425) {
        double r = 0.180625 - q * q;
        x = q *
            (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r +
                 45921.953931549871457) *
                    r +
                13731.693765509461125) *
                   r +
               1971.5909503065514427) *
                  r +
              133.14166789178437745) *
                 r +
             3.387132872796366608) /
            (((((((5226.495278852545925 * r + 28729.085735721942674) * r + 39307.89580009271061) * r +
                 21213.794301586595867) *
                    r +
                5394.1960214247511077) *
                   r +
               687.1870074920579083) *
                  r +
              42.313330701600911252) *
                 r +
             1.0);
      } else {
        double r = q < 0 ? p : 1 - p;
        r = std::sqrt(-std::log(r));
        if (r <= 5) {
          r -= 1.6;
          x = (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r + 0.24178072517745061177) *
                       r +
                   1.27045825245236838258) *
                      r +
                  3.64784832476320460504) *
                     r +
                 5.7694972214606914055) *
                    r +
                4.6303378461565452959) *
                   r +
               1.42343711074968357734) /
              (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r +
                    0.0151986665636164571966) *
                       r +
                   0.14810397642748007459) *
                      r +
                  0.68976733498510000455) *
                     r +
                 1.6763848301838038494) *
                    r +
                2.05319162663775882187) *
                   r +
               1.0);
        } else {
          r -= 5;
          x = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r +
                    0.0012426609473880784386) *
                       r +
                   0.026532189526576123093) *
                      r +
                  0.29656057182850489123) *
                     r +
                 1.7848265399172913358) *
                    r +
                5.4637849111641143699) *
                   r +
               6.6579046435011037772) /
              (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r +
                    1.8463183175100546818e-5) *
                       r +
                   7.868691311456132591e-4) *
                      r +
                  0.0148753612908506148525) *
                     r +
                 0.13692988092273580531) *
                    r +
                0.59983220655588793769) *
                   r +
               1.0);
        }
        if (q < 0) x = -x;
      }
      t[i] = static_cast<float>(x);
    }
  }
};

}  // namespace

// Phase: the option values a phantom needs, refused before any work.
void checkPhantomParams(const PhantomParams& p) {
  if (p.pixel_mm < 0.3 || p.pixel_mm > 2.0) throw UsageError("--pixel must be between 0.3 and 2 mm");
  if (p.slice_mm < 0.5 || p.slice_mm > 6.0) throw UsageError("--slice must be between 0.5 and 6 mm");
  if (p.nx < 32 || p.ny < 32 || p.nx > 2048 || p.ny > 2048)
    throw UsageError("--size: in-plane matrix must be 32..2048");
}

// The slices a phantom covers: as many as the covered levels need (or PhantomParams::nz).
struct SliceStack {
  int nz = 0;
  double z0 = 0;  // centre of slice 0 (mm)
};

// Phase: the slice stack from the covered levels (top of the top one to the bottom of the
// bottom one, 2 mm beyond each).
SliceStack sliceStack(const Model& m, const PhantomParams& p) {
  auto findLevel = [&](const std::string& name) -> const Vertebra* {
    if (name == "S1") return &m.vb.back();
    for (const auto& v : m.vb)
      if (v.name == name) return &v;
    return nullptr;
  };
  const Vertebra* top = findLevel(p.top);
  const Vertebra* bot = findLevel(p.bottom);
  if (!top || !bot)
    throw UsageError("--levels: '" + p.top + "-" + p.bottom +
                     "' names a level this phantom lacks (C6..T12, T13 with --ribs 13, L1..L5/L6, S1)");
  double z_hi = top->cz + top->h / 2 + 2, z_lo = bot->cz - bot->h / 2 - 2;
  if (z_hi <= z_lo) throw UsageError("--levels must run from a higher level to a lower one, e.g. T11-S1");
  SliceStack st;
  st.nz = p.nz > 0 ? p.nz : static_cast<int>(std::ceil((z_hi - z_lo) / p.slice_mm));
  const double zc = 0.5 * (z_hi + z_lo);
  st.z0 = zc - 0.5 * (st.nz - 1) * p.slice_mm;  // centre of slice 0
  return st;
}

// Phase: the CT and label images on the phantom's grid, allocated (not filled).
void allocateImages(const PhantomParams& p, const Grid& g, const SliceStack& st, CtImage::Pointer& ct,
                    LabelImage::Pointer& lab) {
  ct = CtImage::New();
  lab = LabelImage::New();
  CtImage::SizeType sz;
  sz[0] = p.nx;
  sz[1] = p.ny;
  sz[2] = st.nz;
  CtImage::SpacingType sp;
  sp[0] = p.pixel_mm;
  sp[1] = p.pixel_mm;
  sp[2] = p.slice_mm;
  CtImage::PointType org;
  org[0] = g.x0;
  org[1] = g.y0;
  org[2] = st.z0;
  for (auto img : {static_cast<itk::ImageBase<3>*>(ct.GetPointer()),
                   static_cast<itk::ImageBase<3>*>(lab.GetPointer())}) {
    img->SetRegions(CtImage::RegionType(sz));
    img->SetSpacing(sp);
    img->SetOrigin(org);
  }
  ct->Allocate();
  lab->Allocate();
}

// Phase: every slice painted (sub-slices over the thickness), blurred in-plane (point spread)
// and given its noise; the labels of each slice's centre plane. Slices in parallel.
void renderSlices(const Model& m, const PhantomParams& p, const Grid& g, const SliceStack& st, CtImage* ct,
                  LabelImage* lab) {
  static const NoiseTable noise;
  const int sub = 2 * static_cast<int>(std::ceil(p.slice_mm / 1.0)) + 1;  // odd: centre included
  const size_t plane = static_cast<size_t>(p.nx) * p.ny;
  unsigned nthreads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  if (itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads() > 0)
    nthreads = std::min<unsigned>(nthreads, itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads());
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < nthreads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<float> acc(plane), tmp(plane), blur(plane);
      for (int k = static_cast<int>(t); k < st.nz; k += static_cast<int>(nthreads)) {
        double zk = st.z0 + k * p.slice_mm;
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int s = 0; s < sub; ++s) {
          double zs = zk + p.slice_mm * ((s + 0.5) / sub - 0.5);
          uint8_t* lp = (s == sub / 2) ? lab->GetBufferPointer() + k * plane : nullptr;
          paintPlane(m, g, zs, tmp.data(), lp);
          for (size_t i = 0; i < plane; ++i) acc[i] += tmp[i];
        }
        // in-plane point-spread: separable [1 2 1]/4
        for (int j = 0; j < p.ny; ++j)
          for (int i = 0; i < p.nx; ++i) {
            size_t q = static_cast<size_t>(j) * p.nx + i;
            float l = acc[i > 0 ? q - 1 : q], r = acc[i + 1 < p.nx ? q + 1 : q];
            blur[q] = (l + 2 * acc[q] + r) * (0.25f / sub);
          }
        uint64_t st =
            (p.seed + 1) * 0x9E3779B97F4A7C15ULL ^ (static_cast<uint64_t>(k) * 0xBF58476D1CE4E5B9ULL);
        if (st == 0) st = 1;
        int16_t* out = ct->GetBufferPointer() + k * plane;
        uint64_t bits = 0;
        int left = 0;
        for (int j = 0; j < p.ny; ++j)
          for (int i = 0; i < p.nx; ++i) {
            size_t q = static_cast<size_t>(j) * p.nx + i;
            float u = blur[j > 0 ? q - p.nx : q], d = blur[j + 1 < p.ny ? q + p.nx : q];
            float v = 0.25f * u + 0.5f * blur[q] + 0.25f * d;
            if (left == 0) {
              st ^= st << 13;
              st ^= st >> 7;
              st ^= st << 17;
              bits = st;
              left = 4;
            }
            float nv = noise.t[bits & 0xffff];
            bits >>= 16;
            --left;
            if (v > static_cast<float>(m.hu_air) + 10.f)
              v += static_cast<float>(p.noise_sd) * nv;  // air outside: near noiseless
            else
              v += 3.f * nv;
            out[q] = static_cast<int16_t>(std::clamp(std::nearbyint(v), -1200.f, 3071.f));
          }
      }
    });
  }
  for (auto& th : pool) th.join();
}

// Phase: the truth per vertebra from the label map (exact for this voxelisation).
nlohmann::json levelTruth(const Model& m, const PhantomParams& p, const Grid& g, const SliceStack& st,
                          const LabelImage* lab) {
  nlohmann::json levels = nlohmann::json::object();
  std::map<int, std::array<double, 4>> acc;  // sum x, y, z, count (canonical physical)
  const uint8_t* lp = lab->GetBufferPointer();
  for (int k = 0; k < st.nz; ++k)
    for (int j = 0; j < p.ny; ++j)
      for (int i = 0; i < p.nx; ++i) {
        int l = lp[(static_cast<size_t>(k) * p.ny + j) * p.nx + i];
        if (l == 0 || l >= kPosteriorOffset) continue;
        auto& a = acc[l];
        a[0] += g.x0 + i * p.pixel_mm;
        a[1] += g.y0 + j * p.pixel_mm;
        a[2] += st.z0 + k * p.slice_mm;
        a[3] += 1;
      }
  for (const auto& v : m.vb) {
    nlohmann::json L;
    L["label"] = v.label;
    auto it = acc.find(v.label);
    double vz_lo = v.cz - v.h / 2, vz_hi = v.cz + v.h / 2;
    double scan_lo = st.z0 - p.slice_mm / 2, scan_hi = st.z0 + (st.nz - 0.5) * p.slice_mm;
    std::string cov = "outside";
    if (it != acc.end()) cov = (vz_lo >= scan_lo && vz_hi <= scan_hi) ? "complete" : "partial";
    if (cov == "outside") continue;
    L["coverage"] = cov;
    L["centroid_mm"] = {it->second[0] / it->second[3], it->second[1] / it->second[3],
                        it->second[2] / it->second[3]};
    L["body_voxels"] = static_cast<long>(it->second[3]);
    L["body_volume_mm3"] = it->second[3] * p.pixel_mm * p.pixel_mm * p.slice_mm;
    L["bmd_mg_cm3"] = v.bmd;
    L["hu_trabecular"] = v.hu_trab;
    L["height_mm"] = v.h;
    L["ribs"] = v.ribs;
    L["fractured"] = v.fractured;
    if (v.fractured) L["height_loss_anterior"] = v.loss;
    L["metal"] = v.metal;
    levels[v.sacrum ? "S1" : v.name] = L;
  }
  return levels;
}

// Phase: the truth JSON: population, calibration, levels, anchors, rods, tissues, labels.
nlohmann::json truthJson(const Model& m, const PhantomParams& p, const nlohmann::json& levels) {
  std::string last_rib, on_sacrum = m.vb[m.vb.size() - 2].name;
  for (const auto& v : m.vb)
    if (v.ribs) last_rib = v.name;
  double l1 = 0, l2 = 0;
  for (const auto& v : m.vb) {
    if (v.label == kL1) l1 = v.bmd;
    if (v.label == kL2) l2 = v.bmd;
  }
  double l1l2 = 0.5 * (l1 + l2);
  nlohmann::json rods = nlohmann::json::array();
  for (size_t r = 0; r < m.rods.size(); ++r)
    rods.push_back({{"label", kRodFirst + static_cast<int>(r)},
                    {"density_mg_cm3", m.rods[r].density},
                    {"hu", m.rods[r].hu},
                    {"center_mm", {m.rods[r].x, m.rods[r].y}},
                    {"radius_mm", m.rods[r].r}});
  return {{"population", m.p.population},
          {"bmd_l1l2", l1l2},
          {"category", rules::toString(rules::acrCategory(l1l2))},
          {"calibration",
           {{"material", "hydroxyapatite"},
            {"intercept_hu", p.cal_intercept_hu},
            {"slope_hu_per_mg_cm3", p.cal_slope_hu},
            {"definition", "HU = intercept_hu + slope_hu_per_mg_cm3 * BMD"}}},
          {"levels", levels},
          {"anchors",
           {{"rib_pairs", p.rib_pairs + (p.lumbar_rib_mm > 0 ? 1 : 0)},
            {"lumbar_rib_mm", p.lumbar_rib_mm},
            {"lumbar_vertebrae", p.lumbar6 ? 6 : 5},
            {"last_rib_bearing", last_rib},
            {"on_sacrum", on_sacrum}}},
          {"rods", rods},
          {"contrast", p.contrast},
          {"tissues_hu",
           {{"air", m.hu_air},
            {"fat", m.hu_fat},
            {"muscle", m.hu_muscle},
            {"blood", m.hu_aorta},
            {"rod_housing", m.hu_housing}}},
          {"tissue_model",
           {{"effective_energy_kev", m.e_eff_kev},
            {"density_g_cm3", {{"fat", m.rho_fat}, {"muscle", m.rho_muscle}, {"blood", m.rho_blood}}},
            {"source",
             "HU from NIST mass attenuation coefficients (ICRU-44 tissues) at the effective energy "
             "where hydroxyapatite gives the scanner slope, plus the scanner's water offset"}}},
          {"noise_sd_hu", p.noise_sd},
          {"texture_sd_hu", p.texture_sd},
          {"coordinates", "centroid_mm are physical LPS coordinates (ITK convention)"},
          {"labels",
           {{"body", "VerSe number"},
            {"posterior_elements", "100 + VerSe"},
            {"rib", "160 + VerSe"},
            {"disc_below", "200 + VerSe"},
            {"sacrum", 26},
            {"ilium", kIlium},
            {"rod_housing", kHousing},
            {"rods", "241 + index"},
            {"metal", kMetal}}}};
}

PhantomResult makePhantom(const PhantomParams& p) {
  checkPhantomParams(p);
  Model m = buildModel(p);
  const SliceStack st = sliceStack(m, p);
  const Grid g{p.nx, p.ny, p.pixel_mm, -0.5 * (p.nx - 1) * p.pixel_mm, -0.5 * (p.ny - 1) * p.pixel_mm};
  CtImage::Pointer ct;
  LabelImage::Pointer lab;
  allocateImages(p, g, st, ct, lab);
  renderSlices(m, p, g, st, ct.GetPointer(), lab.GetPointer());
  const nlohmann::json truth = truthJson(m, p, levelTruth(m, p, g, st, lab.GetPointer()));
  PhantomResult res;
  if (p.orientation == "LPS") {
    res.ct = ct;
    res.labels = lab;
  } else {
    AxisMap am = axisMapForCode(ct.GetPointer(), p.orientation);
    res.ct = fromCanonical<int16_t>(ct.GetPointer(), am);
    res.labels = fromCanonical<uint8_t>(lab.GetPointer(), am);
  }
  res.truth = truth;
  if (p.texture_model != "uniform") res.truth["texture_model"] = p.texture_model;
  return res;
}

}  // namespace ctbmd
