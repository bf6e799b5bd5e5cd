// SPDX-License-Identifier: LGPL-2.1-or-later
/* balldetect's core on synthetic frames with known truth. */
// OpenCV before gstcheck: check.h's macros (fail, ...) break OpenCV's headers.
#include <opencv2/imgproc.hpp>

#include <gst/check/gstcheck.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "balldetector.h"
#include "ballrender.h"

using namespace pointcast::ball;

namespace {

/* An owned frame in one of the layouts balldetect receives. */
struct Frame {
  std::vector<uint8_t> planes[3];
  ImageView v;
  Frame(int w, int h, PixelLayout layout)
  {
    v.layout = layout;
    v.width = w;
    v.height = h;
    if (layout == PixelLayout::Packed) {
      planes[0].resize(static_cast<size_t>(w) * h * 4);
      v.pstride = 4;
      v.off_r = 2; // BGRx, as videoconvert often delivers
      v.off_g = 1;
      v.off_b = 0;
      v.off_a = 3;
      v.stride[0] = w * 4;
    } else {
      const int cw = (w + 1) / 2, ch = (h + 1) / 2;
      planes[0].resize(static_cast<size_t>(w) * h);
      planes[1].resize(static_cast<size_t>(cw) * ch);
      planes[2].resize(static_cast<size_t>(cw) * ch);
      v.stride[0] = w;
      v.stride[1] = v.stride[2] = cw;
    }
    for (int i = 0; i < 3; i++) v.data[i] = planes[i].empty() ? nullptr : planes[i].data();
  }
  void noise(double sigma, unsigned seed)
  {
    std::mt19937 gen(seed);
    std::normal_distribution<double> n(0.0, sigma);
    for (auto &p : planes)
      for (auto &b : p) b = static_cast<uint8_t>(std::clamp(std::lround(b + n(gen)), 0L, 255L));
  }
};

double err(const Detection &d, double x, double y)
{
  return std::hypot(d.x - x, d.y - y);
}

/* Renders one ball and returns the detector's error (or -1 if it found not exactly one). */
double one_ball(PixelLayout layout, int w, int h, double cx, double cy, double r, Rgb ball, Rgb bg,
                double noise = 0.0, DetectorParams params = {})
{
  Frame f(w, h, layout);
  fill(f.v, bg);
  draw_ball(f.v, cx, cy, r, ball, 1.0, bg, nullptr);
  if (noise > 0) f.noise(noise, 1234);
  Detector det(params);
  auto res = det.detect(f.v);
  if (res.balls.size() != 1) return -1.0;
  return err(res.balls[0], cx, cy);
}

const Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0};

} // namespace

GST_START_TEST(test_centre_subpixel)
{
  for (auto layout : {PixelLayout::Packed, PixelLayout::I420}) {
    for (double dx : {0.0, 0.13, 0.5, 0.77}) {
      const double e = one_ball(layout, 640, 480, 320.0 + dx, 240.0 - dx / 2, 20.0, kWhite, kBlack);
      fail_unless(e >= 0 && e < 0.02, "layout %d offset %g: error %f", (int)layout, dx, e);
    }
  }
}
GST_END_TEST;

GST_START_TEST(test_edges_and_corners)
{
  // Touching each edge and corner (fully visible) and partly outside the frame.
  struct Case {
    double x, y, max_err;
  } cases[] = {
      {19.5, 240, 0.05},  {619.5, 240, 0.05},   {320, 19.5, 0.05}, {320, 459.5, 0.05},
      {19.5, 19.5, 0.05}, {619.5, 459.5, 0.05}, {8.0, 240, 0.15},  {632.3, 200, 0.15},
      {300, 4.2, 0.15},   {300, 470.6, 0.15},   {6.0, 7.0, 0.25},  {633.0, 472.0, 0.25},
      {-5.0, 100.0, 0.4},
  };
  for (auto layout : {PixelLayout::Packed, PixelLayout::I420}) {
    for (const auto &c : cases) {
      const double e = one_ball(layout, 640, 480, c.x, c.y, 20.0, kWhite, kBlack);
      fail_unless(e >= 0 && e < c.max_err, "layout %d ball at (%g, %g): error %f", (int)layout, c.x,
                  c.y, e);
    }
  }
}
GST_END_TEST;

