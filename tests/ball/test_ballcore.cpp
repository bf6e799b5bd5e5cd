// SPDX-License-Identifier: LGPL-2.1-or-later
/* Pure C++ parts of ball tracking: motion model, frame-mark codec, rendering. */
#include <gst/check/gstcheck.h>

#include <cmath>
#include <vector>

#include "ballmodel.h"
#include "ballrender.h"

using namespace pointcast::ball;

/* Straightforward time stepping with explicit reflections: the reference for the analytic path. */
static Point simulate(const MotionParams &p, const Field &f, double t_end, double dt)
{
  Motion m(p, f);
  Point pos = m.start();
  Point v = m.velocity();
  const double lo_x = f.left + p.radius, hi_x = f.right - p.radius;
  const double lo_y = f.top + p.radius, hi_y = f.bottom - p.radius;
  const long steps = std::lround(t_end / dt);
  for (long i = 0; i < steps; i++) {
    pos.x += v.x * dt;
    pos.y += v.y * dt;
    if (pos.x > hi_x) {
      pos.x = 2 * hi_x - pos.x;
      v.x = -v.x;
    }
    if (pos.x < lo_x) {
      pos.x = 2 * lo_x - pos.x;
      v.x = -v.x;
    }
    if (pos.y > hi_y) {
      pos.y = 2 * hi_y - pos.y;
      v.y = -v.y;
    }
    if (pos.y < lo_y) {
      pos.y = 2 * lo_y - pos.y;
      v.y = -v.y;
    }
  }
  return pos;
}

GST_START_TEST(test_motion_matches_simulation)
{
  const Field field = Field::whole_frame(640, 480, 36);
  for (double angle : {0.0, 30.0, 77.0, 135.0, 200.0, -45.0}) {
    MotionParams p{20.0, 350.0, angle, 7};
    Motion m(p, field);
    for (double t : {0.0, 0.5, 1.7, 4.3, 9.9}) {
      const Point a = m.at_time(t);
      const Point s = simulate(p, field, t, 1.0 / 3000.0);
      fail_unless(std::fabs(a.x - s.x) < 1e-6 && std::fabs(a.y - s.y) < 1e-6,
                  "angle %g t %g: analytic (%f, %f) simulated (%f, %f)", angle, t, a.x, a.y, s.x,
                  s.y);
      // Always inside the field, the rim touching a wall at most.
      fail_unless(a.x >= field.left + 20 - 1e-9 && a.x <= field.right - 20 + 1e-9);
      fail_unless(a.y >= field.top + 20 - 1e-9 && a.y <= field.bottom - 20 + 1e-9);
    }
  }
}
GST_END_TEST;

GST_START_TEST(test_motion_bounces_and_frames)
{
  // Moving right at 100 px/s from a known start: hits the right wall and comes back.
  const Field field = Field::whole_frame(200, 100);
  MotionParams p{10.0, 100.0, 0.0, 1};
  Motion m(p, field);
  const double x0 = m.start().x, hi = 199.5 - 10.0, lo = -0.5 + 10.0;
  const double t_hit = (hi - x0) / 100.0;
  fail_unless(std::fabs(m.at_time(t_hit).x - hi) < 1e-9);
  fail_unless(std::fabs(m.at_time(t_hit + 0.25).x - (hi - 25.0)) < 1e-9,
              "elastic: same speed back");
  const double t_left = t_hit + (hi - lo) / 100.0;
  fail_unless(std::fabs(m.at_time(t_left).x - lo) < 1e-9);
  fail_unless(m.at_time(3.0).y == m.start().y, "angle 0 keeps y");
  // Frame n at 30/1 is time n/30; at 30000/1001 it is n*1001/30000.
  fail_unless(std::fabs(m.at_frame(45, 30, 1).x - m.at_time(1.5).x) < 1e-12);
  fail_unless(std::fabs(m.at_frame(300, 30000, 1001).x - m.at_time(300 * 1001.0 / 30000).x) <
              1e-12);
  // Sub-pixel motion: 100 px/s at 30 fps moves 3.333 px per frame.
  fail_unless(std::fabs(m.at_frame(1, 30, 1).x - m.at_frame(0, 30, 1).x - 100.0 / 30) < 1e-9);
  // Seeds choose different start positions; equal seeds equal ones.
  MotionParams q = p;
  q.seed = 2;
  fail_unless(Motion(q, field).start().x != m.start().x);
  fail_unless(Motion(p, field).start().x == m.start().x);
  // A ball wider than the field stays centred along that axis.
  MotionParams big{60.0, 100.0, 0.0, 1};
  fail_unless(std::fabs(Motion(big, field).at_time(1.3).y - 49.5) < 1e-9);
}
GST_END_TEST;

