#include "radiomics/common.hpp"

#include <algorithm>
#include <limits>

namespace ctbmd::radiomics::detail {

std::vector<Offset> neighbourhood(bool volumetric) {
  std::vector<Offset> out;
  const int zr = volumetric ? 1 : 0;
  for (int dz = -zr; dz <= zr; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx)
        if (dx != 0 || dy != 0 || dz != 0) out.push_back({dx, dy, dz});
  return out;
}

void Averager::add(const std::vector<double>& v) {
  if (sum_.size() < v.size()) {
    sum_.resize(v.size(), 0.0);
    count_.resize(v.size(), 0);
  }
  for (std::size_t k = 0; k < v.size(); ++k)
    if (!std::isnan(v[k])) {
      sum_[k] += v[k];
      ++count_[k];
    }
}

std::vector<double> Averager::mean(std::size_t n) const {
  std::vector<double> out(n, std::numeric_limits<double>::quiet_NaN());
  for (std::size_t k = 0; k < n && k < sum_.size(); ++k)
    if (count_[k] > 0) out[k] = sum_[k] / double(count_[k]);
  return out;
}

void appendNamed(FeatureList& out, const std::string& prefix, const std::vector<std::string>& names,
                 const std::string& suffix, const std::vector<double>& values) {
  for (std::size_t k = 0; k < names.size(); ++k)
    out.push_back({prefix + names[k] + suffix,
                   k < values.size() ? values[k] : std::numeric_limits<double>::quiet_NaN()});
}

double CountMatrix::total() const {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

void CountMatrix::grow(int c) {
  if (c <= cols) return;
  std::vector<double> nv(std::size_t(rows) * std::size_t(c), 0.0);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) nv[std::size_t(i) * std::size_t(c) + std::size_t(j)] = at(i, j);
  v.swap(nv);
  cols = c;
}

void CountMatrix::add(const CountMatrix& o) {
  if (rows == 0) {
    *this = o;
    return;
  }
  grow(o.cols);
  for (int i = 0; i < o.rows && i < rows; ++i)
    for (int j = 0; j < o.cols; ++j) at(i, j) += o.at(i, j);
}

std::vector<double> zoneLikeFeatures(const CountMatrix& m, double voxels, bool with_energy) {
  const double ns = m.total();
  const std::size_t n_out = with_energy ? 17 : 16;
  if (ns <= 0) return std::vector<double>(n_out, std::numeric_limits<double>::quiet_NaN());
  double se = 0, le = 0, lg = 0, hg = 0, slg = 0, shg = 0, llg = 0, lhg = 0;
  std::vector<double> row(std::size_t(m.rows), 0.0), col(std::size_t(m.cols), 0.0);
  double mu_i = 0, mu_j = 0, entropy = 0, energy = 0;
  for (int r = 0; r < m.rows; ++r) {
    const double i = r + 1, i2 = i * i;
    for (int c = 0; c < m.cols; ++c) {
      const double x = m.at(r, c);
      if (x == 0) continue;
      const double j = c + 1, j2 = j * j;
      se += x / j2;
      le += x * j2;
      lg += x / i2;
      hg += x * i2;
      slg += x / (i2 * j2);
      shg += x * i2 / j2;
      llg += x * j2 / i2;
      lhg += x * i2 * j2;
      row[std::size_t(r)] += x;
      col[std::size_t(c)] += x;
      const double p = x / ns;
      mu_i += i * p;
      mu_j += j * p;
      entropy -= p * std::log2(p);
      energy += p * p;
    }
  }
  double glnu = 0, jnu = 0, var_i = 0, var_j = 0;
  for (double x : row) glnu += x * x;
  for (double x : col) jnu += x * x;
  for (int r = 0; r < m.rows; ++r)
    for (int c = 0; c < m.cols; ++c) {
      const double x = m.at(r, c);
      if (x == 0) continue;
      const double p = x / ns;
      var_i += (r + 1 - mu_i) * (r + 1 - mu_i) * p;
      var_j += (c + 1 - mu_j) * (c + 1 - mu_j) * p;
    }
  std::vector<double> out{se / ns,     le / ns,  lg / ns,   hg / ns,          slg / ns, shg / ns,
                          llg / ns,    lhg / ns, glnu / ns, glnu / (ns * ns), jnu / ns, jnu / (ns * ns),
                          ns / voxels, var_i,    var_j,     entropy};
  if (with_energy) out.push_back(energy);
  return out;
}

}  // namespace ctbmd::radiomics::detail
