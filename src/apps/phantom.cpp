// ctbmd-phantom: writes a synthetic CT with exact ground truth.
#include "ctbmd/phantom.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>

#include "ctbmd/cli.hpp"
#include "ctbmd/dataset.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/provenance.hpp"

namespace {
// The phantom's label map in the VerSe conventions: whole vertebrae (body + posterior elements)
// with the VerSe number, sub-regions (49 body border, 50 body interior, 41 posterior elements)
// and body centroids.
void writeVerseMasks(const ctbmd::PhantomResult& res, const std::filesystem::path& vert_path,
                     const std::filesystem::path& subreg_path, const std::filesystem::path& ctd_path,
                     bool force) {
  using namespace ctbmd::phantom_labels;
  using ctbmd::kSacrum;
  using ctbmd::kT13;
  const auto* lab = res.labels.GetPointer();
  auto sz = lab->GetLargestPossibleRegion().GetSize();
  auto make = [&] {
    auto m = ctbmd::LabelImage::New();
    m->CopyInformation(lab);
    m->SetRegions(lab->GetLargestPossibleRegion());
    m->Allocate();
    m->FillBuffer(0);
    return m;
  };
  auto vert = make(), sub = make();
  const uint8_t* l = lab->GetBufferPointer();
  uint8_t *v = vert->GetBufferPointer(), *r = sub->GetBufferPointer();
  auto isBody = [](int x) { return (x >= 1 && x <= 25) || x == kT13; };
  const long sx = 1, sy = static_cast<long>(sz[0]), sz2 = static_cast<long>(sz[0] * sz[1]);
  std::map<int, std::array<double, 4>> acc;
  size_t i = 0;
  for (size_t z = 0; z < sz[2]; ++z)
    for (size_t y = 0; y < sz[1]; ++y)
      for (size_t x = 0; x < sz[0]; ++x, ++i) {
        int a = l[i];
        if (isBody(a)) {
          v[i] = static_cast<uint8_t>(a);
          bool border = x == 0 || y == 0 || z == 0 || x + 1 == sz[0] || y + 1 == sz[1] || z + 1 == sz[2];
          for (long s : {sx, sy, sz2})
            if (!border && (l[i + s] != a || l[i - s] != a)) border = true;
          r[i] = border ? 49 : 50;
          auto& c = acc[a];
          c[0] += static_cast<double>(x), c[1] += static_cast<double>(y), c[2] += static_cast<double>(z),
              c[3] += 1;
        } else if (a == kSacrum || a == kPosteriorOffset + kSacrum) {
          v[i] = static_cast<uint8_t>(kSacrum);
        } else if (false) {
          v[i] = static_cast<uint8_t>(a);
        } else if (a > kPosteriorOffset && isBody(a - kPosteriorOffset)) {
          v[i] = static_cast<uint8_t>(a - kPosteriorOffset);
          r[i] = 41;
        }
      }
  std::map<int, std::array<double, 3>> ctd;
  for (const auto& [label, c] : acc) {
    itk::ContinuousIndex<double, 3> ci;
    for (int k = 0; k < 3; ++k) ci[k] = c[k] / c[3];
    itk::Point<double, 3> pt;
    lab->TransformContinuousIndexToPhysicalPoint(ci, pt);
    ctd[label] = {pt[0], pt[1], pt[2]};
  }
  ctbmd::writeImage(vert.GetPointer(), vert_path, force);
  ctbmd::writeImage(sub.GetPointer(), subreg_path, force);
  ctbmd::writeVerseCentroids(ctd_path, lab, ctd, force);
}
}  // namespace

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool("ctbmd-phantom",
                        "Write a digital QCT phantom: a synthetic abdominal CT (HU), its "
                        "ground-truth label map and a truth JSON");
  ctbmd::PhantomParams p;
  std::string out, size = "512x512", levels = "T11-S1", bmd_list, rods;
  auto& app = tool.app();
  app.add_option("-o,--output", out,
                 "Output CT path (.nii.gz); writes <stem>_seg.nii.gz and <stem>_truth.json beside it")
      ->required();
  app.add_option("--size", size, "Matrix NXxNY or NXxNYxNZ (NZ: slices; default: enough for --levels)")
      ->capture_default_str();
  app.add_option("--pixel", p.pixel_mm, "In-plane spacing, mm (0.5-1.0 typical)")->capture_default_str();
  app.add_option("--slice", p.slice_mm, "Slice thickness = spacing, mm (0.625-5)")->capture_default_str();
  app.add_option("--orientation", p.orientation, "Storage orientation code (LPS, RAS, PIR, LAS, ...)")
      ->capture_default_str();
  app.add_option("--levels", levels,
                 "Covered levels TOP-BOTTOM, e.g. T10-S1, T12-L2 or C6-S1 (neck to sacrum: the first rib "
                 "pair in view)")
      ->capture_default_str();
  app.add_option("--seed", p.seed, "Random seed (same seed, same scan)")->capture_default_str();
  app.add_option(
         "--population", p.population,
         "normal | osteopenia | osteoporosis (L1-L2 mean inside the class, away from its thresholds) | "
         "cohort (drawn across the thresholds: mean 110, SD 35 mg/cm3) | random (one of the three classes)")
      ->capture_default_str();
  app.add_option("--bmd", bmd_list, "Per-level BMD overrides, e.g. L1=95,L2=88 (mg/cm3 HA)");
  app.add_option("--cal-intercept", p.cal_intercept_hu, "Scanner calibration: HU at 0 mg/cm3")
      ->capture_default_str();
  app.add_option("--cal-slope", p.cal_slope_hu, "Scanner calibration: HU per mg/cm3")->capture_default_str();
  app.add_option("--noise", p.noise_sd, "Image noise SD, HU")->capture_default_str();
  app.add_option("--texture", p.texture_sd, "Trabecular texture amplitude, HU")->capture_default_str();
  app.add_option(
         "--texture-model", p.texture_model,
         "uniform (one texture for all densities) | density (coarser, higher-contrast texture as BMD "
         "falls: scale and amplitude x clamp(1 + (150 - BMD) / 150, 0.6, 2); a stylised model, not bone)")
      ->check(ctbmd::cli::oneOf({"uniform", "density"}))
      ->capture_default_str();
  app.add_option("--ribs", p.rib_pairs, "Rib pairs: 11, 12 or 13 (13 adds a rib-bearing T13)")
      ->capture_default_str();
  app.add_flag("--lstv", p.lumbar6, "Lumbosacral transitional vertebra: six lumbar vertebrae");
  app.add_option("--lumbar-rib", p.lumbar_rib_mm,
                 "A rib pair on L1 of this length in mm along the body wall (a 13th pair on a lumbar "
                 "vertebra; rudimentary < 40, a T12 rib ~95)")
      ->check(CLI::Range(0.0, 300.0));
  app.add_option("--fracture", p.fracture_level, "Compression fracture in this level (e.g. L2)");
  app.add_option("--fracture-loss", p.fracture_height_loss, "Anterior height loss of the fracture (0-0.6)")
      ->capture_default_str();
  app.add_option("--metal", p.metal_level, "Pedicle screws (with streaks) in this level");
  app.add_option("--contrast", p.contrast, "none | arterial | portal-venous")->capture_default_str();
  app.add_option("--rods", rods, "Calibration rods under the patient, mg/cm3 HA, e.g. 0,50,100,200");
  bool no_rot = false;
  app.add_flag("--straight", no_rot, "No random rotations (a straight, unrotated spine)");
  std::string layout = "files", subject;
  app.add_option("--layout", layout,
                 "files: -o is the CT path; verse: -o is a dataset root and the case is written in the "
                 "VerSe layout (rawdata/sub-ID/sub-ID_ct.nii.gz, derivatives/sub-ID/ with "
                 "_seg-vert_msk, _seg-subreg_msk (49/50 body, 41 posterior elements), _seg-subreg_ctd.json "
                 "body centroids, _truth.json) for ctbmd-train")
      ->check(CLI::IsMember({"files", "verse"}))
      ->capture_default_str();
  app.add_option("--subject", subject, "--layout verse: subject id (default: ph<seed>)");

  return tool.main(argc, argv, [&] {
    p.rotations = !no_rot;
    {
      int a = 0, b = 0, c = 0;
      char x1 = 0, x2 = 0;
      std::istringstream s(size);
      s >> a >> x1 >> b;
      if (!s || x1 != 'x') throw ctbmd::UsageError("--size must look like 512x512 or 512x512x400");
      if (s >> x2 >> c) p.nz = c;
      p.nx = a;
      p.ny = b;
    }
    auto dash = levels.find('-');
    if (dash == std::string::npos) throw ctbmd::UsageError("--levels must look like T11-S1");
    p.top = levels.substr(0, dash);
    p.bottom = levels.substr(dash + 1);
    auto splitList = [](const std::string& s) {
      std::vector<std::string> v;
      std::string t;
      std::istringstream in(s);
      while (std::getline(in, t, ','))
        if (!t.empty()) v.push_back(t);
      return v;
    };
    for (const auto& kv : splitList(bmd_list)) {
      auto eq = kv.find('=');
      if (eq == std::string::npos) throw ctbmd::UsageError("--bmd entries must look like L1=95");
      p.bmd[kv.substr(0, eq)] = std::stod(kv.substr(eq + 1));
    }
    for (const auto& r : splitList(rods)) p.rods.push_back(std::stod(r));

    namespace fs = std::filesystem;
    const bool verse = layout == "verse";
    if (subject.empty()) subject = "ph" + std::to_string(p.seed);
    if (verse && (subject.find('/') != std::string::npos || subject.find('_') != std::string::npos))
      throw ctbmd::UsageError(
          "--subject must not contain '/' or '_' (VerSe file names use '_' between entities)");
    const std::string key = "sub-" + subject;
    fs::path ct_path(out), seg_path, truth_path, vert_path, subreg_path, ctd_path;
    if (verse) {
      fs::path raw = fs::path(out) / "rawdata" / key, der = fs::path(out) / "derivatives" / key;
      ct_path = raw / (key + "_ct.nii.gz");
      vert_path = der / (key + "_seg-vert_msk.nii.gz");
      subreg_path = der / (key + "_seg-subreg_msk.nii.gz");
      ctd_path = der / (key + "_seg-subreg_ctd.json");
      seg_path = der / (key + "_seg-ctbmd_msk.nii.gz");
      truth_path = der / (key + "_truth.json");
    } else {
      std::string stem = ctbmd::imageStem(ct_path);
      seg_path = ct_path.parent_path() / (stem + "_seg.nii.gz");
      truth_path = ct_path.parent_path() / (stem + "_truth.json");
    }
    bool force = tool.common().force;
    for (const auto& f : {ct_path, seg_path, truth_path, vert_path, subreg_path, ctd_path})
      if (!f.empty()) ctbmd::checkWritable(f, force);
    if (verse) {
      fs::create_directories(ct_path.parent_path());
      fs::create_directories(seg_path.parent_path());
    }

    auto t0 = std::chrono::steady_clock::now();
    auto res = ctbmd::makePhantom(p);
    auto t1 = std::chrono::steady_clock::now();
    ctbmd::writeImage(res.ct.GetPointer(), ct_path, force);
    ctbmd::writeImage(res.labels.GetPointer(), seg_path, force);
    nlohmann::json params = {{"size", size},
                             {"pixel_mm", p.pixel_mm},
                             {"slice_mm", p.slice_mm},
                             {"orientation", p.orientation},
                             {"levels", levels},
                             {"seed", p.seed},
                             {"population", p.population},
                             {"bmd", p.bmd},
                             {"cal_intercept_hu", p.cal_intercept_hu},
                             {"cal_slope_hu", p.cal_slope_hu},
                             {"noise_sd", p.noise_sd},
                             {"texture_sd", p.texture_sd},
                             {"rib_pairs", p.rib_pairs},
                             {"lstv", p.lumbar6},
                             {"lumbar_rib_mm", p.lumbar_rib_mm},
                             {"fracture", p.fracture_level},
                             {"fracture_loss", p.fracture_height_loss},
                             {"metal", p.metal_level},
                             {"contrast", p.contrast},
                             {"rods", p.rods},
                             {"straight", no_rot}};
    if (verse) writeVerseMasks(res, vert_path, subreg_path, ctd_path, force);
    nlohmann::json truth = res.truth;
    truth["files"] = {{"ct", ct_path.filename().string()}, {"labels", seg_path.filename().string()}};
    if (verse) truth["files"]["ct"] = fs::relative(ct_path, truth_path.parent_path()).string();
    ctbmd::stamp(truth, "ctbmd.phantom-truth", 1, ctbmd::makeProvenance(nlohmann::json::object(), params));
    ctbmd::writeJsonFile(truth_path, truth, force);
    auto t2 = std::chrono::steady_clock::now();
    auto sz = res.ct->GetLargestPossibleRegion().GetSize();
    spdlog::info("phantom {}x{}x{} ({}, {}) generated in {:.2f} s, written in {:.2f} s: {}", sz[0], sz[1],
                 sz[2], p.orientation, truth["population"].get<std::string>(),
                 std::chrono::duration<double>(t1 - t0).count(),
                 std::chrono::duration<double>(t2 - t1).count(), ct_path.string());
    return 0;
  });
}
