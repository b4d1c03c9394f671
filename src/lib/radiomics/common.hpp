#pragma once
// Shared pieces of the IBSI feature families: directions, aggregation of per-matrix feature
// vectors, and the naming of the aggregation variants.
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "ctbmd/radiomics.hpp"

namespace ctbmd::radiomics::detail {

using Offset = std::array<int, 3>;

// IBSI 3.6: the 4 in-plane and 13 volumetric directions at Chebyshev distance 1 (each
// direction once; co-occurrence is made symmetric by counting both orders).
inline const std::vector<Offset>& planeDirections() {
  static const std::vector<Offset> d{{1, 0, 0}, {1, 1, 0}, {0, 1, 0}, {-1, 1, 0}};
  return d;
}
inline const std::vector<Offset>& volumeDirections() {
  static const std::vector<Offset> d{{1, 0, 0},   {1, 1, 0},  {0, 1, 0}, {-1, 1, 0}, {0, 0, 1},
                                     {1, 0, 1},   {1, 1, 1},  {0, 1, 1}, {-1, 1, 1}, {-1, 0, 1},
                                     {-1, -1, 1}, {0, -1, 1}, {1, -1, 1}};
  return d;
}
// All neighbours at Chebyshev distance 1: 8 in-plane (z = 0) or 26.
std::vector<Offset> neighbourhood(bool volumetric);

// Mean of feature vectors over the matrices that were not empty (IBSI "averaged" variants);
// a feature undefined on one matrix (NaN, e.g. a correlation without variance) is left out of
// its own mean only.
class Averager {
 public:
  void add(const std::vector<double>& v);
  std::vector<double> mean(std::size_t n) const;  // NaN when nothing was added

 private:
  std::vector<double> sum_;
  std::vector<std::size_t> count_;
};

// Append `names[k] + suffix` = values[k].
void appendNamed(FeatureList& out, const std::string& prefix, const std::vector<std::string>& names,
                 const std::string& suffix, const std::vector<double>& values);

// A dense N_g x columns matrix of counts, rows are grey levels 1..N_g.
struct CountMatrix {
  int rows = 0, cols = 0;
  std::vector<double> v;
  CountMatrix() = default;
  CountMatrix(int r, int c) : rows(r), cols(c), v(std::size_t(r) * std::size_t(c), 0.0) {}
  double& at(int i, int j) { return v[std::size_t(i) * std::size_t(cols) + std::size_t(j)]; }
  double at(int i, int j) const { return v[std::size_t(i) * std::size_t(cols) + std::size_t(j)]; }
  double total() const;
  void add(const CountMatrix& o);  // grows columns as needed
  void grow(int c);
};

// The 16 features shared by the run-length, size-zone, distance-zone and dependence matrices
// (IBSI 3.7-3.9, 3.11): emphases, non-uniformities, percentage, variances, entropy (+ energy
// for NGLDM when `with_energy`). Column j of `m` is run length / size / distance / dependence
// j + 1. `voxels` is N_v for the percentage.
std::vector<double> zoneLikeFeatures(const CountMatrix& m, double voxels, bool with_energy);

inline double log2safe(double p) { return p > 0 ? std::log2(p) : 0.0; }

}  // namespace ctbmd::radiomics::detail
