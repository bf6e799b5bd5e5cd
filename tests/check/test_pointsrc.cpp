// SPDX-License-Identifier: LGPL-2.1-or-later
/* pointsrc: caps, properties, counter formula, determinism, num-buffers, rate, EOS. */
#include "helpers.h"

#include <gst/base/gstbasesrc.h>

#include <cmath>

static GstHarness *make_src(const char *props)
{
  std::string desc = std::string("pointsrc ") + props;
  GstHarness *h = gst_harness_new_parse(desc.c_str());
  gst_harness_play(h);
  return h;
}

/* Pulls n buffers from a harness around pointsrc. */
static std::vector<GstBuffer *> pull_n(GstHarness *h, int n)
{
  std::vector<GstBuffer *> v;
  for (int i = 0; i < n; ++i) {
    GstBuffer *b = gst_harness_pull(h);
    fail_unless(b != nullptr);
    v.push_back(b);
  }
  return v;
}

static void unref_all(std::vector<GstBuffer *> &v)
{
  for (auto *b : v) gst_buffer_unref(b);
  v.clear();
}

GST_START_TEST(test_caps_and_defaults)
{
  GstElement *e = gst_element_factory_make("pointsrc", nullptr);
  fail_unless(e != nullptr);
  gdouble rate;
  guint points;
  gint pattern;
  guint64 seed;
  gint num_buffers;
  gboolean live = gst_base_src_is_live(GST_BASE_SRC(e));
  g_object_get(e, "rate", &rate, "points", &points, "pattern", &pattern, "seed", &seed,
               "num-buffers", &num_buffers, nullptr);
  fail_unless_equals_float(rate, 4.0);
  fail_unless_equals_int(points, 100);
  fail_unless_equals_int(pattern, 0);
  fail_unless_equals_uint64(seed, 0);
  fail_unless_equals_int(num_buffers, -1);
  fail_unless(live);
  g_object_set(e, "rate", 0.0, "points", 7u, "seed", G_GUINT64_CONSTANT(12345678901234), nullptr);
  gst_util_set_object_arg(G_OBJECT(e), "pattern", "counter");
  g_object_get(e, "rate", &rate, "points", &points, "pattern", &pattern, "seed", &seed, nullptr);
  fail_unless_equals_float(rate, 0.0);
  fail_unless_equals_int(points, 7);
  fail_unless_equals_int(pattern, 2);
  fail_unless_equals_uint64(seed, G_GUINT64_CONSTANT(12345678901234));
  gst_object_unref(e);

  GstHarness *h = make_src("rate=0 points=4 num-buffers=1");
  GstBuffer *b = gst_harness_pull(h);
  fail_unless_equals_int(gst_buffer_get_size(b), 4 * 3 * 4);
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  GstCaps *expect = gst_caps_from_string("application/x-points, columns=(int)3");
  fail_unless(gst_caps_is_equal(caps, expect));
  gst_caps_unref(caps);
  gst_caps_unref(expect);
  gst_buffer_unref(b);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_counter_formula)
{
  const guint points = 7;
  GstHarness *h = make_src("rate=0 points=7 pattern=counter");
  auto bufs = pull_n(h, 3);
  for (guint64 i = 0; i < bufs.size(); ++i) {
    auto v = buffer_floats(bufs[i]);
    fail_unless_equals_int(v.size(), points * 3);
    for (guint r = 0; r < points; ++r)
      for (guint c = 0; c < 3; ++c)
        fail_unless_equals_float(v[r * 3 + c],
                                 static_cast<float>(((i * points + r) * 3 + c) % (1u << 24)));
    fail_unless_equals_uint64(GST_BUFFER_OFFSET(bufs[i]), i);
  }
  unref_all(bufs);
  gst_harness_teardown(h);

  // the modulo: at buffer 1 with 3,000,000 points, values wrap past 2^24
  h = make_src("rate=0 points=3000000 pattern=counter num-buffers=2");
  bufs = pull_n(h, 2);
  auto v = buffer_floats(bufs[1]);
  for (std::size_t k : {std::size_t(0), std::size_t(1), v.size() - 1}) {
    guint64 n = 3000000ull * 3 + k;
    fail_unless_equals_float(v[k], static_cast<float>(n % (1u << 24)));
  }
  unref_all(bufs);
  gst_harness_teardown(h);
}
GST_END_TEST;

static std::vector<std::vector<guint8>> run_bytes(const char *props, int n)
{
  GstHarness *h = make_src(props);
  auto bufs = pull_n(h, n);
  std::vector<std::vector<guint8>> out;
  for (auto *b : bufs) out.push_back(buffer_bytes(b));
  unref_all(bufs);
  gst_harness_teardown(h);
  return out;
}

