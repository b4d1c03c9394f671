// CT numbers of tissues from NIST mass attenuation coefficients (internal/tissue_physics.hpp).
#include "internal/tissue_physics.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace ctbmd::tissue {
namespace {

constexpr std::array<double, 4> kEnergies = {50, 60, 80, 100};  // keV
using Row = std::array<double, 4>;                              // mu/rho (cm^2/g) at kEnergies

// NIST SRD 126 (Hubbell & Seltzer), compounds and mixtures table.
constexpr Row kWater = {0.2269, 0.2059, 0.1837, 0.1707};
constexpr Row kAdipose = {0.2123, 0.1974, 0.1800, 0.1688};  // ICRU-44 adipose tissue
constexpr Row kMuscle = {0.2262, 0.2048, 0.1823, 0.1693};   // ICRU-44 skeletal muscle
constexpr Row kBlood = {0.2278, 0.2057, 0.1827, 0.1695};    // ICRU-44 whole blood
constexpr Row kAir = {0.2080, 0.1875, 0.1662, 0.1541};      // dry air, sea level
// NIST SRD 126, elements: Ca (Z 20), P (15), O (8), H (1).
constexpr Row kCa = {1.019, 0.6578, 0.3656, 0.2571};
constexpr Row kP = {0.4916, 0.3494, 0.2324, 0.1865};
constexpr Row kO = {0.2132, 0.1907, 0.1678, 0.1551};
constexpr Row kH = {0.3355, 0.3260, 0.3091, 0.2944};
constexpr double kHaDensity = 3.16;  // g/cm^3, hydroxyapatite crystal

Row hydroxyapatite() {
  // Ca10(PO4)6(OH)2 by mass (standard atomic weights).
  const double ca = 10 * 40.078, p = 6 * 30.974, o = 26 * 15.999, h = 2 * 1.008, tot = ca + p + o + h;
  Row r{};
  for (size_t i = 0; i < r.size(); ++i) r[i] = (ca * kCa[i] + p * kP[i] + o * kO[i] + h * kH[i]) / tot;
  return r;
}

const Row& rowOf(Material m) {
  static const Row ha = hydroxyapatite();
  switch (m) {
    case Material::Water:
      return kWater;
    case Material::Adipose:
      return kAdipose;
    case Material::Muscle:
      return kMuscle;
    case Material::Blood:
      return kBlood;
    case Material::Air:
      return kAir;
    case Material::Hydroxyapatite:
      return ha;
  }
  return kWater;
}

}  // namespace

double massAttenuation(Material m, double e_kev) {
  const double e = std::clamp(e_kev, kEnergies.front(), kEnergies.back());
  const Row& r = rowOf(m);
  size_t i = 0;
  while (i + 2 < kEnergies.size() && e > kEnergies[i + 1]) ++i;
  const double t =
      (std::log(e) - std::log(kEnergies[i])) / (std::log(kEnergies[i + 1]) - std::log(kEnergies[i]));
  return std::exp(std::log(r[i]) + t * (std::log(r[i + 1]) - std::log(r[i])));
}

double ctNumber(Material m, double rho_g_cm3, double e_kev) {
  const double mw = massAttenuation(Material::Water, e_kev);  // water: 1 g/cm^3
  return 1000.0 * (rho_g_cm3 * massAttenuation(m, e_kev) - mw) / mw;
}

double hydroxyapatiteSlope(double e_kev) {
  const double mw = massAttenuation(Material::Water, e_kev);
  // per g/cm^3 -> per mg/cm^3: x 1e-3, so the 1000 of the HU scale cancels
  return (massAttenuation(Material::Hydroxyapatite, e_kev) - mw / kHaDensity) / mw;
}

double effectiveEnergyForSlope(double s) {
  // The slope falls monotonically with energy over 50-100 keV: bisect.
  double lo = kEnergies.front(), hi = kEnergies.back();
  if (s >= hydroxyapatiteSlope(lo)) return lo;
  if (s <= hydroxyapatiteSlope(hi)) return hi;
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    (hydroxyapatiteSlope(mid) > s ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace ctbmd::tissue
