#include "ctbmd/pipeline.hpp"

#include <fnmatch.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <system_error>

#include "ctbmd/canonical.hpp"
#include "ctbmd/clinical_rules.hpp"
#include "ctbmd/contrast.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/qc.hpp"
#include "ctbmd/version.hpp"

namespace ctbmd {

using nlohmann::json;

json scanInputs(const Scan& s) {
  json ct = {{"path", s.info.path.string()},
             {"sha256", s.info.sha256},
             {"format", s.info.format},
             {"orientation", s.info.orientation},
             {"disk_pixel_type", s.info.disk_pixel_type}};
  if (!s.info.series_uid.empty()) {
    ct["series_uid"] = s.info.series_uid;
    ct["modality"] = s.info.modality;
    ct["manufacturer"] = s.info.manufacturer;
    ct["model"] = s.info.model;
    ct["kvp"] = s.info.kvp;
    ct["kernel"] = s.info.kernel;
    for (const auto& [k, v] :
         {std::pair<const char*, const std::string*>{"series_instance_uid", &s.info.series_instance_uid},
          {"study_instance_uid", &s.info.study_instance_uid},
          {"slice_thickness_mm", &s.info.slice_thickness},
          {"contrast_agent", &s.info.contrast_agent}})
      if (!v->empty()) ct[k] = *v;
  }
  if (!s.info.warnings.empty()) ct["warnings"] = s.info.warnings;
  return {{"ct", ct}};
}

json fileInput(const fs::path& p) { return {{"path", p.string()}, {"sha256", sha256File(p)}}; }

void writeStageJson(const fs::path& path, json body, const std::string& schema, const json& inputs,
                    const json& params, bool force) {
  stamp(body, schema, 1, makeProvenance(inputs, params));
  writeJsonFile(path, body, force);
}

static fs::path siblingJson(const fs::path& nii) { return nii.parent_path() / (imageStem(nii) + ".json"); }
fs::path segmentJsonPath(const fs::path& nii) { return siblingJson(nii); }
fs::path roiJsonPath(const fs::path& nii) { return siblingJson(nii); }

void saveLocalize(const fs::path& json_path, const LocalizeResult& r, const Scan& scan,
                  const LocalizeParams& p, bool force) {
  json params = {{"method", p.method}};
  if (!p.level_hint.empty()) params["level_hint"] = p.level_hint;
  if (!p.model.empty()) {
    params["model"] = p.model;
    params["device"] = p.device;
  }
  json body = r.toJson();
  stamp(body, "ctbmd.localize", 1, makeProvenance(scanInputs(scan), params, r.model));
  writeJsonFile(json_path, body, force);
}

void saveSegment(const fs::path& nii_path, const SegmentResult& r, const Scan& scan,
                 const fs::path& localize_json, const SegmentParams& p, bool force) {
  fs::path jp = segmentJsonPath(nii_path);
  checkWritable(nii_path, force);
  checkWritable(jp, force);
  writeImage(r.labels.GetPointer(), nii_path, force);
  json inputs = scanInputs(scan);
  inputs["localize"] = fileInput(localize_json);
  json body = r.toJson();
  body["label_map"] = nii_path.filename().string();
  json params = {{"method", p.method}, {"fracture_ratio", p.fracture_ratio}};
  if (!p.model.empty()) {
    params["model"] = p.model;
    params["device"] = p.device;
  }
  json models = json::array();
  if (!r.model.empty()) models.push_back(r.model);
  stamp(body, "ctbmd.segment", 1, makeProvenance(inputs, params, models));
  writeJsonFile(jp, body, force);
}

void saveRoi(const fs::path& nii_path, const RoiResult& r, const Scan& scan, const fs::path& seg_path,
             const RoiParams& p, bool force) {
  fs::path jp = roiJsonPath(nii_path);
  checkWritable(nii_path, force);
  checkWritable(jp, force);
  writeImage(r.roi.GetPointer(), nii_path, force);
  json body = r.toJson();
  body["roi_map"] = nii_path.filename().string();
  json files = json::array();
  for (const auto& m : r.mosaics) {
    fs::path mn = nii_path.parent_path() / ("mosaic_" + m.first + ".nii.gz");
    fs::path mp = nii_path.parent_path() / ("mosaic_" + m.first + ".png");
    writeImage(m.second.GetPointer(), mn, force);
    std::vector<uint8_t> px(392 * 392);
    const float* f = m.second->GetBufferPointer();
    for (size_t i = 0; i < px.size(); ++i)  // window level 200, width 1000 HU
      px[i] = static_cast<uint8_t>(std::clamp((f[i] + 300.0f) / 1000.0f * 255.0f, 0.0f, 255.0f));
    writePng(mp, 392, 392, px, force);
    files.push_back({{"level", m.first}, {"nifti", mn.filename().string()}, {"png", mp.filename().string()}});
  }
  if (!files.empty()) body["mosaic_files"] = files;
  json crops = json::array();
  for (const auto& c : r.crops3d) {
    fs::path cn = nii_path.parent_path() / ("crop3d_" + c.first + ".nii.gz");
    writeImage(c.second.GetPointer(), cn, force);
    crops.push_back({{"level", c.first}, {"nifti", cn.filename().string()}});
  }
  if (!crops.empty()) body["crop3d_files"] = crops;
  json inputs = scanInputs(scan);
  inputs["segmentation"] = fileInput(seg_path);
  json params = {{"protocol", p.protocol}, {"min_voxels", p.min_voxels}};
  if (p.crop3d) params["crop3d"] = {{"spacing_mm", p.crop3d_spacing_mm}, {"size_dhw", p.crop3d_size}};
  writeStageJson(jp, body, "ctbmd.roi", inputs, params, force);
}

void saveBmd(const fs::path& json_path, const BmdResult& r, const fs::path& roi_json,
             const std::optional<fs::path>& calibration, const BmdParams& p, bool force) {
  json inputs = {{"roi", fileInput(roi_json)}};
  if (calibration) inputs["calibration"] = fileInput(*calibration);
  json params = {{"statistic", p.statistic}, {"method", p.method}};
  if (!p.model.empty()) {
    params["model"] = p.model;
    params["device"] = p.device;
  }
  json body = r.toJson();
  json models = json::array();
  if (!r.model.empty()) models.push_back(r.model);  // name, architecture, weights sha256
  stamp(body, "ctbmd.bmd", 1, makeProvenance(inputs, params, models));
  writeJsonFile(json_path, body, force);
}

RoiResult loadRoiWithMosaics(const fs::path& roi_json) {
  auto j = readJsonFile(roi_json);
  checkStageFile(j, roi_json.string(), "ctbmd.roi", 1, "", "");
  auto roi = RoiResult::fromJson(j, roi_json.string());
  if (j.contains("mosaic_files"))  // written beside roi.json
    for (const auto& m : j["mosaic_files"])
      roi.mosaics.emplace_back(m.at("level").get<std::string>(),
                               readSlice2D(roi_json.parent_path() / m.at("nifti").get<std::string>()));
  if (j.contains("crop3d_files"))
    for (const auto& m : j["crop3d_files"])
      roi.crops3d.emplace_back(m.at("level").get<std::string>(),
                               readFloatImage(roi_json.parent_path() / m.at("nifti").get<std::string>()));
  return roi;
}

void saveClassification(const fs::path& json_path, const ClassifyResult& r, const fs::path& bmd_json,
                        const ClassifyParams& p, bool force) {
  json params = {{"rule", p.rule}};
  if (!p.model.empty()) {
    params["model"] = p.model;
    params["device"] = p.device;
  }
  if (p.ref_mean) params["ref_mean"] = *p.ref_mean;
  if (p.ref_sd) params["ref_sd"] = *p.ref_sd;
  if (!p.contrast_phase.empty()) params["contrast_phase"] = p.contrast_phase;
  json body = r.toJson();
  json models = json::array();
  if (r.details.contains("model")) models.push_back(r.details["model"]);
  stamp(body, "ctbmd.classification", 1, makeProvenance({{"bmd", fileInput(bmd_json)}}, params, models));
  writeJsonFile(json_path, body, force);
}

void saveCalibration(const fs::path& json_path, const CalibrationFit& fit, const json& inputs,
                     const json& params, bool force) {
  writeStageJson(json_path, fit.toJson(), "ctbmd.calibration", inputs, params, force);
}

CaseResult runCase(const fs::path& input, const std::string& case_id, const fs::path& dir,
                   const PipelineOptions& opt, const Calibration& cal, bool force) {
  CaseResult cr;
  cr.case_id = case_id;
  cr.input = input;
  auto t0 = std::chrono::steady_clock::now();
  auto lap = [&, last = t0](const char* name) mutable {
    auto now = std::chrono::steady_clock::now();
    cr.stage_seconds[name] = std::chrono::duration<double>(now - last).count();
    last = now;
  };
  try {
    Scan scan = readScan(input, opt.read);
    lap("read");
    cr.scan = scan.info;
    if (cr.scan.slice_thickness.empty()) {  // no DICOM header: the slice spacing stands in
      char b[32];
      std::snprintf(b, sizeof b, "%.3g", canonicalOf(scan).image->GetSpacing()[2]);
      cr.scan.slice_thickness = b;
    }
    auto loc = localize(scan, opt.localize);
    for (const auto& l : loc.levels)
      if (l.status != LevelStatus::Missing)
        cr.level_confidence[l.name] = l.confidence;  // none for a missing level
    if (loc.status != SpineStatus::NoSpine) {
      loc.contrast = estimateContrastPhase(scan, loc);
      cr.contrast = loc.contrast;
    }
    cr.localize_method = loc.method;
    cr.anchors = loc.anchors.used;
    cr.flags = loc.flags;
    saveLocalize(dir / "localize.json", loc, scan, opt.localize, force);
    {
      QcExtras qx;
      qx.case_id = case_id;
      writePngRgb(dir / "localize_qc.png", renderCaseQc(scan, loc, qx), force);
    }
    lap("localize");
    if (loc.status != SpineStatus::Named) {
      cr.status = caseStatusOf(loc.status);
      cr.reason = loc.reason;
    }
    // No column: nothing to segment or measure; the case ends here with its reason.
    if (loc.status == SpineStatus::NoSpine) {
      cr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return cr;
    }
    auto seg = segment(scan, loc, opt.segment);
    saveSegment(dir / "segmentation.nii.gz", seg, scan, dir / "localize.json", opt.segment, force);
    lap("segment");
    auto roi = extractRoi(scan, seg, opt.roi);
    saveRoi(dir / "roi.nii.gz", roi, scan, dir / "segmentation.nii.gz", opt.roi, force);
    lap("roi");
    Calibration case_cal = cal;
    std::optional<fs::path> cal_path = opt.calibration;
    if (!opt.calibrate.empty()) {
      CalibrationFit fit;
      json params = {{"source", opt.calibrate}};
      if (opt.calibrate == "rods") {
        auto def = PhantomDefinition::load(opt.phantom);
        fit = calibrateRods(scan, def);
        params["phantom"] = def.name;
      } else if (opt.calibrate == "internal") {
        auto table = opt.tissues ? TissueTable::fromJson(readJsonFile(*opt.tissues), opt.tissues->string())
                                 : TissueTable::builtin();
        fit = calibrateInternal(scan, loc, table);
      } else {
        throw UsageError("--calibrate must be rods or internal");
      }
      cal_path = dir / "calibration.json";
      saveCalibration(*cal_path, fit, scanInputs(scan), params, force);
      case_cal = Calibration::fromJson(fit.toJson(), cal_path->string());
      lap("calibrate");
    }
    for (const auto& w : calibrationMismatch(case_cal, scanInputs(scan)["ct"]))
      spdlog::warn("{}: {}", case_id, w);
    if (!case_cal.calibrated && rules::kvpOffNominal(cr.scan.kvp))
      case_cal = Calibration::nominalFor(cr.scan.kvp);
    auto bmd = estimateBmd(roi, case_cal, opt.bmd);
    saveBmd(dir / "bmd.json", bmd, dir / "roi.json", cal_path, opt.bmd, force);
    ClassifyParams cp = opt.classify;
    cp.detected_contrast = loc.contrast;
    auto cls = rules::parseRule(cp.rule) == rules::Rule::RadiomicsRf
                   ? classifyRadiomicsRule(scan, seg.labels.GetPointer(), cp)
                   : classify(bmd, cp, &roi);
    for (const auto& f : cls.flags)
      if (std::find(cr.flags.begin(), cr.flags.end(), f) == cr.flags.end()) cr.flags.push_back(f);
    saveClassification(dir / "classification.json", cls, dir / "bmd.json", opt.classify, force);
    if (!cls.probabilities.empty())
      writePngRgb(dir / "classification_qc.png", renderClassificationQc(cls), force);
    {
      QcExtras qx;
      qx.case_id = case_id;
      qx.segmentation = seg.labels.GetPointer();
      qx.roi = roi.roi.GetPointer();
      qx.bmd = &bmd;
      qx.case_flags = cr.flags;
      writePngRgb(dir / "qc.png", renderCaseQc(scan, loc, qx), force);
    }
    lap("bmd+classify");
    cr.bmd = bmd;
    cr.classification = cls;
    cr.rule = opt.classify.rule;
    // The nominal 0.8 x HU conversion is a 120 kVp figure: at other tube voltages bone HU differ.
    if (bmd.method == "calibration" && !bmd.calibration.calibrated && rules::kvpOffNominal(cr.scan.kvp)) {
      cr.flags.push_back("nominal_conversion_off_kvp");
      spdlog::warn(
          "{}: uncalibrated BMD (nominal 0.8 x HU, a 120 kVp conversion) on a {} kVp scan: bone HU "
          "rise as the tube voltage falls; calibrate (rods, internal) before comparing",
          case_id, cr.scan.kvp);
    }
    if (!bmd.bmd_l1l2 && cr.reason.empty()) cr.reason = "no L1-L2 BMD: " + bmd.levels_reason;
    if (cls.category == "unavailable" && cr.reason.empty() && cls.details.contains("reason") &&
        cls.details["reason"].is_string())
      cr.reason = "no category (" + cls.rule + "): " + cls.details["reason"].get<std::string>();
    for (const auto& l : bmd.levels)
      for (const auto& f : l.flags)
        if (f != "missing" && f != "uncalibrated" &&
            std::find(cr.flags.begin(), cr.flags.end(), l.name + ":" + f) == cr.flags.end())
          cr.flags.push_back(l.name + ":" + f);
  } catch (const Error& e) {
    cr.status = CaseStatus::Error;
    cr.error = e.what();
    cr.exit_code = static_cast<int>(e.code());
  } catch (const itk::ExceptionObject& e) {
    cr.status = CaseStatus::Error;
    cr.error = "'" + input.string() + "': ITK: " + e.GetDescription();
    cr.exit_code = static_cast<int>(ExitCode::Processing);
  } catch (const std::bad_alloc&) {
    cr.status = CaseStatus::Error;
    cr.error = "'" + input.string() +
               "': ran out of memory (ctbmd-run's --case-memory limit, or the machine's); give the case "
               "more memory or run it alone";
    cr.exit_code = static_cast<int>(ExitCode::Processing);
  } catch (const std::system_error& e) {
    // a thread whose stack cannot be mapped: the address-space limit, as for bad_alloc
    const bool memory =
        e.code() == std::errc::resource_unavailable_try_again || e.code() == std::errc::not_enough_memory;
    cr.status = CaseStatus::Error;
    cr.error =
        "'" + input.string() + "': " +
        (memory ? std::string("ran out of memory starting a thread (ctbmd-run's --case-memory limit, or "
                              "the machine's); give the case more memory or run it alone")
                : std::string(e.what()));
    cr.exit_code = static_cast<int>(ExitCode::Processing);
  } catch (const std::exception& e) {
    cr.status = CaseStatus::Error;
    cr.error = "'" + input.string() + "': " + e.what();
    cr.exit_code = static_cast<int>(ExitCode::Processing);
  }
  cr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return cr;
}

std::vector<fs::path> discoverInputs(const std::vector<fs::path>& paths,
                                     const std::vector<std::string>& exclude) {
  std::vector<fs::path> out;
  auto excluded = [&](const fs::path& p) {
    std::string n = p.filename().string();
    for (const auto& g : exclude)
      if (fnmatch(g.c_str(), n.c_str(), 0) == 0) {
        spdlog::debug("skipped '{}' (matches the exclude pattern '{}')", p.string(), g);
        return true;
      }
    return false;
  };
  size_t missing = 0;
  for (const auto& p : paths) {
    std::error_code ec;
    const auto st = fs::status(p, ec);
    if (!fs::exists(st)) {
      // One mistyped path must not cost the batch its other cases: it becomes an error row
      // (reading it fails with "does not exist"), unless no input exists at all.
      spdlog::warn("input '{}' does not exist{}", p.string(),
                   fs::is_symlink(fs::symlink_status(p, ec)) ? " (a dangling or looping symbolic link)" : "");
      out.push_back(p);
      ++missing;
      continue;
    }
    if (fs::is_regular_file(st)) {
      out.push_back(p);  // named explicitly: never excluded
      continue;
    }
    if (!fs::is_directory(st)) throw InputError("input '" + p.string() + "' is neither a file nor a folder");
    std::vector<fs::path> found;
    if (isDicomDirectory(p)) found.push_back(p);
    for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) {
        spdlog::warn("cannot list '{}' completely: {}", p.string(), ec.message());
        break;
      }
      const auto& e = *it;
      // Every query with an error_code: a link to itself (ELOOP) or to nothing must be
      // skipped with a word, never end the discovery.
      std::error_code eq;
      const bool is_dir = e.is_directory(eq), is_file = !is_dir && e.is_regular_file(eq);
      if (!is_dir && !is_file) {
        if (e.is_symlink(eq) && isImageFile(e.path()))
          spdlog::warn("skipped '{}': a symbolic link that leads nowhere ({})", e.path().string(),
                       eq ? eq.message() : "dangling");
        continue;
      }
      if (is_dir) {
        if (excluded(e.path())) {
          it.disable_recursion_pending();
          continue;
        }
        if (isDicomDirectory(e.path())) found.push_back(e.path());
      } else if (isImageFile(e.path()) && !excluded(e.path())) {
        found.push_back(e.path());
      }
    }
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  // DICOM slices named one by one (a shell glob over a series folder) are one series, read
  // from its folder; never a case per slice.
  {
    std::map<fs::path, std::vector<size_t>> by_dir;
    for (size_t i = 0; i < out.size(); ++i)
      if (std::find(paths.begin(), paths.end(), out[i]) != paths.end() && isDicomFile(out[i]))
        by_dir[fs::absolute(out[i]).parent_path()].push_back(i);
    std::vector<bool> drop(out.size(), false);
    std::vector<std::pair<size_t, fs::path>> replace;
    for (const auto& [dir, idx] : by_dir) {
      size_t in_dir = 0;
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(dir, ec)) in_dir += isDicomFile(e.path());
      const std::string hint = "ctbmd reads a DICOM series from its folder: name the folder ('" +
                               dir.string() + "')" + " instead of its files";
      if (idx.size() < in_dir)
        throw UsageError(std::to_string(idx.size()) + " of the " + std::to_string(in_dir) +
                         " DICOM files in '" + dir.string() + "' were named one by one; " + hint +
                         ", or copy the slices you mean into a folder of their own");
      spdlog::info("{} DICOM files named in '{}': read as one series from the folder", idx.size(),
                   dir.string());
      replace.push_back({idx.front(), dir});
      for (size_t k = 1; k < idx.size(); ++k) drop[idx[k]] = true;
    }
    for (const auto& [i, dir] : replace) out[i] = dir;
    std::vector<fs::path> kept;
    for (size_t i = 0; i < out.size(); ++i)
      if (!drop[i]) kept.push_back(out[i]);
    out = std::move(kept);
  }
  if (missing == paths.size() && !paths.empty()) {
    std::string list;
    for (const auto& p : paths) list += (list.empty() ? "'" : ", '") + p.string() + "'";
    throw InputError("no input exists: " + list + "; check the paths");
  }
  return out;
}

