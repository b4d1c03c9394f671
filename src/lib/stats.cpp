// Statistics for calibration and evaluation (see ctbmd/stats.hpp).
#include "ctbmd/stats.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace ctbmd::stats {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Continued fraction of the incomplete beta function (modified Lentz's method).
double betaContinuedFraction(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-15;
  double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::abs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 1000; ++m) {
    double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (std::abs(del - 1) < eps) break;
  }
  return h;
}
}  // namespace

double normalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double normalQuantile(double p) {
  if (!(p > 0 && p < 1)) return p == 0 ? -INFINITY : (p == 1 ? INFINITY : kNaN);
  // Acklam's rational approximation, then one Halley step on erfc for full precision.
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  double q, x;
  if (p < 0.02425) {
    q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - 0.02425) {
    q = p - 0.5;
    double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  double e = normalCdf(x) - p;
  double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

double incompleteBeta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  double lbeta = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b);
  double front = std::exp(lbeta + a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * betaContinuedFraction(a, b, x) / a;
  return 1 - front * betaContinuedFraction(b, a, 1 - x) / b;
}

double studentTCdf(double t, double df) {
  if (std::isinf(t)) return t > 0 ? 1 : 0;
  double x = df / (df + t * t);
  double tail = 0.5 * incompleteBeta(df / 2, 0.5, x);
  return t > 0 ? 1 - tail : tail;
}

double studentTQuantile(double p, double df) {
  if (!(p > 0 && p < 1) || !(df > 0)) return kNaN;
  if (p == 0.5) return 0;
  // Bracket, then bisect: the CDF is monotone; 200 halvings reach double precision.
  double lo = -1, hi = 1;
  while (studentTCdf(lo, df) > p) lo *= 2;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (int i = 0; i < 200 && hi - lo > 1e-14 * std::max(1.0, std::abs(lo)); ++i) {
    double mid = 0.5 * (lo + hi);
    (studentTCdf(mid, df) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double sd(const std::vector<double>& v) {
  if (v.size() < 2) return kNaN;
  double m = mean(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

double median(std::vector<double> v) {
  if (v.empty()) return kNaN;
  size_t h = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(h), v.end());
  double m = v[h];
  if (v.size() % 2 == 0) m = 0.5 * (m + *std::max_element(v.begin(), v.begin() + static_cast<long>(h)));
  return m;
}

double LinearFit::tCrit() const { return df > 0 ? studentTQuantile(0.975, df) : kNaN; }

double LinearFit::meanSe(double x) const {
  return std::sqrt(std::max(0.0, intercept_se * intercept_se + 2 * x * cov + x * x * slope_se * slope_se));
}

double LinearFit::predictionSe(double x) const {
  double m = meanSe(x);
  return std::sqrt(m * m + residual_sd * residual_sd);
}

namespace {
void checkInput(const std::vector<double>& x, const std::vector<double>& y, const std::vector<double>& w) {
  if (x.size() != y.size() || (!w.empty() && w.size() != x.size()))
    throw std::invalid_argument("linear fit: x, y (and weights) differ in length");
  if (x.size() < 2) throw std::invalid_argument("linear fit needs at least two points");
  if (*std::min_element(x.begin(), x.end()) == *std::max_element(x.begin(), x.end()))
    throw std::invalid_argument("linear fit: all x values are equal; the slope is undetermined");
}

void finishIntervals(LinearFit& f) {
  double t = f.tCrit();
  f.intercept_ci95 = {f.intercept - t * f.intercept_se, f.intercept + t * f.intercept_se};
  f.slope_ci95 = {f.slope - t * f.slope_se, f.slope + t * f.slope_se};
}

double rSquared(const std::vector<double>& x, const std::vector<double>& y, double a, double b) {
  double my = mean(y), ss_tot = 0, ss_res = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    ss_tot += (y[i] - my) * (y[i] - my);
    ss_res += (y[i] - a - b * x[i]) * (y[i] - a - b * x[i]);
  }
  return ss_tot > 0 ? 1 - ss_res / ss_tot : 1.0;
}
}  // namespace

LinearFit fitOls(const std::vector<double>& x, const std::vector<double>& y, const std::vector<double>& w) {
  checkInput(x, y, w);
  const long n = static_cast<long>(x.size());
  Eigen::MatrixXd X(n, 2);
  Eigen::VectorXd Y(n), W(n);
  for (long i = 0; i < n; ++i) {
    X(i, 0) = 1;
    X(i, 1) = x[static_cast<size_t>(i)];
    Y(i) = y[static_cast<size_t>(i)];
    W(i) = w.empty() ? 1.0 : w[static_cast<size_t>(i)];
  }
  Eigen::VectorXd sw = W.array().sqrt();
  Eigen::MatrixXd Xw = sw.asDiagonal() * X;
  Eigen::VectorXd Yw = sw.asDiagonal() * Y;
  Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(Xw);
  Eigen::Vector2d beta = qr.solve(Yw);
  Eigen::VectorXd res = Yw - Xw * beta;
  LinearFit f;
  f.method = "ols";
  f.n = n;
  f.df = static_cast<double>(n - 2);
  f.intercept = beta(0);
  f.slope = beta(1);
  double s2 = f.df > 0 ? res.squaredNorm() / f.df : 0.0;
  Eigen::Matrix2d cov = s2 * (Xw.transpose() * Xw).inverse();
  f.intercept_se = std::sqrt(cov(0, 0));
  f.slope_se = std::sqrt(cov(1, 1));
  f.cov = cov(0, 1);
  f.residual_sd = std::sqrt(s2);
  f.r2 = rSquared(x, y, f.intercept, f.slope);
  f.weights.assign(x.size(), 1.0);
  if (!w.empty()) f.weights = w;
  finishIntervals(f);
  return f;
}

LinearFit fitHuber(const std::vector<double>& x, const std::vector<double>& y, double k) {
  checkInput(x, y, {});
  const size_t n = x.size();
  if (n < 3) throw std::invalid_argument("a robust fit needs at least three points");
  LinearFit f = fitOls(x, y);
  std::vector<double> w(n, 1.0), r(n);
  double scale = 0;
  int it = 0;
  for (; it < 100; ++it) {
    for (size_t i = 0; i < n; ++i) r[i] = y[i] - f.predict(x[i]);
    std::vector<double> ar(n);
    for (size_t i = 0; i < n; ++i) ar[i] = std::abs(r[i] - median(r));
    scale = median(ar) / 0.6744897501960817;  // MAD -> SD under normality
    if (!(scale > 0)) break;                  // (near) exact fit through most points
    for (size_t i = 0; i < n; ++i) {
      double u = std::abs(r[i]) / scale;
      w[i] = u <= k ? 1.0 : k / u;
    }
    LinearFit g = fitOls(x, y, w);
    double change =
        std::abs(g.intercept - f.intercept) + std::abs(g.slope - f.slope) * (1 + std::abs(mean(x)));
    f = g;
    if (change < 1e-10 * (1 + std::abs(f.intercept))) break;
  }
  // Huber's H1 covariance: K^2 * [sum psi^2 / (n - p)] / [mean psi']^2 * s^2 * (X'X)^-1.
  f.method = "huber";
  f.huber_k = k;
  f.iterations = it + 1;
  f.scale = scale;
  f.weights = w;
  f.r2 = rSquared(x, y, f.intercept, f.slope);
  if (scale > 0) {
    const double p = 2;
    double s_psi2 = 0, m_dpsi = 0;
    for (size_t i = 0; i < n; ++i) {
      double u = (y[i] - f.predict(x[i])) / scale;
      double psi = std::clamp(u, -k, k);
      s_psi2 += psi * psi;
      m_dpsi += std::abs(u) <= k ? 1.0 : 0.0;
    }
    m_dpsi /= static_cast<double>(n);
    if (m_dpsi > 0) {
      double var_dpsi = m_dpsi * (1 - m_dpsi);
      double K = 1 + p / static_cast<double>(n) * var_dpsi / (m_dpsi * m_dpsi);
      Eigen::Matrix2d xtx = Eigen::Matrix2d::Zero();
      for (size_t i = 0; i < n; ++i) {
        Eigen::Vector2d xi(1.0, x[i]);
        xtx += xi * xi.transpose();
      }
      Eigen::Matrix2d cov =
          K * K * (s_psi2 / (static_cast<double>(n) - p)) / (m_dpsi * m_dpsi) * scale * scale * xtx.inverse();
      f.intercept_se = std::sqrt(cov(0, 0));
      f.slope_se = std::sqrt(cov(1, 1));
      f.cov = cov(0, 1);
    }
    f.residual_sd = scale;
  }
  finishIntervals(f);
  return f;
}

Correlation pearson(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw std::invalid_argument("pearson: x and y differ in length");
  Correlation c;
  c.n = static_cast<long>(x.size());
  if (c.n < 3) {
    c.r = kNaN;
    c.p = kNaN;
    c.ci95 = {kNaN, kNaN};
    return c;
  }
  double mx = mean(x), my = mean(y), sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  c.r = sxx > 0 && syy > 0 ? std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0) : kNaN;
  double df = static_cast<double>(c.n - 2);
  if (std::abs(c.r) >= 1) {
    c.p = 0;
  } else {
    double t = c.r * std::sqrt(df / (1 - c.r * c.r));
    c.p = 2 * studentTCdf(-std::abs(t), df);
  }
  if (c.n > 3 && std::abs(c.r) < 1) {
    double z = std::atanh(c.r), se = 1 / std::sqrt(static_cast<double>(c.n - 3));
    double q = normalQuantile(0.975);
    c.ci95 = {std::tanh(z - q * se), std::tanh(z + q * se)};
  } else {
    c.ci95 = {c.r, c.r};
  }
  return c;
}

Agreement agreement(const std::vector<double>& pred, const std::vector<double>& ref) {
  if (pred.size() != ref.size()) throw std::invalid_argument("agreement: lengths differ");
  Agreement a;
  a.n = static_cast<long>(pred.size());
  if (a.n == 0) return a;
  std::vector<double> d(pred.size());
  double abs_sum = 0, sq = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    d[i] = pred[i] - ref[i];
    abs_sum += std::abs(d[i]);
    sq += d[i] * d[i];
  }
  a.mae = abs_sum / a.n;
  a.rmse = std::sqrt(sq / a.n);
  a.bias = mean(d);
  a.sd_diff = a.n > 1 ? sd(d) : 0.0;
  double t = a.n > 1 ? studentTQuantile(0.975, static_cast<double>(a.n - 1)) : kNaN;
  double se = a.sd_diff / std::sqrt(static_cast<double>(a.n));
  a.bias_ci95 = {a.bias - t * se, a.bias + t * se};
  a.loa_low = a.bias - 1.96 * a.sd_diff;
  a.loa_high = a.bias + 1.96 * a.sd_diff;
  return a;
}

Roc roc(const std::vector<double>& score, const std::vector<bool>& positive) {
  if (score.size() != positive.size()) throw std::invalid_argument("roc: lengths differ");
  Roc r;
  std::vector<double> pos, neg;
  for (size_t i = 0; i < score.size(); ++i) (positive[i] ? pos : neg).push_back(score[i]);
  r.n_pos = static_cast<long>(pos.size());
  r.n_neg = static_cast<long>(neg.size());
  if (pos.empty() || neg.empty()) {
    r.auc = r.auc_se = kNaN;
    r.auc_ci95 = {kNaN, kNaN};
    return r;
  }
  // DeLong's structural components: V10 per positive, V01 per negative.
  std::vector<double> v10(pos.size(), 0.0), v01(neg.size(), 0.0);
  for (size_t i = 0; i < pos.size(); ++i)
    for (size_t j = 0; j < neg.size(); ++j) {
      double psi = pos[i] > neg[j] ? 1.0 : (pos[i] == neg[j] ? 0.5 : 0.0);
      v10[i] += psi;
      v01[j] += psi;
    }
  for (auto& v : v10) v /= static_cast<double>(neg.size());
  for (auto& v : v01) v /= static_cast<double>(pos.size());
  r.auc = mean(v10);
  double s10 = pos.size() > 1 ? std::pow(sd(v10), 2) : 0.0;
  double s01 = neg.size() > 1 ? std::pow(sd(v01), 2) : 0.0;
  r.auc_se = std::sqrt(s10 / static_cast<double>(pos.size()) + s01 / static_cast<double>(neg.size()));
  double q = normalQuantile(0.975);
  r.auc_ci95 = {std::max(0.0, r.auc - q * r.auc_se), std::min(1.0, r.auc + q * r.auc_se)};
  // Curve: thresholds at every distinct score, from high (nothing positive) to low.
  std::vector<double> th = score;
  std::sort(th.begin(), th.end(), std::greater<double>());
  th.erase(std::unique(th.begin(), th.end()), th.end());
  r.points.push_back({INFINITY, 0.0, 0.0});
  for (double t : th) {
    long tp = 0, fp = 0;
    for (double s : pos) tp += s >= t;
    for (double s : neg) fp += s >= t;
    r.points.push_back({t, static_cast<double>(fp) / r.n_neg, static_cast<double>(tp) / r.n_pos});
  }
  return r;
}

Proportion proportion(long k, long n) {
  Proportion p;
  p.k = k;
  p.n = n;
  if (n <= 0) {
    p.value = kNaN;
    p.ci95 = {kNaN, kNaN};
    return p;
  }
  double ph = static_cast<double>(k) / n, z = normalQuantile(0.975), z2 = z * z;
  double den = 1 + z2 / n, centre = (ph + z2 / (2.0 * n)) / den;
  double half = z * std::sqrt(ph * (1 - ph) / n + z2 / (4.0 * n * n)) / den;
  p.value = ph;
  p.ci95 = {std::max(0.0, centre - half), std::min(1.0, centre + half)};
  return p;
}

}  // namespace ctbmd::stats
