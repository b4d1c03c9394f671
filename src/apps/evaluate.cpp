// ctbmd-evaluate: the statistics of the published tables, predictions against references.
#include "ctbmd/evaluate.hpp"

#include "app_common.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool(
      "ctbmd-evaluate",
      "Compare ctbmd-run predictions with references: BMD agreement (MAE, bias, Pearson r, "
      "regression, Bland-Altman), diagnosis (ROC/AUC with DeLong CI, sensitivity, specificity, "
      "PPV, NPV), confusion matrix, Dice and labelling accuracy; JSON, Markdown, PNG and SVG");
  std::string predictions, reference, outdir;
  ctbmd::EvaluateOptions opt;
  bool no_plots = false, no_dice = false;
  auto& app = tool.app();
  app.add_option("-p,--predictions", predictions, "ctbmd-run output folder (or its results.csv)")->required();
  app.add_option("-r,--reference", reference,
                 "Reference CSV (case_id, bmd or bmd_l1l2, optional category, labels, L1_bmd...) or a folder "
                 "of ctbmd-phantom *_truth.json files")
      ->required();
  app.add_option("-o,--output", outdir,
                 "Output folder: evaluation.json, evaluation.md, evaluation.html (plots inline, every case), "
                 "regression/bland_altman/roc .png + .svg")
      ->required();
  app.add_option("--title", opt.title, "Title of the tables and plots")->capture_default_str();
  app.add_flag("--no-plots", no_plots, "Do not draw plots (no gnuplot needed)");
  app.add_flag("--no-dice", no_dice, "Do not read label maps (faster)");
  return tool.main(argc, argv, [&] {
    bool force = tool.common().force;
    namespace fs = std::filesystem;
    fs::path out(outdir);
    ctbmd::checkWritable(out / "evaluation.json", force);
    ctbmd::checkWritable(out / "evaluation.md", force);
    ctbmd::checkWritable(out / "evaluation.html", force);
    opt.plots = !no_plots;
    opt.dice = !no_dice;
    std::vector<std::string> notes;
    auto cases = ctbmd::loadEvaluationCases(predictions, reference, notes);
    for (const auto& n : notes) spdlog::warn("{}", n);
    spdlog::info("{} case(s) matched", cases.size());
    auto ev = ctbmd::evaluate(cases, opt);
    ev["notes"] = notes;
    nlohmann::json params = {{"title", opt.title}, {"dice", opt.dice}, {"plots", opt.plots}};
    nlohmann::json inputs = {{"predictions", predictions}, {"reference", reference}};
    fs::path results =
        fs::is_directory(predictions) ? fs::path(predictions) / "results.csv" : fs::path(predictions);
    inputs["predictions_csv"] = ctbmd::fileInput(results);
    if (!fs::is_directory(reference)) inputs["reference_csv"] = ctbmd::fileInput(reference);
    if (opt.plots) {
      auto files = ctbmd::writeEvaluationPlots(cases, ev, out, opt.title, force);
      nlohmann::json names = nlohmann::json::array();
      for (const auto& f : files) names.push_back(f.filename().string());
      ev["plots"] = names;
    }
    ctbmd::writeStageJson(out / "evaluation.json", ev, "ctbmd.evaluation", inputs, params, force);
    std::string md = ctbmd::evaluationMarkdown(ev, opt.title);
    ctbmd::writeTextFile(out / "evaluation.md", md, force);
    ctbmd::writeTextFile(out / "evaluation.html", ctbmd::evaluationHtml(ev, md, out, opt.title), force);
    if (!tool.common().quiet) std::fputs(md.c_str(), stdout);
    return 0;
  });
}