namespace {
std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}
}  // namespace

std::string resultsCsvHeader() {
  std::string h = "case_id,input,status,reason,error";
  for (int l : kReportedLevels) h += "," + levelName(l) + "_status";
  for (int l : kReportedLevels) h += "," + levelName(l) + "_hu";
  for (int l : kReportedLevels) h += "," + levelName(l) + "_bmd";
  h += ",bmd_l1l2,bmd_l1l2_se,category,rule,statistic,calibration,calibration_source,calibration_dropped,"
       "levels_used,anchors,flags,protocol,"
       "contrast_phase,contrast_confidence,aorta_hu,ivc_hu,renal_excretion_mm2,renal_nephrogram,kvp,kernel,"
       "slice_thickness_mm,"
       "series_instance_uid,"
       "study_instance_uid,contrast_agent,ctbmd_version,"
       "seconds";
  return h;
}

namespace {
std::string calibrationKind(const CaseResult& r) {
  if (!r.bmd) return "";
  if (r.bmd->method != "calibration") return "learned";
  return r.bmd->calibration.calibrated ? "calibrated" : "uncalibrated";
}
// rods | paired | internal for a fitted calibration; "nominal" for the uncalibrated 0.8 x HU
std::string calibrationSource(const CaseResult& r) {
  if (!r.bmd || r.bmd->method != "calibration") return "";
  return r.bmd->calibration.calibrated ? r.bmd->calibration.raw.value("source_kind", std::string("file"))
                                       : "nominal";
}
std::string joined(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}
}  // namespace

