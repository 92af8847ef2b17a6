#include "study/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace vitqk::svg {

namespace {

// Colour-blind-safe palette (Okabe & Ito).
const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"};
const char* color(const Series& s, size_t i) { return kPalette[(s.color >= 0 ? size_t(s.color) : i) % 8]; }

constexpr double kWidth = 800, kLeft = 70, kTop = 40, kPlotW = 430, kPlotH = 250, kLegendX = kLeft + kPlotW + 20;

std::string num(double v) {
  char b[32];
  const double a = std::fabs(v);
  if (a != 0 && (a >= 1e6 || a < 1e-3))
    std::snprintf(b, sizeof b, "%.0e", v);
  else
    std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

std::string fmt(const char* f, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

struct Axis {
  double lo, hi;
  bool log;
  double to_unit(double v) const {  // 0..1 along the axis
    if (log) return (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return (v - lo) / (hi - lo);
  }
  bool integer = false;  // ticks only at whole numbers (epochs)
  std::vector<double> ticks() const {
    std::vector<double> t;
    if (log) {
      const int a = int(std::floor(std::log10(lo))), b = int(std::ceil(std::log10(hi)));
      const bool dense = b - a <= 2;
      for (int e = a; e <= b; ++e)
        for (double m : dense ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
          const double v = m * std::pow(10.0, e);
          if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) t.push_back(v);
        }
      return t;
    }
    const double raw = (hi - lo) / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = integer ? std::max(1.0, mag) : mag;
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
      if (m * mag >= raw && (!integer || m * mag >= 1)) {
        step = integer ? std::max(1.0, std::round(m * mag)) : m * mag;
        break;
      }
    for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
    return t;
  }
};

Axis make_axis(std::vector<double> v, bool log, bool from_zero) {
  if (log) v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !(x > 0); }), v.end());
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return {log ? 0.1 : 0, 1, log, false};
  double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
  if (log) {
    lo = std::pow(10.0, std::floor(std::log10(lo) * 4) / 4), hi = std::pow(10.0, std::ceil(std::log10(hi) * 4) / 4);
    if (hi <= lo) hi = lo * 10;
    return {lo, hi, true, false};
  }
  if (from_zero) lo = std::min(lo, 0.0);
  if (hi == lo) hi = lo + 1;
  const double pad = (hi - lo) * 0.05;
  return {from_zero && lo >= 0 ? lo : lo - pad, hi + pad, false, false};
}

std::string frame(const std::string& title, double height, const std::string& body) {
  std::string s = fmt("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
                      "font-family=\"sans-serif\" font-size=\"12\" role=\"img\">",
                      kWidth, height, kWidth, height);
  s += "<title>" + escape(title) + "</title>";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>";
  s += fmt("<text x=\"%.0f\" y=\"22\" font-size=\"14\" font-weight=\"bold\">", kLeft) + escape(title) + "</text>";
  return s + body + "</svg>";
}

std::string axes(const Axis& xa, const Axis* ya_opt, const std::string& x_label, const std::string& y_label) {
  std::string s;
  const double bottom = kTop + kPlotH;
  s += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>", kLeft, kTop,
           kPlotW, kPlotH);
  if (ya_opt)
    for (double t : ya_opt->ticks()) {
      const double y = bottom - ya_opt->to_unit(t) * kPlotH;
      s += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", kLeft, y, kLeft + kPlotW, y);
      s += fmt("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", kLeft - 6, y + 4) + num(t) + "</text>";
    }
  if (xa.hi > xa.lo)
    for (double t : xa.ticks()) {
      const double x = kLeft + xa.to_unit(t) * kPlotW;
      s += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>", x, bottom, x, bottom + 5);
      s += fmt("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x, bottom + 18) + num(t) + "</text>";
    }
  s += fmt("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", kLeft + kPlotW / 2, bottom + 38) + escape(x_label) +
       "</text>";
  s += fmt("<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">", kTop + kPlotH / 2) +
       escape(y_label) + "</text>";
  return s;
}

std::string legend(const std::vector<Series>& series, bool bars) {
  std::string s;
  double y = kTop + 8;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& se = series[i];
    if (!se.in_legend) continue;
    if (bars)
      s += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"10\"", kLegendX, y - 9) + " fill=\"" + color(se, i) + "\"/>";
    else if (!se.line)
      s += fmt("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\"", kLegendX + 9, y - 4) + " fill=\"" + color(se, i) + "\"/>";
    else
      s += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"", kLegendX, y - 4, kLegendX + 18, y - 4) +
           " stroke=\"" + color(se, i) + "\" stroke-width=\"2\"" + (se.dashed ? " stroke-dasharray=\"5 3\"" : "") + "/>";
    s += fmt("<text x=\"%.1f\" y=\"%.1f\">", kLegendX + 24, y) + escape(se.name) + "</text>";
    y += 18;
  }
  return s;
}

}  // namespace

