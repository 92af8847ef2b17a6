#include "study/svg.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>

namespace vitqk::svg {
namespace {

// Every coordinate of every drawn point, as (x, y).
std::vector<std::pair<double, double>> circles(const std::string& s) {
  std::vector<std::pair<double, double>> r;
  const std::regex re("<circle cx=\"([0-9.]+)\" cy=\"([0-9.]+)\"");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), re); it != std::sregex_iterator(); ++it)
    r.push_back({std::stod((*it)[1]), std::stod((*it)[2])});
  return r;
}

TEST(Svg, LinePointsAreOrderedAndInsideThePlot) {
  LineChart c{"T", "x unit", "y unit", {}, {}, false, false};
  Series s("a & b");
  s.x = {1, 2, 3}, s.y = {10, 30, 20};
  c.series = {s};
  const std::string out = render(c);
  const auto pts = circles(out);
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_LT(pts[0].first, pts[1].first);
  EXPECT_LT(pts[1].first, pts[2].first);
  EXPECT_LT(pts[1].second, pts[2].second);  // larger y is higher up (smaller SVG y)
  EXPECT_LT(pts[2].second, pts[0].second);
  EXPECT_NE(out.find("a &amp; b"), std::string::npos);
  EXPECT_NE(out.find("x unit"), std::string::npos);
  EXPECT_NE(out.find("y unit"), std::string::npos);
}

TEST(Svg, LogAxesSkipNonPositiveAndNonFiniteValues) {
  LineChart c{"T", "x", "y", {}, {}, true, true};
  Series s("s");
  s.x = {1, 10, 100, -1, 5}, s.y = {1, 10, 100, 5, NAN};
  c.series = {s};
  const std::string out = render(c);
  const auto pts = circles(out);
  ASSERT_EQ(pts.size(), 3u);
  // Equal steps in log space are equal steps on the page.
  EXPECT_NEAR(pts[1].first - pts[0].first, pts[2].first - pts[1].first, 0.2);
  EXPECT_NEAR(pts[1].second - pts[0].second, pts[2].second - pts[1].second, 0.2);
  EXPECT_EQ(out.find("nan"), std::string::npos);
}

TEST(Svg, BarsAreProportionalOnALinearAxis) {
  BarChart c{"T", "unit", {"one", "two"}, {}, false};
  Series s("s");
  s.y = {1, 2};
  c.series = {s};
  const std::string out = render(c);
  const std::regex re("<rect x=\"[0-9.]+\" y=\"([0-9.]+)\" width=\"[0-9.]+\" height=\"([0-9.]+)\"");
  std::vector<double> h;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator(); ++it)
    h.push_back(std::stod((*it)[2]));
  ASSERT_EQ(h.size(), 4u);  // plot frame, two bars, the legend's swatch
  EXPECT_NEAR(h[2] / h[1], 2.0, 0.01);
}

}  // namespace
}  // namespace vitqk::svg