GST_START_TEST(test_radii)
{
  for (double r : {4.0, 6.0, 10.0, 35.0, 80.0, 150.0}) {
    const double e = one_ball(PixelLayout::Packed, 640, 480, 321.3, 239.6, r, kWhite, kBlack);
    fail_unless(e >= 0 && e < (r < 8 ? 0.06 : 0.03), "radius %g: error %f", r, e);
  }
  // Outside [min-radius, max-radius]: not reported.
  fail_unless(one_ball(PixelLayout::Packed, 640, 480, 300, 200, 30, kWhite, kBlack, 0.0,
                       DetectorParams{4, 20}) < 0);
  fail_unless(one_ball(PixelLayout::Packed, 640, 480, 300, 200, 8, kWhite, kBlack, 0.0,
                       DetectorParams{12, 100}) < 0);
}
GST_END_TEST;

GST_START_TEST(test_colours_and_background)
{
  struct Case {
    Rgb ball, bg;
  } cases[] = {
      {{255, 0, 0}, {128, 128, 128}},   // red on grey
      {{0, 0, 255}, {255, 255, 0}},     // blue on yellow
      {{20, 20, 20}, {230, 230, 230}},  // dark ball, bright background
      {{0, 200, 0}, {40, 60, 160}},     // green on blue
      {{255, 160, 0}, {255, 255, 255}}, // orange on white
  };
  for (auto layout : {PixelLayout::Packed, PixelLayout::I420}) {
    for (const auto &c : cases) {
      const double e = one_ball(layout, 640, 480, 200.4, 300.7, 18.0, c.ball, c.bg);
      fail_unless(e >= 0 && e < 0.05, "layout %d ball (%g,%g,%g) on (%g,%g,%g): error %f",
                  (int)layout, c.ball.r, c.ball.g, c.ball.b, c.bg.r, c.bg.g, c.bg.b, e);
    }
  }
}
GST_END_TEST;

GST_START_TEST(test_noise)
{
  for (double sigma : {4.0, 10.0}) {
    for (auto layout : {PixelLayout::Packed, PixelLayout::I420}) {
      const double e =
          one_ball(layout, 640, 480, 410.3, 122.8, 20.0, Rgb{250, 220, 40}, Rgb{30, 40, 70}, sigma);
      fail_unless(e >= 0 && e < 0.2, "noise %g layout %d: error %f", sigma, (int)layout, e);
    }
  }
  // Partly outside and noisy.
  const double e = one_ball(PixelLayout::I420, 640, 480, 5.0, 300.0, 20.0, kWhite, kBlack, 6.0);
  fail_unless(e >= 0 && e < 0.5, "noisy clipped ball: error %f", e);
}
GST_END_TEST;

GST_START_TEST(test_no_ball)
{
  for (auto layout : {PixelLayout::Packed, PixelLayout::I420}) {
    Frame f(640, 480, layout);
    fill(f.v, Rgb{90, 120, 60});
    Detector det;
    fail_unless_equals_int(det.detect(f.v).balls.size(), 0);
    f.noise(10.0, 99);
    fail_unless_equals_int(det.detect(f.v).balls.size(), 0);
  }
}
GST_END_TEST;

GST_START_TEST(test_two_balls_and_mark)
{
  Frame f(640, 480, PixelLayout::I420);
  const Rgb bg{20, 30, 50};
  fill(f.v, bg);
  const auto layout = mark::layout_for_width(640);
  draw_mark(f.v, layout, 4242);
  // One ball just below the band, one elsewhere.
  draw_ball(f.v, 100.25, layout.band_height + 4 + 15.0, 15.0, kWhite, 1.0, bg, nullptr);
  draw_ball(f.v, 500.5, 400.5, 25.0, Rgb{255, 255, 0}, 1.0, bg, nullptr);
  Detector det;
  auto res = det.detect(f.v);
  fail_unless(res.mark && *res.mark == 4242);
  fail_unless_equals_int(res.balls.size(), 2);
  std::sort(res.balls.begin(), res.balls.end(), [](auto &a, auto &b) { return a.x < b.x; });
  fail_unless(err(res.balls[0], 100.25, layout.band_height + 19.0) < 0.05);
  fail_unless(err(res.balls[1], 500.5, 400.5) < 0.05);
  fail_unless(std::fabs(res.balls[1].radius - 25.0) < 0.5);
}
GST_END_TEST;

