// SPDX-License-Identifier: LGPL-2.1-or-later
/* npyunpack: accepted forms, zero copy, caps that follow the data, every malformed case, EOS. */
#include "helpers.h"
#include "npy.h"

#include <cstdint>

static std::string npy_file(const std::string &dict, const std::string &payload, int major = 1)
{
  std::size_t pre = major == 1 ? 10 : 12;
  std::string h = dict;
  while ((pre + h.size() + 1) % 64) h.push_back(' ');
  h.push_back('\n');
  std::string s("\x93NUMPY", 6);
  s.push_back(static_cast<char>(major));
  s.push_back('\0');
  std::size_t n = h.size();
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i)
    s.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return s + h + payload;
}

static std::string dict_for(const std::string &descr, const std::string &shape,
                            const char *fortran = "False")
{
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

template <typename T>
static std::string payload(const std::vector<T> &v)
{
  return std::string(reinterpret_cast<const char *>(v.data()), v.size() * sizeof(T));
}

static GstHarness *make_unpack()
{
  GstHarness *h = gst_harness_new("npyunpack");
  gst_harness_set_src_caps_str(h, "application/x-npy");
  return h;
}

static GstBuffer *with_pts(GstBuffer *b, GstClockTime pts)
{
  GST_BUFFER_PTS(b) = pts;
  return b;
}

GST_START_TEST(test_unpack_f32_zero_copy)
{
  GstHarness *h = make_unpack();
  std::vector<float> v = {1, 2, 3, 4, 5, 6};
  std::string file = npy::make_header_f32(2, 3) + payload(v);
  GstBuffer *in = buffer_from(file);
  GST_BUFFER_PTS(in) = 7 * GST_SECOND;
  GST_BUFFER_DURATION(in) = GST_SECOND;
  GstMapInfo in_map;
  gst_buffer_map(in, &in_map, GST_MAP_READ);
  const guint8 *in_data = in_map.data;
  gst_buffer_unmap(in, &in_map);
  gst_buffer_ref(in); // keep it alive to compare memory

  GstBuffer *out = gst_harness_push_and_pull(h, in);
  fail_unless(buffer_floats(out) == v);
  fail_unless_equals_uint64(GST_BUFFER_PTS(out), 7 * GST_SECOND);
  fail_unless_equals_uint64(GST_BUFFER_DURATION(out), GST_SECOND);
  GstMapInfo out_map;
  gst_buffer_map(out, &out_map, GST_MAP_READ);
  fail_unless(out_map.data == in_data + 128, "float32 payload was copied");
  gst_buffer_unmap(out, &out_map);
  fail_unless_equals_int(pad_caps_int(h->sinkpad, "columns"), 3);
  gst_buffer_unref(out);
  gst_buffer_unref(in);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_unpack_dtypes_shapes_versions)
{
  GstHarness *h = make_unpack();
  struct Case {
    std::string file;
    int columns;
    std::vector<float> expect;
  } cases[] = {
      {npy_file(dict_for("<f8", "(2, 2)"), payload<double>({1.5, -2.5, 1e10, 0.125})),
       2,
       {1.5f, -2.5f, 1e10f, 0.125f}},
      {npy_file(dict_for("<i4", "(1, 3)"), payload<std::int32_t>({-1, 0, 16777217})),
       3,
       {-1, 0, 16777216}},
      {npy_file(dict_for("<i8", "(4,)"), payload<std::int64_t>({1, -2, 3, 1ll << 40})),
       4,
       {1, -2, 3, 1099511627776.0f}},
      {npy_file(dict_for("<f4", "(3,)"), payload<float>({9, 8, 7}), 2), 3, {9, 8, 7}},
      {npy_file(dict_for("<f4", "(0, 5)"), "", 3), 5, {}},
      {npy_file(dict_for("=f4", "(1, 2)"), payload<float>({4, 5})), 2, {4, 5}},
  };
  for (auto &c : cases) {
    GstBuffer *out = gst_harness_push_and_pull(h, buffer_from(c.file));
    fail_unless(out != nullptr);
    fail_unless(buffer_floats(out) == c.expect);
    fail_unless_equals_int(pad_caps_int(h->sinkpad, "columns"), c.columns);
    gst_buffer_unref(out);
  }
  guint64 unpacked = 0, dropped = 0;
  g_object_get(h->element, "unpacked", &unpacked, "dropped", &dropped, nullptr);
  fail_unless_equals_uint64(unpacked, G_N_ELEMENTS(cases));
  fail_unless_equals_uint64(dropped, 0);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_unpack_malformed)
{
  GstHarness *h = make_unpack();
  GstBus *bus = attach_bus(h);
  const std::string ok = npy_file(dict_for("<f4", "(1, 3)"), payload<float>({1, 2, 3}));
  std::string bad_magic = ok;
  bad_magic[0] = 'X';
  std::string bad_version = ok;
  bad_version[6] = 9;
  std::string oversized =
      std::string("\x93NUMPY\x02\x00\x00\x00\x10\x00", 12) + std::string(64, ' ');
  std::string past = std::string("\x93NUMPY\x01\x00\xff\x01", 10) + "{'descr': '<f4'";
  struct Case {
    std::string file;
    const char *reason;
  } cases[] = {
      {bad_magic, "bad magic"},
      {bad_version, "unknown format version"},
      {ok.substr(0, 7), "truncated header"},
      {oversized, "oversized header"},
      {past, "header length past end of buffer"},
      {npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3",
                payload<float>({1, 2, 3})),
       "unparsable header dict"},
      {npy_file(dict_for("<f4", "(1, 3)", "True"), payload<float>({1, 2, 3})),
       "fortran_order is True"},
      {npy_file(dict_for(">f4", "(1, 3)"), payload<float>({1, 2, 3})), "big-endian dtype"},
      {npy_file(dict_for("<c8", "(1, 3)"), payload<float>({1, 2, 3, 4, 5, 6})),
       "unsupported dtype"},
      {npy_file(dict_for("<f4", "(1, 1, 3)"), payload<float>({1, 2, 3})), "unsupported shape"},
      {npy_file(dict_for("<f4", "(2, 3)"), payload<float>({1, 2, 3})),
       "shape does not match payload"},
      {npy_file(dict_for("<f4", "(4611686018427387904, 8)"), ""), "shape product overflows"},
  };
  guint64 n = 0;
  for (auto &c : cases) {
    fail_unless_equals_int(gst_harness_push(h, with_pts(buffer_from(c.file), n * GST_SECOND)),
                           GST_FLOW_OK);
    n++;
    fail_unless_equals_int(gst_harness_buffers_in_queue(h), 0);
    auto w = pop_warnings(bus);
    fail_unless_equals_int(w.size(), 1);
    fail_unless(w[0].find(std::string("Dropped a malformed .npy buffer: ") + c.reason) == 0,
                "expected '%s', got '%s'", c.reason, w[0].c_str());
    // the stream goes on: the next good buffer comes out
    GstBuffer *out = gst_harness_push_and_pull(h, buffer_from(ok));
    fail_unless(buffer_floats(out) == std::vector<float>({1, 2, 3}));
    gst_buffer_unref(out);
  }
  guint64 unpacked = 0, dropped = 0;
  g_object_get(h->element, "unpacked", &unpacked, "dropped", &dropped, nullptr);
  fail_unless_equals_uint64(unpacked, G_N_ELEMENTS(cases));
  fail_unless_equals_uint64(dropped, G_N_ELEMENTS(cases));

  fail_unless(gst_harness_push_event(h, gst_event_new_eos()));
  bool eos = false;
  while (GstEvent *ev = gst_harness_try_pull_event(h)) {
    eos |= GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
    gst_event_unref(ev);
  }
  fail_unless(eos);
  detach_bus(h, bus);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_unpack_eos_without_data)
{
  // only malformed input: no caps can be sent, but segment and EOS still reach downstream
  GstHarness *h = make_unpack();
  GstBus *bus = attach_bus(h);
  gst_harness_push(h, buffer_from(std::string("not numpy")));
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()));
  bool eos = false, segment = false;
  while (GstEvent *ev = gst_harness_try_pull_event(h)) {
    eos |= GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
    segment |= GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT;
    gst_event_unref(ev);
  }
  fail_unless(eos && segment);
  fail_unless_equals_int(pop_warnings(bus).size(), 1);
  detach_bus(h, bus);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_unpack_roundtrip_with_pack)
{
  GstHarness *h = gst_harness_new_parse("npypack ! npyunpack");
  gst_harness_set_src_caps_str(h, "application/x-points, columns=(int)4");
  std::vector<float> v(4 * 1000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f;
  GstBuffer *out = gst_harness_push_and_pull(h, buffer_from(v.data(), v.size() * 4));
  fail_unless(buffer_floats(out) == v);
  fail_unless_equals_int(pad_caps_int(h->sinkpad, "columns"), 4);
  gst_buffer_unref(out);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_unpack_refused_columns)
{
  // downstream takes only 3 columns: a (1, 2) array is dropped with a warning, the stream goes on
  GstHarness *h =
      gst_harness_new_parse("npyunpack ! capsfilter caps=application/x-points,columns=3");
  gst_harness_set_src_caps_str(h, "application/x-npy");
  GstBus *bus = attach_bus(h);
  fail_unless_equals_int(
      gst_harness_push(h, buffer_from(npy::make_header_f32(1, 2) + payload<float>({1, 2}))),
      GST_FLOW_OK);
  fail_unless_equals_int(gst_harness_buffers_in_queue(h), 0);
  auto w = pop_warnings(bus);
  fail_unless_equals_int(w.size(), 1);
  fail_unless(w[0].find("downstream does not accept 2 columns") != std::string::npos, "%s",
              w[0].c_str());
  GstBuffer *out = gst_harness_push_and_pull(
      h, buffer_from(npy::make_header_f32(1, 3) + payload<float>({4, 5, 6})));
  fail_unless(buffer_floats(out) == std::vector<float>({4, 5, 6}));
  gst_buffer_unref(out);
  detach_bus(h, bus);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_unpack_max_columns)
{
  // Issue 11: a 128-byte file of shape (0, 2147483647) (and (0, 100000000)) agrees with its empty
  // payload, but is refused by the column bound before any caps are made from it.
  GstHarness *h = make_unpack();
  GstBus *bus = attach_bus(h);
  guint max = 0;
  g_object_get(h->element, "max-columns", &max, nullptr);
  fail_unless_equals_int(max, 4096);
  for (std::uint64_t cols :
       {std::uint64_t(2147483647), std::uint64_t(100000000), std::uint64_t(4097)}) {
    std::string file = npy::make_header_f32(0, cols);
    if (cols == 2147483647) fail_unless_equals_int(file.size(), 128);
    fail_unless_equals_int(gst_harness_push(h, buffer_from(file)), GST_FLOW_OK);
    fail_unless_equals_int(gst_harness_buffers_in_queue(h), 0);
    auto w = pop_warnings(bus);
    fail_unless_equals_int(w.size(), 1);
    fail_unless(w[0].find("Dropped a malformed .npy buffer: too many columns") == 0, "%s",
                w[0].c_str());
    fail_unless(w[0].find(std::to_string(cols) + " columns, more than the limit of 4096") !=
                    std::string::npos,
                "%s", w[0].c_str());
    fail_unless_equals_int(pad_caps_int(h->sinkpad, "columns"), -1); // no caps made from it
  }
  // exactly the bound is accepted, zero rows and with rows
  GstBuffer *out = gst_harness_push_and_pull(h, buffer_from(npy::make_header_f32(0, 4096)));
  fail_unless_equals_int(gst_buffer_get_size(out), 0);
  fail_unless_equals_int(pad_caps_int(h->sinkpad, "columns"), 4096);
  gst_buffer_unref(out);
  std::vector<float> row(4096, 1.5f);
  out = gst_harness_push_and_pull(h, buffer_from(npy::make_header_f32(1, 4096) + payload(row)));
  fail_unless(buffer_floats(out) == row);
  gst_buffer_unref(out);
  // a row count that disagrees with the payload is refused whatever the columns
  gst_harness_push(h, buffer_from(npy::make_header_f32(5, 2) + payload<float>({1, 2})));
  auto w = pop_warnings(bus);
  fail_unless_equals_int(w.size(), 1);
  fail_unless(w[0].find("shape does not match payload") != std::string::npos, "%s", w[0].c_str());
  // the bound is a property
  g_object_set(h->element, "max-columns", 2u, nullptr);
  gst_harness_push(h, buffer_from(npy::make_header_f32(1, 3) + payload<float>({1, 2, 3})));
  fail_unless_equals_int(gst_harness_buffers_in_queue(h), 0);
  fail_unless_equals_int(pop_warnings(bus).size(), 1);
  out = gst_harness_push_and_pull(h,
                                  buffer_from(npy::make_header_f32(1, 2) + payload<float>({1, 2})));
  gst_buffer_unref(out);
  guint64 dropped = 0;
  g_object_get(h->element, "dropped", &dropped, nullptr);
  fail_unless_equals_uint64(dropped, 5);
  detach_bus(h, bus);
  gst_harness_teardown(h);
}
GST_END_TEST;

static Suite *npyunpack_suite(void)
{
  Suite *s = suite_create("npyunpack");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_unpack_f32_zero_copy);
  tcase_add_test(tc, test_unpack_dtypes_shapes_versions);
  tcase_add_test(tc, test_unpack_malformed);
  tcase_add_test(tc, test_unpack_eos_without_data);
  tcase_add_test(tc, test_unpack_roundtrip_with_pack);
  tcase_add_test(tc, test_unpack_refused_columns);
  tcase_add_test(tc, test_unpack_max_columns);
  return s;
}

GST_CHECK_MAIN(npyunpack);
