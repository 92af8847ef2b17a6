#pragma once
// The study's report, written from results.json alone: report.md (text and tables) and
// report.html (the same, with inline SVG charts; self-contained, printable).
#include <nlohmann/json.hpp>
#include <string>

namespace vitqk {

struct Report {
  std::string markdown, html;
};

Report render_report(const nlohmann::json& results);

}  // namespace vitqk
