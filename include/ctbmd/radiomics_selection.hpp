#pragma once
// Feature selection for radiomics classifiers, in the hip seed's order (issue 19): z-scoring
// fitted on the training split, recursive feature elimination (RFE), maximum-relevance
// minimum-redundancy (mRMR) and LASSO with a cross-validated lambda. Pure Eigen; each step is
// defined so that an independent implementation (scikit-learn, a direct mRMR) reproduces it
// (tests/oracle/selection_oracle.py).
#include <Eigen/Dense>
#include <string>
#include <vector>

namespace ctbmd::radiomics {

struct Scaler {
  Eigen::VectorXd mean, sd;                     // per feature; sd 0 (a constant feature) scales by 1
  static Scaler fit(const Eigen::MatrixXd& x);  // population SD (ddof 0, as StandardScaler)
  Eigen::MatrixXd apply(const Eigen::MatrixXd& x) const;
};

// Ridge classifier coefficients as scikit-learn's RidgeClassifier(alpha): targets +1/-1 per
// class (one column for two classes), X and targets centred, (Xc'Xc + alpha I) W = Xc'Yc.
// Returns W (features x target columns).
Eigen::MatrixXd ridgeClassifierCoef(const Eigen::MatrixXd& x, const std::vector<int>& y, int classes,
                                    double alpha);

// RFE as scikit-learn's RFE(RidgeClassifier(alpha), n_features_to_select=keep, step): refit on
// the surviving columns, drop the `step` with the smallest sum of squared coefficients, until
// `keep` are left. Returns the kept column indices, ascending.
std::vector<int> recursiveFeatureElimination(const Eigen::MatrixXd& x, const std::vector<int>& y, int classes,
                                             int keep, int step, double alpha);

// mRMR (MID form): each feature discretised into `bins` equal-width bins over its range;
// mutual information in nats from the joint histogram; first the most relevant feature (MI with
// the class), then repeatedly the one maximising MI(f, class) - mean MI(f, chosen); ties to the
// lower index. Returns column indices in the order chosen.
std::vector<int> mrmr(const Eigen::MatrixXd& x, const std::vector<int>& y, int classes, int keep, int bins);

// LASSO (scikit-learn's objective: 1/(2n) |y - Xw - b|^2 + alpha |w|_1, intercept by centring)
// by cyclic coordinate descent to a change below `tol` in every coefficient.
Eigen::VectorXd lassoFit(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, double alpha,
                         const Eigen::VectorXd* warm = nullptr, double tol = 1e-12, int max_iter = 100000);

struct LassoCvResult {
  std::vector<double> alphas;  // descending, as LassoCV's grid
  std::vector<double> cv_mse;  // mean over folds, per alpha
  double alpha = 0;            // the one with the lowest cv_mse
  Eigen::VectorXd coef;        // refit on all rows at `alpha`
  double intercept = 0;
};
// LassoCV: the grid alpha_max * logspace(log10 eps, 0, n_alphas) (alpha_max = max|Xc'yc| / n),
// `folds` contiguous folds (KFold without shuffling; the first n % folds one row larger).
LassoCvResult lassoCv(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, int folds, int n_alphas = 100,
                      double eps = 1e-3);

}  // namespace ctbmd::radiomics