std::string resultsCsvRow(const CaseResult& r) {
  std::string row = csvField(r.case_id) + "," + csvField(r.input.string()) + "," + toString(r.status) + "," +
                    csvField(r.reason) + "," + csvField(r.error);
  for (int l : kReportedLevels) {
    const LevelBmd* b = r.bmd ? r.bmd->find(l) : nullptr;
    row += "," + (b ? csvField(levelValidity(*b))
                    : (r.status == CaseStatus::Error ? std::string() : std::string("missing")));
  }
  // HU and BMD of a level that is not usable stay in bmd.json, never in the table.
  for (int l : kReportedLevels) {
    const LevelBmd* b = r.bmd ? r.bmd->find(l) : nullptr;
    row += "," + (b && b->usable ? num(b->hu) : std::string());
  }
  for (int l : kReportedLevels) {
    const LevelBmd* b = r.bmd ? r.bmd->find(l) : nullptr;
    row += "," + (b && b->usable ? num(b->bmd) : std::string());
  }
  row += "," + (r.bmd && r.bmd->bmd_l1l2 ? num(*r.bmd->bmd_l1l2) : std::string());
  row += "," + (r.bmd && r.bmd->bmd_l1l2_se ? num(*r.bmd->bmd_l1l2_se) : std::string());
  // a category only for a case whose levels were named (never for no_spine / levels_not_named)
  row += "," + (r.classification && r.status == CaseStatus::Ok ? r.classification->category : std::string());
  std::string dropped;
  if (r.bmd && r.bmd->calibration.calibrated && r.bmd->calibration.raw.contains("points"))
    for (const auto& pt : r.bmd->calibration.raw["points"])
      if (!pt.value("used", true))
        dropped += (dropped.empty() ? "" : "; ") + pt.value("name", std::string()) + ": " +
                   pt.value("note", std::string());
  row += "," + r.rule + "," + (r.bmd ? r.bmd->statistic : "") + "," + csvField(calibrationKind(r)) + "," +
         csvField(calibrationSource(r)) + "," + csvField(dropped);
  row += "," + (r.bmd ? joined(r.bmd->levels_used, "+") : std::string()) + "," + r.anchors + "," +
         csvField(joined(r.flags, ";")) + "," + (r.bmd ? r.bmd->protocol : "");
  row += "," + (r.contrast ? r.contrast->phase : std::string()) + "," +
         (r.contrast ? num(r.contrast->confidence) : std::string()) + "," +
         (r.contrast && r.contrast->aorta_hu ? num(*r.contrast->aorta_hu) : std::string()) + "," +
         (r.contrast && r.contrast->ivc_hu ? num(*r.contrast->ivc_hu) : std::string()) + "," +
         (r.contrast && r.contrast->kidneys.value("slices_searched", 0) > 0
              ? num(r.contrast->kidneys.value("excretion_mm2", 0.0))
              : std::string()) +
         "," +
         (r.contrast && r.contrast->kidneys.value("slices_searched", 0) > 0 &&
                  r.contrast->kidneys.contains("nephrogram")
              ? r.contrast->kidneys["nephrogram"].value("pattern", std::string())
              : std::string());
  row += "," + csvField(r.scan.kvp) + "," + csvField(r.scan.kernel) + "," + csvField(r.scan.slice_thickness) +
         "," + csvField(r.scan.series_instance_uid) + "," + csvField(r.scan.study_instance_uid) + "," +
         csvField(r.scan.contrast_agent) + "," + std::string(CTBMD_VERSION) + "," + num(r.seconds);
  return row;
}

