#pragma once
// Statistics used by calibration and evaluation: distributions, linear fits (least squares
// and Huber M-estimation, with Eigen), correlation, agreement, ROC with DeLong's variance and
// proportions with Wilson intervals. Checked against scipy in tests/cli/test_evaluate.sh.
#include <array>
#include <string>
#include <vector>

namespace ctbmd::stats {

double normalCdf(double z);
double normalQuantile(double p);  // inverse of normalCdf, p in (0, 1)
/// Regularized incomplete beta function I_x(a, b).
double incompleteBeta(double a, double b, double x);
double studentTCdf(double t, double df);
double studentTQuantile(double p, double df);

double mean(const std::vector<double>& v);
double sd(const std::vector<double>& v);  // sample SD (n - 1)
double median(std::vector<double> v);

/// y = intercept + slope * x.
struct LinearFit {
  std::string method;  // ols | huber
  long n = 0;
  double df = 0;  // residual degrees of freedom
  double intercept = 0, slope = 0;
  double intercept_se = 0, slope_se = 0, cov = 0;  // cov: covariance of intercept and slope
  std::array<double, 2> intercept_ci95{0, 0}, slope_ci95{0, 0};
  double r2 = 0, residual_sd = 0;
  double huber_k = 0, scale = 0;  // huber: tuning constant and robust residual scale
  int iterations = 0;
  std::vector<double> weights;  // final weights of the points (1 for OLS)
  double predict(double x) const { return intercept + slope * x; }
  /// Standard error of the fitted mean at x (confidence band) and of a new observation
  /// at x (prediction interval).
  double meanSe(double x) const;
  double predictionSe(double x) const;
  double tCrit() const;  // two-sided 95 % t quantile for df
};

/// Ordinary (optionally weighted) least squares. Throws std::invalid_argument for fewer than
/// two distinct x values.
LinearFit fitOls(const std::vector<double>& x, const std::vector<double>& y,
                 const std::vector<double>& w = {});
/// Huber M-estimate by iteratively reweighted least squares, scale from the MAD of the
/// residuals, covariance as Huber's H1 (the statsmodels RLM default).
LinearFit fitHuber(const std::vector<double>& x, const std::vector<double>& y, double k = 1.345);

struct Correlation {
  long n = 0;
  double r = 0, p = 1;               // two-sided p of H0: r = 0 (t test, n - 2 df)
  std::array<double, 2> ci95{0, 0};  // Fisher z interval
};
Correlation pearson(const std::vector<double>& x, const std::vector<double>& y);

/// Agreement of predictions with references (differences = prediction - reference).
struct Agreement {
  long n = 0;
  double mae = 0, bias = 0, sd_diff = 0, rmse = 0;
  std::array<double, 2> bias_ci95{0, 0};
  double loa_low = 0, loa_high = 0;  // Bland-Altman 95 % limits: bias -+ 1.96 SD
};
Agreement agreement(const std::vector<double>& pred, const std::vector<double>& ref);

struct RocPoint {
  double threshold = 0, fpr = 0, tpr = 0;
};
struct Roc {
  long n_pos = 0, n_neg = 0;
  double auc = 0, auc_se = 0;
  std::array<double, 2> auc_ci95{0, 0};  // normal interval with DeLong's SE, clipped to [0, 1]
  std::vector<RocPoint> points;          // from (0,0) to (1,1)
};
/// ROC of `score` for the positive class (higher score = more likely positive); AUC and
/// its variance by DeLong, DeLong & Clarke-Pearson (1988).
Roc roc(const std::vector<double>& score, const std::vector<bool>& positive);

struct Proportion {
  long k = 0, n = 0;
  double value = 0;
  std::array<double, 2> ci95{0, 0};  // Wilson score interval
};
Proportion proportion(long k, long n);

}  // namespace ctbmd::stats
