#pragma once
// The cohort report: one self-contained HTML file a person opens in a browser (no network):
// the cohort table (sortable, filterable by status and flag, paged), every level's value and
// status, the distributions of BMD by category and per level with the rule's thresholds, the
// failures and flags with their reasons, and per case its QC pictures (files beside the report,
// linked by relative path and loaded lazily).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ctbmd/batch.hpp"

namespace ctbmd::report {

namespace fs = std::filesystem;

/// What the page shows of one case (from its record): the columns of results.csv the report
/// uses and the relative paths of its QC pictures from `report_dir` ("" when absent).
nlohmann::json caseRow(const batch::CaseRecord& rec, const fs::path& report_dir);

/// The report's HTML for `records` (rows in case-id order); `title` heads the page.
std::string cohortHtml(const std::vector<batch::CaseRecord>& records, const fs::path& report_dir,
                       const std::string& title);

/// Writes report_dir/report.html atomically.
void writeCohortReport(const fs::path& report_dir, const std::vector<batch::CaseRecord>& records,
                       const std::string& title);

}  // namespace ctbmd::report