std::string escape(const std::string& s) {
  std::string r;
  for (char c : s) switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      default: r += c;
    }
  return r;
}

std::string render(const LineChart& c) {
  std::vector<double> xs, ys;
  for (const Series& s : c.series) xs.insert(xs.end(), s.x.begin(), s.x.end()), ys.insert(ys.end(), s.y.begin(), s.y.end());
  for (const Rule& r : c.rules) (r.vertical ? xs : ys).push_back(r.at);
  Axis xa = make_axis(xs, c.log_x, false);
  const Axis ya = make_axis(ys, c.log_y, c.y_from_zero);
  xa.integer = c.integer_x;
  const double bottom = kTop + kPlotH;
  auto px = [&](double v) { return kLeft + std::clamp(xa.to_unit(v), 0.0, 1.0) * kPlotW; };
  auto py = [&](double v) { return bottom - std::clamp(ya.to_unit(v), 0.0, 1.0) * kPlotH; };
  auto plottable = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!c.log_x || x > 0) && (!c.log_y || y > 0);
  };
  std::string body = axes(xa, &ya, c.x_label, c.y_label);
  for (const Rule& r : c.rules) {
    if (r.vertical)
      body += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"2 3\"/>",
                  px(r.at), kTop, px(r.at), bottom) +
              fmt("<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">", px(r.at) + 4, kTop + 14) + escape(r.label) + "</text>";
    else
      body += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"2 3\"/>",
                  kLeft, py(r.at), kLeft + kPlotW, py(r.at)) +
              fmt("<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\" text-anchor=\"end\">", kLeft + kPlotW - 4, py(r.at) - 4) +
              escape(r.label) + "</text>";
  }
  for (size_t i = 0; i < c.series.size(); ++i) {
    const Series& s = c.series[i];
    const std::string col = color(s, i), op = fmt(" opacity=\"%.2f\"", s.opacity);
    if (s.line) {
      std::string pts;
      for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k)
        if (plottable(s.x[k], s.y[k])) pts += fmt("%.1f,%.1f ", px(s.x[k]), py(s.y[k]));
      body += "<polyline fill=\"none\" stroke=\"" + col + "\" stroke-width=\"2\"" + op +
              (s.dashed ? " stroke-dasharray=\"5 3\"" : "") + " points=\"" + pts + "\"/>";
    }
    if (s.markers)
      for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k)
        if (plottable(s.x[k], s.y[k]))
          body += fmt("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"", px(s.x[k]), py(s.y[k])) + " fill=\"" + col + "\"" + op +
                  "/>";
  }
  body += legend(c.series, false);
  return frame(c.title, kTop + kPlotH + 50, body);
}

std::string render(const BarChart& c) {
  std::vector<double> ys;
  for (const Series& s : c.series) ys.insert(ys.end(), s.y.begin(), s.y.end());
  const Axis ya = make_axis(ys, c.log_y, !c.log_y);
  const double bottom = kTop + kPlotH;
  std::string body = axes({0, 0, false, false}, &ya, "", c.y_label);
  const size_t nc = c.categories.size(), ns = std::max<size_t>(1, c.series.size());
  const double group = kPlotW / double(std::max<size_t>(1, nc)), bar = group * 0.8 / double(ns);
  for (size_t k = 0; k < nc; ++k) {
    const double gx = kLeft + group * double(k) + group * 0.1;
    body += fmt("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", gx + group * 0.4, bottom + 18) +
            escape(c.categories[k]) + "</text>";
    for (size_t i = 0; i < c.series.size(); ++i) {
      const Series& s = c.series[i];
      if (k >= s.y.size() || !std::isfinite(s.y[k]) || (c.log_y && s.y[k] <= 0)) continue;
      const double top = bottom - std::clamp(ya.to_unit(s.y[k]), 0.0, 1.0) * kPlotH;
      body += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"", gx + bar * double(i), top, bar * 0.92,
                  bottom - top) +
              " fill=\"" + color(s, i) + "\"><title>" + escape(s.name + ", " + c.categories[k] + ": " + num(s.y[k])) +
              "</title></rect>";
    }
  }
  body += legend(c.series, true);
  return frame(c.title, kTop + kPlotH + 50, body);
}

}  // namespace vitqk::svg