GST_START_TEST(test_shaded_sprite)
{
  // A sprite lit from the upper left (brightness 100% down to 40%): weighted by colour it would
  // pull towards the highlight; balldetect treats it as a solid disc.
  const int n = 96;
  std::vector<uint8_t> rgba(n * n * 4);
  for (int y = 0; y < n; y++)
    for (int x = 0; x < n; x++) {
      const double d = std::hypot(x + 0.5 - 48, y + 0.5 - 48);
      const double shade = std::clamp(1.0 - 0.6 * std::hypot(x - 33.0, y - 33.0) / 68.0, 0.4, 1.0);
      uint8_t *p = &rgba[(y * n + x) * 4];
      p[0] = static_cast<uint8_t>(230 * shade);
      p[1] = static_cast<uint8_t>(60 * shade);
      p[2] = static_cast<uint8_t>(20 * shade);
      p[3] = static_cast<uint8_t>(std::lround(std::clamp(47.0 - d, 0.0, 1.0) * 255));
    }
  const Sprite sprite = Sprite::from_rgba(rgba.data(), n, n, n * 4);
  for (double r : {20.0, 35.0}) {
    Frame f(640, 480, PixelLayout::I420);
    fill(f.v, kBlack);
    draw_ball(f.v, 300.3, 200.6, r, kWhite, 1.0, kBlack, &sprite);
    Detector det;
    auto res = det.detect(f.v);
    fail_unless_equals_int(res.balls.size(), 1);
    const double e = err(res.balls[0], 300.3, 200.6);
    fail_unless(e < 0.3, "shaded sprite r %g: error %f", r, e);
  }
}
GST_END_TEST;

GST_START_TEST(test_circle_fit)
{
  std::vector<double> xs, ys;
  for (int i = 0; i < 20; i++) {
    const double a = -0.6 + 1.2 * i / 19.0; // a short arc
    xs.push_back(10.0 + 30.0 * std::cos(a));
    ys.push_back(-4.0 + 30.0 * std::sin(a));
  }
  auto c = fit_circle(xs, ys);
  fail_unless(c && std::fabs(c->x - 10.0) < 1e-6 && std::fabs(c->y + 4.0) < 1e-6 &&
              std::fabs(c->r - 30.0) < 1e-6);
  xs.resize(4);
  ys.resize(4);
  fail_if(fit_circle(xs, ys).has_value());
}
GST_END_TEST;

// The coarse pass's own labelling finds the blobs OpenCV finds (same partition, areas and
// boxes) on random masks from sparse to dense: diagonal touches, U shapes, spirals of noise.
GST_START_TEST(test_labelling_matches_opencv)
{
  std::mt19937 rng(7);
  Detector det;
  for (int t = 0; t < 400; t++) {
    const int gw = 1 + int(rng() % 48), gh = 1 + int(rng() % 48), dens = int(rng() % 100);
    cv::Mat d(gh, gw, CV_8U);
    for (int j = 0; j < gh; j++)
      for (int i = 0; i < gw; i++) d.at<uint8_t>(j, i) = int(rng() % 100) < dens ? 200 : 10;
    const int n = det.label_components(d.ptr<uint8_t>(0), d.step, gw, gh, 100);
    cv::Mat labels, stats, centroids;
    const int m = cv::connectedComponentsWithStats(d > 100, labels, stats, centroids, 8, CV_32S);
    fail_unless(n == m, "%d components, OpenCV %d (%dx%d)", n, m, gw, gh);
    std::vector<int> ours_to_cv(n, -1), cv_to_ours(m, -1);
    for (int j = 0; j < gh; j++) {
      for (int i = 0; i < gw; i++) {
        const int a = det.labels()[size_t(j) * gw + i], b = labels.at<int>(j, i);
        if (ours_to_cv[a] < 0 && cv_to_ours[b] < 0) ours_to_cv[a] = b, cv_to_ours[b] = a;
        fail_unless(ours_to_cv[a] == b && cv_to_ours[b] == a, "different blobs at (%d, %d)", i, j);
      }
    }
    for (int k = 1; k < n; k++) {
      const auto &c = det.components()[k];
      const int q = ours_to_cv[k];
      fail_unless(c.area == stats.at<int>(q, cv::CC_STAT_AREA) &&
                  c.left == stats.at<int>(q, cv::CC_STAT_LEFT) &&
                  c.top == stats.at<int>(q, cv::CC_STAT_TOP) &&
                  c.right - c.left + 1 == stats.at<int>(q, cv::CC_STAT_WIDTH) &&
                  c.bottom - c.top + 1 == stats.at<int>(q, cv::CC_STAT_HEIGHT));
    }
  }
}
GST_END_TEST;

static Suite *balldetector_suite(void)
{
  Suite *s = suite_create("balldetector");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_centre_subpixel);
  tcase_add_test(tc, test_edges_and_corners);
  tcase_add_test(tc, test_radii);
  tcase_add_test(tc, test_colours_and_background);
  tcase_add_test(tc, test_noise);
  tcase_add_test(tc, test_no_ball);
  tcase_add_test(tc, test_two_balls_and_mark);
  tcase_add_test(tc, test_shaded_sprite);
  tcase_add_test(tc, test_circle_fit);
  tcase_add_test(tc, test_labelling_matches_opencv);
  return s;
}

GST_CHECK_MAIN(balldetector);
