// SPDX-License-Identifier: LGPL-2.1-or-later
/* npypack: exact numpy.save bytes, caps, timestamps, zero rows, column changes, bad sizes, EOS. */
#include "helpers.h"
#include "npy.h"

static GstHarness *make_pack(int columns)
{
  GstHarness *h = gst_harness_new("npypack");
  set_points_caps(h, columns);
  return h;
}

/* Input rows; every buffer lasts 250 ms, so the duration passed through can be checked. */
static GstBuffer *rows_buffer(const std::vector<float> &v, GstClockTime pts)
{
  return floats_buffer(v, pts, 250 * GST_MSECOND);
}

GST_START_TEST(test_pack_bytes)
{
  GstHarness *h = make_pack(3);
  std::vector<float> v = {1, 2, 3, 4.5f, -5, 6e7f};
  GstBuffer *out = gst_harness_push_and_pull(h, rows_buffer(v, 3 * GST_SECOND));
  fail_unless(out != nullptr);
  auto bytes = buffer_bytes(out);
  // numpy.save(f, np.array([[1, 2, 3], [4.5, -5, 6e7]], '<f4')) writes exactly this
  std::string expect = std::string("\x93NUMPY\x01\x00v\x00", 10) +
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  expect.append(127 - expect.size(), ' ');
  expect.push_back('\n');
  expect.append(reinterpret_cast<const char *>(v.data()), v.size() * sizeof(float));
  fail_unless(std::string(bytes.begin(), bytes.end()) == expect);
  fail_unless_equals_uint64(GST_BUFFER_PTS(out), 3 * GST_SECOND);
  fail_unless_equals_uint64(GST_BUFFER_DURATION(out), 250 * GST_MSECOND);

  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  fail_unless(gst_structure_has_name(gst_caps_get_structure(caps, 0), "application/x-npy"));
  gst_caps_unref(caps);
  gst_buffer_unref(out);

  // zero rows: a valid (0, 3) file, header only
  out = gst_harness_push_and_pull(h, rows_buffer({}, 4 * GST_SECOND));
  bytes = buffer_bytes(out);
  auto r = npy::parse(bytes.data(), bytes.size());
  fail_unless(r.ok(), "%s", r.detail.c_str());
  fail_unless_equals_int(r.header.rows, 0);
  fail_unless_equals_int(r.header.columns, 3);
  fail_unless_equals_int(bytes.size(), 128);
  gst_buffer_unref(out);

  // EOS goes through
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()));
  GstEvent *ev;
  bool eos = false;
  while ((ev = gst_harness_try_pull_event(h))) {
    eos |= GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
    gst_event_unref(ev);
  }
  fail_unless(eos);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_pack_large_and_columns)
{
  GstHarness *h = make_pack(3);
  std::vector<float> big(1000000 * 3);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 1000);
  for (int round = 0; round < 2; ++round) { // second round reuses the pooled buffer
    GstBuffer *out = gst_harness_push_and_pull(h, rows_buffer(big, round * GST_SECOND));
    auto bytes = buffer_bytes(out);
    auto r = npy::parse(bytes.data(), bytes.size());
    fail_unless(r.ok(), "%s", r.detail.c_str());
    fail_unless_equals_int(r.header.rows, 1000000);
    fail_unless(std::memcmp(bytes.data() + r.header.data_offset, big.data(), big.size() * 4) == 0);
    gst_buffer_unref(out);
  }
  // new caps mid-stream: columns follow
  set_points_caps(h, 2);
  GstBuffer *out = gst_harness_push_and_pull(h, rows_buffer({1, 2, 3, 4, 5, 6}, 5 * GST_SECOND));
  auto bytes = buffer_bytes(out);
  auto r = npy::parse(bytes.data(), bytes.size());
  fail_unless(r.ok());
  fail_unless_equals_int(r.header.rows, 3);
  fail_unless_equals_int(r.header.columns, 2);
  gst_buffer_unref(out);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_pack_bad_size_dropped)
{
  GstHarness *h = make_pack(3);
  GstBus *bus = attach_bus(h);
  guint8 junk[10] = {0};
  fail_unless_equals_int(gst_harness_push(h, buffer_from(junk, sizeof junk)), GST_FLOW_OK);
  fail_unless_equals_int(gst_harness_buffers_in_queue(h), 0);
  auto w = pop_warnings(bus);
  fail_unless_equals_int(w.size(), 1);
  fail_unless(w[0].find("not a whole number of rows") != std::string::npos, "%s", w[0].c_str());
  // the stream goes on
  GstBuffer *out = gst_harness_push_and_pull(h, rows_buffer({1, 2, 3}, 0));
  fail_unless(out != nullptr);
  gst_buffer_unref(out);
  detach_bus(h, bus);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_pack_caps)
{
  check_sink_caps("npypack", "application/x-points, columns=(int)[1, 2147483647]");
}
GST_END_TEST;

static Suite *npypack_suite(void)
{
  Suite *s = suite_create("npypack");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_pack_bytes);
  tcase_add_test(tc, test_pack_large_and_columns);
  tcase_add_test(tc, test_pack_bad_size_dropped);
  tcase_add_test(tc, test_pack_caps);
  return s;
}

GST_CHECK_MAIN(npypack);
