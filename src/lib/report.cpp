#include "ctbmd/report.hpp"

#include <algorithm>
#include <cstdlib>

#include "ctbmd/clinical_rules.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/provenance.hpp"

namespace ctbmd::report {

using nlohmann::json;

namespace {

std::string htmlEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

// JSON inside <script>: "</" would end the element, so it is written "<\/".
std::string scriptSafe(const std::string& j) {
  std::string o;
  o.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    if (j[i] == '<' && i + 1 < j.size() && (j[i + 1] == '/' || j[i + 1] == '!')) {
      o += "\\u003c";
      continue;
    }
    o += j[i];
  }
  return o;
}

std::string relativeIfExists(const fs::path& file, const fs::path& base) {
  std::error_code ec;
  if (file.empty() || !fs::exists(file, ec)) return "";
  const fs::path a = fs::absolute(file, ec).lexically_normal(), b = fs::absolute(base, ec).lexically_normal();
  return a.lexically_relative(b).generic_string();
}

std::string value(const json& row, const std::string& col) {
  const auto it = row.find(col);
  return it != row.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json number(const std::string& s) {
  if (s.empty()) return nullptr;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return end && *end == '\0' ? json(v) : json(nullptr);
}

// The page: styles, the layout and the script that draws it from the data.
constexpr const char* kPage = R"PAGE(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#c9d1dc;font-size:12px}
main{padding:16px 24px}section{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:0 0 16px;padding:12px 16px}
h2{font-size:16px;margin:0 0 10px}.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #dde1e7;border-radius:6px;padding:8px 12px;min-width:110px}.card b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e6e9ee;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f2f5;cursor:pointer;user-select:none;white-space:nowrap;position:sticky;top:0}th.sorted-asc::after{content:" \25B2"}th.sorted-desc::after{content:" \25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}.lv-ok{color:#11632b}.lv-partial{color:#8a6100;background:#fff6d6}.lv-unusable{color:#a11a1a;background:#fde7e7}.lv-missing{color:#9aa3ae}
.st-ok{color:#11632b}.st-error{color:#a11a1a;font-weight:600}.st-no_spine,.st-levels_not_named{color:#8a6100}
.cat-normal{color:#11632b}.cat-osteopenia{color:#8a6100}.cat-osteoporosis{color:#a11a1a;font-weight:600}
.flag{display:inline-block;background:#eef1f5;border-radius:3px;padding:0 4px;margin:1px;font-size:11px}
.controls{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin-bottom:8px}.controls label{font-size:12px;color:#4a5566}
.pager button{margin:0 2px}.reason{color:#4a5566;font-size:12px;min-width:320px;max-width:520px}td.num{white-space:nowrap}
.legend{font-size:12px;color:#4a5566;margin:4px 0}
.gallery{display:flex;flex-wrap:wrap;gap:12px}.gallery figure{margin:0;width:320px}.gallery img{width:320px;border:1px solid #dde1e7;background:#000}
.gallery figcaption{font-size:12px}svg text{font-size:11px;fill:#1d2430}a{color:#1f5fbf}
</style></head>
<body data-render="pending">
<header><h1>@TITLE@</h1><p id="meta"></p></header>
<main>
<section><h2>Cohort</h2><div class="cards" id="cards"></div></section>
<section><h2>Distributions</h2><div id="plots"></div></section>
<section><h2>Cases</h2>
<div class="controls">
<label>status <select id="f-status"><option value="">all</option></select></label>
<label>flag <select id="f-flag"><option value="">any</option></select></label>
<label>case <input id="f-text" type="search" placeholder="id or text"></label>
<span id="count"></span><span class="pager" id="pager"></span>
</div>
<div class="legend">levels: BMD in mg/cm³ of a usable level (<span class="lv-ok">found</span>); <span class="lv-partial">partial</span> or
<span class="lv-unusable">✗ unusable</span> levels carry no value here (hover for the reason; <code>flags</code> names it); – not in view.
Click a column to sort; the case links open its QC picture.</div>
<div style="overflow:auto"><table id="cases"><thead><tr id="head"></tr></thead><tbody id="rows"></tbody></table></div>
</section>
<section><h2>Failures and cases without named levels</h2><div id="failures"></div></section>
<section><h2>Flags</h2><div id="flags"></div></section>
<section><h2>QC pictures <small>(the cases on this page of the table)</small></h2><div class="gallery" id="gallery"></div></section>
</main>
<script type="application/json" id="data">@DATA@</script>
<script>
"use strict";
const t0 = performance.now();
window.addEventListener("error", e => {
  const b = document.body; b.dataset.errors = (b.dataset.errors || "") + e.message + ";"; });
const D = JSON.parse(document.getElementById("data").textContent);
const C = D.cases, L = D.levels, PAGE = 100;
const el = (tag, attrs, ...kids) => { const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === "class") e.className = v; else e.setAttribute(k, v); }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
  return e; };
const fmt = v => v == null ? "" : v.toFixed(1);
const lvClass = s => !s ? "lv-missing" : s === "found" ? "lv-ok" : s.startsWith("partial") ? "lv-partial" :
  s.startsWith("unusable") ? "lv-unusable" : "lv-missing";
document.getElementById("meta").textContent =
  `${C.length} case(s) · ctbmd ${D.version} · written ${D.generated}`;
// --- summary cards
const count = (f) => C.reduce((n, c) => n + (f(c) ? 1 : 0), 0);
const cards = document.getElementById("cards");
for (const [name, n] of [["cases", C.length], ["ok", count(c => c.status === "ok")],
    ["no spine", count(c => c.status === "no_spine")], ["levels not named", count(c => c.status === "levels_not_named")],
    ["failed", count(c => c.status === "error")], ["normal", count(c => c.category === "normal")],
    ["osteopenia", count(c => c.category === "osteopenia")], ["osteoporosis", count(c => c.category === "osteoporosis")],
    ["flagged", count(c => c.flags.length > 0)]])
  cards.append(el("div", {class: "card"}, el("b", {}, n), name));
// --- distributions (SVG)
const NS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs, text) => { const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text != null) e.textContent = text; return e; };
const catColor = {normal: "#2e9d57", osteopenia: "#d9a400", osteoporosis: "#c62828", other: "#8c96a3"};
function histogram() {
  const xs = C.filter(c => c.status === "ok" && c.bmd != null);
  const W = 560, H = 220, m = {l: 44, r: 12, t: 22, b: 34};
  const s = svg("svg", {width: W, height: H, role: "img", "aria-label": "L1-L2 BMD by category"});
  s.append(svg("text", {x: m.l, y: 14}, `L1–L2 BMD (mg/cm³) of ${xs.length} case(s), by category`));
  if (!xs.length) { s.append(svg("text", {x: m.l, y: H / 2}, "no case with an L1–L2 BMD")); return s; }
  const lo = 0, hi = xs.reduce((a, c) => Math.max(a, c.bmd), 250) * 1.02, bw = 10, nb = Math.ceil((hi - lo) / bw);
  const bins = Array.from({length: nb}, () => ({normal: 0, osteopenia: 0, osteoporosis: 0, other: 0}));
  for (const c of xs) { const k = Math.min(nb - 1, Math.max(0, Math.floor((c.bmd - lo) / bw)));
    bins[k][catColor[c.category] ? c.category : "other"]++; }
  const top = Math.max(1, ...bins.map(b => b.normal + b.osteopenia + b.osteoporosis + b.other));
  const X = v => m.l + (v - lo) / (hi - lo) * (W - m.l - m.r), Y = n => H - m.b - n / top * (H - m.t - m.b);
  bins.forEach((b, k) => { let acc = 0;
    for (const cat of ["osteoporosis", "osteopenia", "normal", "other"]) { if (!b[cat]) continue;
      s.append(svg("rect", {x: X(lo + k * bw) + 0.5, y: Y(acc + b[cat]), width: Math.max(1, X(bw) - X(0) - 1),
        height: Y(acc) - Y(acc + b[cat]), fill: catColor[cat]}, null)); acc += b[cat]; } });
  s.append(svg("line", {x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, stroke: "#1d2430"}));
  for (let v = 0; v <= hi; v += 50) { s.append(svg("text", {x: X(v) - 8, y: H - m.b + 14}, v)); }
  s.append(svg("text", {x: 4, y: m.t + 8}, top)); s.append(svg("text", {x: 4, y: H - m.b}, 0));
  for (const th of D.thresholds) {
    s.append(svg("line", {x1: X(th.value), x2: X(th.value), y1: m.t, y2: H - m.b, stroke: "#1d2430", "stroke-dasharray": "4 3"}));
    s.append(svg("text", {x: X(th.value) + 3, y: m.t + 10}, th.label)); }
  return s;
}
function perLevel() {
  const W = 560, H = 220, m = {l: 44, r: 12, t: 22, b: 34};
  const s = svg("svg", {width: W, height: H, role: "img", "aria-label": "BMD per level"});
  s.append(svg("text", {x: m.l, y: 14}, "usable levels' BMD (mg/cm³): median, quartiles, 5–95 %"));
  const vals = L.map(l => C.map(c => c.levels[l]).filter(v => v && v.status === "found" && v.bmd != null)
    .map(v => v.bmd).sort((a, b) => a - b));
  const hi = vals.reduce((a, v) => Math.max(a, v.length ? v[v.length - 1] : 0), 250) * 1.05;
  const Y = v => H - m.b - v / hi * (H - m.t - m.b), step = (W - m.l - m.r) / L.length;
  const q = (a, p) => a[Math.min(a.length - 1, Math.max(0, Math.round(p * (a.length - 1))))];
  for (let v = 0; v <= hi; v += 50) s.append(svg("text", {x: 8, y: Y(v) + 4}, v));
  for (const th of D.thresholds) s.append(svg("line", {x1: m.l, x2: W - m.r, y1: Y(th.value), y2: Y(th.value),
    stroke: "#8c96a3", "stroke-dasharray": "4 3"}));
  L.forEach((l, k) => { const a = vals[k], x = m.l + step * (k + 0.5);
    s.append(svg("text", {x: x - 10, y: H - m.b + 14}, l)); s.append(svg("text", {x: x - 10, y: H - 4}, `n=${a.length}`));
    if (!a.length) return;
    s.append(svg("line", {x1: x, x2: x, y1: Y(q(a, .05)), y2: Y(q(a, .95)), stroke: "#1d2430"}));
    s.append(svg("rect", {x: x - 14, y: Y(q(a, .75)), width: 28, height: Math.max(1, Y(q(a, .25)) - Y(q(a, .75))),
      fill: "#9cc3ea", stroke: "#1d2430"}));
    s.append(svg("line", {x1: x - 14, x2: x + 14, y1: Y(q(a, .5)), y2: Y(q(a, .5)), stroke: "#1d2430", "stroke-width": 2})); });
  return s;
}
document.getElementById("plots").append(histogram(), perLevel());
// --- the cohort table
const cols = [["id", "case"], ["status", "status"], ["category", "category"], ["bmd", "L1–L2 BMD"],
  ...L.map(l => ["lv:" + l, l]), ["phase", "contrast"], ["calibration", "calibration"], ["flags", "flags"], ["reason", "reason / error"]];
const key = (c, k) => k.startsWith("lv:") ? (c.levels[k.slice(3)] || {}).bmd : k === "flags" ? c.flags.join(" ") :
  k === "reason" ? (c.error || c.reason) : c[k];
let sortKey = "id", sortDir = 1, page = 0, view = C.slice();
const head = document.getElementById("head");
for (const [k, name] of cols) { const th = el("th", {"data-key": k}, name);
  th.addEventListener("click", () => { sortDir = sortKey === k ? -sortDir : 1; sortKey = k; page = 0; update(); });
  head.append(th); }
const statusSel = document.getElementById("f-status"), flagSel = document.getElementById("f-flag"),
  textIn = document.getElementById("f-text");
for (const s of [...new Set(C.map(c => c.status))].sort()) statusSel.append(el("option", {value: s}, s));
const flagCounts = {};
for (const c of C) for (const f of c.flags) flagCounts[f] = (flagCounts[f] || 0) + 1;
for (const f of Object.keys(flagCounts).sort()) flagSel.append(el("option", {value: f}, `${f} (${flagCounts[f]})`));
for (const x of [statusSel, flagSel, textIn]) x.addEventListener("input", () => { page = 0; update(); });
// report.html#status=error&flag=L1:partial&q=text opens filtered (a link to share)
for (const [k, v] of new URLSearchParams(location.hash.slice(1))) {
  if (k === "status") statusSel.value = v; else if (k === "flag") flagSel.value = v; else if (k === "q") textIn.value = v; }
function cell(c, k) {
  if (k === "id") { const src = c.qc || c.localize_qc; return el("td", {}, src ? el("a", {href: src}, c.id) : c.id); }
  if (k === "status") return el("td", {class: "st-" + c.status}, c.status);
  if (k === "category") return el("td", {class: "cat-" + c.category}, c.category);
  if (k === "bmd") return el("td", {class: "num"}, c.bmd == null ? "" : `${fmt(c.bmd)}${c.bmd_se != null ? " ± " + fmt(c.bmd_se) : ""}`);
  if (k.startsWith("lv:")) { const v = c.levels[k.slice(3)] || {};
    return el("td", {class: "num " + lvClass(v.status), title: `${v.status || "missing"}${v.hu != null ? ", " + fmt(v.hu) + " HU" : ""}`},
      v.bmd != null ? fmt(v.bmd) : (!v.status || v.status === "missing" ? "–" : v.status.startsWith("unusable") ? "✗" : v.status)); }
  if (k === "flags") return el("td", {}, ...c.flags.map(f => el("span", {class: "flag"}, f)));
  if (k === "reason") return el("td", {class: "reason"}, c.error || c.reason);
  return el("td", {}, c[k]);
}
function update() {
  const st = statusSel.value, fl = flagSel.value, tx = textIn.value.trim().toLowerCase();
  view = C.filter(c => (!st || c.status === st) && (!fl || c.flags.includes(fl)) &&
    (!tx || (c.id + " " + c.reason + " " + c.error).toLowerCase().includes(tx)));
  view.sort((a, b) => { const x = key(a, sortKey), y = key(b, sortKey);
    if (x == null || x === "") return 1; if (y == null || y === "") return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * sortDir; });
  for (const th of head.children) th.className = th.dataset.key === sortKey ? (sortDir > 0 ? "sorted-asc" : "sorted-desc") : "";
  const pages = Math.max(1, Math.ceil(view.length / PAGE)); page = Math.min(page, pages - 1);
  const rows = document.getElementById("rows"); rows.replaceChildren();
  const shown = view.slice(page * PAGE, page * PAGE + PAGE);
  for (const c of shown) rows.append(el("tr", {}, ...cols.map(([k]) => cell(c, k))));
  document.getElementById("count").textContent = `${view.length} of ${C.length} case(s)`;
  const pager = document.getElementById("pager"); pager.replaceChildren();
  if (pages > 1) { const b = (label, p) => { const x = el("button", {}, label); x.disabled = p < 0 || p >= pages || p === page;
      x.addEventListener("click", () => { page = p; update(); }); return x; };
    pager.append(b("‹", page - 1), ` page ${page + 1} of ${pages} `, b("›", page + 1)); }
  const g = document.getElementById("gallery"); g.replaceChildren();
  for (const c of shown) { const src = c.qc || c.localize_qc; if (!src) continue;
    g.append(el("figure", {}, el("a", {href: src}, el("img", {src, loading: "lazy", alt: "QC picture of " + c.id})),
      el("figcaption", {}, `${c.id} — ${c.status}${c.category ? ", " + c.category : ""}`))); }
}
update();
// --- failures and unnamed cases, flags
const bad = C.filter(c => c.status !== "ok");
document.getElementById("failures").append(bad.length ? el("table", {},
  el("thead", {}, el("tr", {}, el("th", {}, "case"), el("th", {}, "status"), el("th", {}, "why"))),
  el("tbody", {}, ...bad.slice(0, 1000).map(c => el("tr", {}, el("td", {}, c.id), el("td", {class: "st-" + c.status}, c.status),
    el("td", {class: "reason"}, c.error || c.reason))))) : "none", bad.length > 1000 ? ` (first 1000 of ${bad.length}; filter the table for the rest)` : "");
const fk = Object.keys(flagCounts).sort((a, b) => flagCounts[b] - flagCounts[a]);
document.getElementById("flags").append(fk.length ? el("table", {},
  el("thead", {}, el("tr", {}, el("th", {}, "flag"), el("th", {}, "cases"))),
  el("tbody", {}, ...fk.map(f => el("tr", {}, el("td", {}, f), el("td", {class: "num"}, flagCounts[f])))) ) : "none");
document.body.dataset.renderMs = (performance.now() - t0).toFixed(0);
document.body.dataset.rows = String(document.getElementById("rows").children.length);
document.body.dataset.render = "ok";
</script>
</body></html>
)PAGE";

}  // namespace

json caseRow(const batch::CaseRecord& rec, const fs::path& report_dir) {
  const json& r = rec.results;
  json levels = json::object();
  for (int l : kReportedLevels) {
    const std::string n = levelName(l);
    levels[n] = {{"status", value(r, n + "_status")},
                 {"bmd", number(value(r, n + "_bmd"))},
                 {"hu", number(value(r, n + "_hu"))}};
  }
  json flags = json::array();
  const std::string f = value(r, "flags");
  for (size_t a = 0; a < f.size();) {
    const size_t b = f.find(';', a);
    const std::string one = f.substr(a, b == std::string::npos ? std::string::npos : b - a);
    if (!one.empty()) flags.push_back(one);
    if (b == std::string::npos) break;
    a = b + 1;
  }
  return {{"id", rec.case_id},
          {"status", rec.status},
          {"reason", value(r, "reason")},
          {"error", value(r, "error")},
          {"category", value(r, "category")},
          {"bmd", number(value(r, "bmd_l1l2"))},
          {"bmd_se", number(value(r, "bmd_l1l2_se"))},
          {"flags", flags},
          {"levels", levels},
          {"phase", value(r, "contrast_phase")},
          {"calibration", value(r, "calibration")},
          {"rule", value(r, "rule")},
          {"seconds", rec.seconds},
          {"qc", relativeIfExists(rec.dir.empty() ? fs::path() : rec.dir / "qc.png", report_dir)},
          {"localize_qc",
           relativeIfExists(rec.dir.empty() ? fs::path() : rec.dir / "localize_qc.png", report_dir)}};
}

std::string cohortHtml(const std::vector<batch::CaseRecord>& records, const fs::path& report_dir,
                       const std::string& title) {
  json cases = json::array();
  std::vector<const batch::CaseRecord*> sorted;
  for (const auto& r : records) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->case_id < b->case_id; });
  bool acr = false;
  for (const auto* r : sorted) {
    cases.push_back(caseRow(*r, report_dir));
    acr = acr || value(r->results, "rule") == "acr-qct";
  }
  json levels = json::array();
  for (int l : kReportedLevels) levels.push_back(levelName(l));
  json thresholds = json::array();
  if (acr) {
    thresholds.push_back({{"value", rules::kAcrOsteoporosisBelowMgCm3}, {"label", "ACR 80"}});
    thresholds.push_back({{"value", rules::kAcrNormalAboveMgCm3}, {"label", "ACR 120"}});
  }
  const json data = {{"version", versionString()},
                     {"generated", isoTimeUtcNow()},
                     {"levels", levels},
                     {"thresholds", thresholds},
                     {"cases", cases}};
  std::string page = kPage;
  auto replaceAll = [&page](const std::string& what, const std::string& with) {
    for (size_t p = page.find(what); p != std::string::npos; p = page.find(what, p + with.size()))
      page.replace(p, what.size(), with);
  };
  replaceAll("@TITLE@", htmlEscape(title));
  replaceAll("@DATA@", scriptSafe(data.dump()));
  return page;
}

void writeCohortReport(const fs::path& report_dir, const std::vector<batch::CaseRecord>& records,
                       const std::string& title) {
  writeTextFile(report_dir / "report.html", cohortHtml(records, report_dir, title), true);
}

}  // namespace ctbmd::report