std::string levelsCsvHeader() {
  return "case_id,level,status,usable,flags,confidence,hu_mean,hu_median,hu_sd,voxels,bmd,bmd_se,bmd_ci95_lo,"
         "bmd_ci95_hi,protocol,statistic,calibration,rule";
}

std::string levelsCsvRows(const CaseResult& r) {
  std::string out;
  for (int label : kReportedLevels) {
    const LevelBmd* b = r.bmd ? r.bmd->find(label) : nullptr;
    const bool usable = b && b->usable;
    std::string row = csvField(r.case_id) + "," + levelName(label) + ",";
    if (r.status == CaseStatus::Error) {
      row += "error,false,,,,,,,,,,,,,,";
    } else {
      const auto c = r.level_confidence.find(levelName(label));
      row += csvField(b ? levelValidity(*b) : std::string("missing")) + "," + (usable ? "true" : "false") +
             "," + csvField(b ? joined(b->flags, ";") : std::string()) + "," +
             (c != r.level_confidence.end() ? num(c->second) : std::string()) + ",";
      const bool measured = b && b->voxels > 0;
      row += (measured ? num(b->hu_mean) : "") + "," + (measured ? num(b->hu_median) : "") + "," +
             (measured ? num(b->hu_sd) : "") + "," + (measured ? std::to_string(b->voxels) : "") + ",";
      row += (measured ? num(b->bmd) : "") + "," + (measured ? num(b->bmd_se) : "") + "," +
             (measured ? num(b->bmd_ci95[0]) : "") + "," + (measured ? num(b->bmd_ci95[1]) : "") + ",";
      row += (r.bmd ? r.bmd->protocol : "") + "," + (r.bmd ? r.bmd->statistic : "") + "," +
             csvField(calibrationKind(r)) + "," + r.rule;
    }
    out += row + "\n";
  }
  return out;
}

