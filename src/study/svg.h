#pragma once
// Self-contained SVG charts for the study report: line/scatter charts and grouped bar charts
// with axes, ticks, units and a legend. No scripts, no fonts to fetch: they print and render
// offline.
#include <string>
#include <utility>
#include <vector>

namespace vitqk::svg {

struct Series {
  Series(std::string n = {}) : name(std::move(n)) {}
  std::string name;
  std::vector<double> x, y;
  bool line = true, markers = true, dashed = false;
  double opacity = 1.0;
  bool in_legend = true;
  int color = -1;  // index into the palette; -1: the series' position
};

struct Rule {  // a reference line across the plot
  bool vertical;
  double at;
  std::string label;
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::vector<Rule> rules;
  bool log_x = false, log_y = false;
  bool y_from_zero = false;
  bool integer_x = false;  // x ticks at whole numbers only
};

struct BarChart {
  std::string title, y_label;
  std::vector<std::string> categories;
  std::vector<Series> series;  // y[i] is the bar of categories[i]; x unused
  bool log_y = false;
};

std::string render(const LineChart& c);
std::string render(const BarChart& c);

// Escapes &, <, >, " for text in SVG and HTML.
std::string escape(const std::string& s);

}  // namespace vitqk::svg