GST_START_TEST(test_determinism)
{
  for (const char *pattern : {"random", "sphere"}) {
    std::string a = std::string("rate=0 points=50 seed=42 pattern=") + pattern;
    std::string b = std::string("rate=0 points=50 seed=43 pattern=") + pattern;
    auto x = run_bytes(a.c_str(), 3);
    auto y = run_bytes(a.c_str(), 3);
    auto z = run_bytes(b.c_str(), 3);
    fail_unless(x == y, "%s: same seed gave different buffers", pattern);
    fail_unless(x != z, "%s: different seeds gave the same buffers", pattern);
    fail_unless(x[0] != x[1], "%s: consecutive buffers are equal", pattern);
  }
}
GST_END_TEST;

GST_START_TEST(test_pattern_ranges)
{
  GstHarness *h = make_src("rate=0 points=2000 pattern=sphere seed=7");
  GstBuffer *b = gst_harness_pull(h);
  auto v = buffer_floats(b);
  for (std::size_t r = 0; r < 2000; ++r) {
    double n =
        std::sqrt(v[3 * r] * v[3 * r] + v[3 * r + 1] * v[3 * r + 1] + v[3 * r + 2] * v[3 * r + 2]);
    fail_unless(std::fabs(n - 1.0) < 1e-5, "row %zu has norm %f", r, n);
  }
  gst_buffer_unref(b);
  gst_harness_teardown(h);

  h = make_src("rate=0 points=2000 pattern=random seed=7");
  b = gst_harness_pull(h);
  v = buffer_floats(b);
  double sum = 0;
  for (float f : v) {
    fail_unless(f >= -1.0f && f < 1.0f);
    sum += f;
  }
  fail_unless(std::fabs(sum / v.size()) < 0.05, "mean %f of uniform [-1, 1) is off",
              sum / v.size());
  gst_buffer_unref(b);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_num_buffers_and_eos)
{
  GstHarness *h = make_src("rate=0 points=3 num-buffers=5");
  auto bufs = pull_n(h, 5);
  unref_all(bufs);
  // then EOS, and nothing after it
  bool eos = false;
  while (!eos) {
    GstEvent *ev = gst_harness_pull_event(h); // waits; NULL after the harness timeout
    fail_unless(ev != nullptr, "no EOS after num-buffers");
    eos = GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
    gst_event_unref(ev);
  }
  fail_unless_equals_int(gst_harness_buffers_in_queue(h), 0);
  gst_harness_teardown(h);
  GstBuffer *b;

  // zero points per buffer are valid, empty buffers
  h = make_src("rate=0 points=0 num-buffers=2");
  b = gst_harness_pull(h);
  fail_unless_equals_int(gst_buffer_get_size(b), 0);
  gst_buffer_unref(b);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_rate)
{
  // rate=20: PTS 50 ms apart, paced by the real clock
  GstHarness *h = gst_harness_new_parse("pointsrc rate=20 points=1 num-buffers=6");
  gst_harness_use_systemclock(h);
  gst_harness_play(h);
  gint64 t0 = g_get_monotonic_time();
  auto bufs = pull_n(h, 6);
  gint64 elapsed_us = g_get_monotonic_time() - t0;
  for (std::size_t i = 1; i < bufs.size(); ++i) {
    fail_unless_equals_uint64(GST_BUFFER_PTS(bufs[i]) - GST_BUFFER_PTS(bufs[i - 1]),
                              50 * GST_MSECOND);
    fail_unless_equals_uint64(GST_BUFFER_DURATION(bufs[i]), 50 * GST_MSECOND);
  }
  // 5 intervals of 50 ms: at least 200 ms even on a loaded machine (pacing never runs early)
  fail_unless(elapsed_us >= 200000, "6 buffers at 20 Hz took only %" G_GINT64_FORMAT " us",
              elapsed_us);
  unref_all(bufs);
  gst_harness_teardown(h);

  // rate=0: as fast as possible, 200 buffers well under the 50 s they would take at 4 Hz
  h = gst_harness_new_parse("pointsrc rate=0 points=1 num-buffers=200");
  gst_harness_use_systemclock(h);
  gst_harness_play(h);
  t0 = g_get_monotonic_time();
  bufs = pull_n(h, 200);
  elapsed_us = g_get_monotonic_time() - t0;
  fail_unless(elapsed_us < 5 * G_USEC_PER_SEC, "rate=0 took %" G_GINT64_FORMAT " us", elapsed_us);
  for (std::size_t i = 1; i < bufs.size(); ++i)
    fail_unless(GST_BUFFER_PTS(bufs[i]) >= GST_BUFFER_PTS(bufs[i - 1]));
  unref_all(bufs);
  gst_harness_teardown(h);
}
GST_END_TEST;

static Suite *pointsrc_suite(void)
{
  Suite *s = suite_create("pointsrc");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_caps_and_defaults);
  tcase_add_test(tc, test_counter_formula);
  tcase_add_test(tc, test_determinism);
  tcase_add_test(tc, test_pattern_ranges);
  tcase_add_test(tc, test_num_buffers_and_eos);
  tcase_add_test(tc, test_rate);
  return s;
}

GST_CHECK_MAIN(pointsrc);