GST_START_TEST(test_mark_word)
{
  for (uint64_t f : {0ull, 1ull, 2ull, 255ull, 4096ull, 65535ull, 1234567ull, 16777215ull}) {
    const uint64_t w = mark::encode_word(f);
    fail_unless(w < (1ull << 40));
    auto d = mark::decode_word(w);
    fail_unless(d && *d == f, "frame %llu", (unsigned long long)f);
    // Every single and double bit error is caught by the CRC.
    for (int i = 0; i < 40; i++) {
      fail_if(mark::decode_word(w ^ (1ull << i)).has_value());
      for (int j = i + 1; j < 40; j++)
        fail_if(mark::decode_word(w ^ (1ull << i) ^ (1ull << j)).has_value());
    }
  }
  // Frame numbers wrap at 2^24, as float32 carries them exactly.
  fail_unless(*mark::decode_word(mark::encode_word(mark::kFrameModulo + 5)) == 5);
  // An all-black or all-white band is not a mark.
  fail_if(mark::decode_word(0).has_value());
  fail_if(mark::decode_word((1ull << 40) - 1).has_value());
  // CRC-16/CCITT-FALSE check value.
  const uint8_t check[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  fail_unless_equals_int(mark::crc16(check, 9), 0x29B1);
}
GST_END_TEST;

GST_START_TEST(test_mark_layout)
{
  auto l = mark::layout_for_width(640);
  fail_unless_equals_int(l.cells_per_row, 40);
  fail_unless_equals_int(l.rows, 2);
  fail_unless_equals_int(l.copies, 2);
  fail_unless_equals_int(l.band_height, 32);
  l = mark::layout_for_width(1920);
  fail_unless_equals_int(l.rows, 1);
  fail_unless_equals_int(l.copies, 3);
  l = mark::layout_for_width(320);
  fail_unless_equals_int(l.rows, 4);
  fail_unless_equals_int(l.copies, 2);
  fail_if(mark::layout_for_width(15).valid());
}
GST_END_TEST;

static std::vector<uint8_t> rgb_frame(int w, int h, ImageView &v)
{
  std::vector<uint8_t> buf(static_cast<size_t>(w) * h * 3);
  v = ImageView{};
  v.layout = PixelLayout::Packed;
  v.width = w;
  v.height = h;
  v.data[0] = buf.data();
  v.stride[0] = w * 3;
  return buf;
}

GST_START_TEST(test_mark_render_decode)
{
  ImageView v;
  auto buf = rgb_frame(640, 480, v);
  v.data[0] = buf.data();
  const auto l = mark::layout_for_width(640);
  for (uint64_t f : {0ull, 77ull, 99999ull}) {
    fill(v, Rgb{40, 90, 160});
    draw_mark(v, l, f);
    auto cells = mark_cell_luma(v, l);
    auto r = mark::decode_cells(l, cells.data());
    fail_unless(r.frame && *r.frame == f);
    fail_unless_equals_int(r.valid_copies, 2);
    // One copy destroyed: the other still reads.
    for (int k = 0; k < 40; k++) cells[k] = 128.0;
    r = mark::decode_cells(l, cells.data());
    fail_unless(r.frame && *r.frame == f);
  }
  // No mark: a plain background never decodes.
  fill(v, Rgb{255, 255, 255});
  auto cells = mark_cell_luma(v, l);
  fail_if(mark::decode_cells(l, cells.data()).frame.has_value());
}
GST_END_TEST;

GST_START_TEST(test_render_subpixel_centre)
{
  // The intensity centroid of a rendered disc is its centre, to about 0.01 px (sampling a disc on a pixel grid).
  ImageView v;
  auto buf = rgb_frame(160, 120, v);
  v.data[0] = buf.data();
  for (double cx : {50.0, 50.25, 61.5, 70.8}) {
    for (double r : {3.0, 7.5, 20.0}) {
      const double cy = 40.0 + cx / 7.0;
      fill(v, Rgb{0, 0, 0});
      draw_ball(v, cx, cy, r, Rgb{255, 255, 255}, 1.0, Rgb{0, 0, 0}, nullptr);
      double s = 0, sx = 0, sy = 0;
      for (int y = 0; y < 120; y++)
        for (int x = 0; x < 160; x++) {
          const double a = buf[(y * 160 + x) * 3] / 255.0;
          s += a;
          sx += a * x;
          sy += a * y;
        }
      // (8-bit rounding of the rim limits tiny discs to about 0.02 px.)
      const double tol = r < 5 ? 0.03 : 0.02;
      fail_unless(std::fabs(sx / s - cx) < tol && std::fabs(sy / s - cy) < tol,
                  "r %g: centroid (%f, %f) for (%f, %f)", r, sx / s, sy / s, cx, cy);
      fail_unless(std::fabs(s - M_PI * r * r) < 0.02 * M_PI * r * r + 1.0, "area %f for r %g", s,
                  r);
    }
  }
}
GST_END_TEST;

GST_START_TEST(test_render_i420)
{
  // A white disc on black in I420 (BT.601 limited range): luma 16 outside, 235 inside.
  const int w = 64, h = 48;
  std::vector<uint8_t> y(w * h), u(w * h / 4), vv(w * h / 4);
  ImageView v;
  v.layout = PixelLayout::I420;
  v.width = w;
  v.height = h;
  v.data[0] = y.data();
  v.data[1] = u.data();
  v.data[2] = vv.data();
  v.stride[0] = w;
  v.stride[1] = v.stride[2] = w / 2;
  fill(v, Rgb{0, 0, 0});
  draw_ball(v, 30.0, 20.0, 8.0, Rgb{255, 255, 255}, 1.0, Rgb{0, 0, 0}, nullptr);
  fail_unless_equals_int(y[0], 16);
  fail_unless_equals_int(y[20 * w + 30], 235);
  fail_unless_equals_int(u[10 * (w / 2) + 15], 128);
  // A red ball shifts the chroma.
  draw_ball(v, 30.0, 20.0, 8.0, Rgb{255, 0, 0}, 1.0, Rgb{0, 0, 0}, nullptr);
  fail_unless(vv[10 * (w / 2) + 15] > 200);
}
GST_END_TEST;

static Suite *ballcore_suite(void)
{
  Suite *s = suite_create("ballcore");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_motion_matches_simulation);
  tcase_add_test(tc, test_motion_bounces_and_frames);
  tcase_add_test(tc, test_mark_word);
  tcase_add_test(tc, test_mark_layout);
  tcase_add_test(tc, test_mark_render_decode);
  tcase_add_test(tc, test_render_subpixel_centre);
  tcase_add_test(tc, test_render_i420);
  return s;
}

GST_CHECK_MAIN(ballcore);
