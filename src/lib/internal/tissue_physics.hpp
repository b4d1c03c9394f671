#pragma once
// CT numbers of tissues from their X-ray attenuation, for the phantom: a model of its own,
// independent of the internal calibrator's table (calibrate.cpp TissueTable::builtin()), so
// that a phantom study of internal calibration measures something rather than restating the
// table.
//
// Mass attenuation coefficients mu/rho (cm^2/g) at 50, 60, 80 and 100 keV are NIST's (J. H.
// Hubbell and S. M. Seltzer, "Tables of X-Ray Mass Attenuation Coefficients and Mass
// Energy-Absorption Coefficients", NIST Standard Reference Database 126): liquid water, the
// ICRU-44 adipose tissue, skeletal muscle and whole blood, dry air, and hydroxyapatite
// Ca10(PO4)6(OH)2 (3.16 g/cm3) mixed from the elements Ca, P, O and H by mass fraction.
// Between the tabulated energies log(mu/rho) is interpolated linearly in log(E).
//
// A scanner is modelled as monochromatic at an effective energy E. A material of density rho
// reads HU = 1000 (rho mu/rho(E) - mu_w(E)) / mu_w(E); bone is hydroxyapatite in a
// water-equivalent marrow that it displaces, so it adds
//   dHU/d(rho_HA) = 1000 (mu/rho_HA(E) - mu_w(E) / 3.16) / mu_w(E) HU per g/cm3.
// That slope falls from 2.27 HU per mg/cm3 at 50 keV to 0.87 at 100 keV; a phantom's scanner
// slope (PhantomParams::cal_slope_hu) therefore fixes its effective energy, and the soft
// tissues are read at that energy.
#include <string>

namespace ctbmd::tissue {

enum class Material { Water, Adipose, Muscle, Blood, Air, Hydroxyapatite };

/// mu/rho (cm^2/g) of the material at E keV (50 <= E <= 100; clamped to that range).
double massAttenuation(Material m, double e_kev);

/// HU of the material at density rho (g/cm^3) for a monochromatic beam of E keV.
double ctNumber(Material m, double rho_g_cm3, double e_kev);

/// HU added per mg/cm^3 of hydroxyapatite in a water-equivalent marrow at E keV.
double hydroxyapatiteSlope(double e_kev);

/// The effective energy (keV, 50-100) at which hydroxyapatite gives this slope (HU per
/// mg/cm^3); slopes outside 0.87-2.27 are clamped to the range's ends.
double effectiveEnergyForSlope(double hu_per_mg_cm3);

}  // namespace ctbmd::tissue