void logSummary(const CaseResult& r) {
  std::string st;
  for (auto it = r.stage_seconds.begin(); it != r.stage_seconds.end(); ++it)
    st += " " + it.key() + " " + num(it.value().get<double>()) + " s";
  spdlog::debug("{}: stage times:{} (total {:.2f} s)", r.case_id, st, r.seconds);
  if (r.status == CaseStatus::Error) {
    spdlog::error("{}: {}", r.case_id, r.error);
    return;
  }
  if (r.status != CaseStatus::Ok) spdlog::warn("{}: {}: {}", r.case_id, toString(r.status), r.reason);
  if (!r.bmd) return;
  for (const auto& l : r.bmd->levels) {
    if (l.hu == 0 && !l.usable) {
      spdlog::info("{} {:>3}: --", r.case_id, l.name);
      continue;
    }
    spdlog::info("{} {:>3}: {:7.1f} HU -> {:6.1f} mg/cm3{}{}", r.case_id, l.name, l.hu, l.bmd,
                 l.usable ? "" : " (not used: ",
                 l.usable ? "" : (l.flags.empty() ? std::string("?)") : l.flags[0] + ")"));
  }
  spdlog::info("{}: L1-L2 {} mg/cm3 ({}), category {}{}", r.case_id,
               r.bmd->bmd_l1l2 ? num(*r.bmd->bmd_l1l2) : std::string("n/a"), r.bmd->levels_reason,
               r.classification->category, r.bmd->calibration.calibrated ? "" : " [uncalibrated]");
}

}  // namespace ctbmd
