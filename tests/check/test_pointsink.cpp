// SPDX-License-Identifier: LGPL-2.1-or-later
/* pointsink: log line, counters, element messages, latency, bad sizes, EOS. */
#include <fstream>

#include "helpers.h"
#include "npy.h"

static std::vector<std::string> printed;

static void collect_print(const gchar *s)
{
  printed.emplace_back(s);
}

static GstHarness *make_sink(const char *name)
{
  GstElement *e = gst_element_factory_make("pointsink", name);
  g_object_set(e, "sync", FALSE, nullptr);
  GstHarness *h = gst_harness_new_with_element(e, "sink", nullptr);
  set_points_caps(h, 3);
  return h;
}

static std::vector<double> array_field(const GstStructure *s, const char *name)
{
  std::vector<double> out;
  const GValue *arr = gst_structure_get_value(s, name);
  fail_unless(arr && GST_VALUE_HOLDS_ARRAY(arr), "%s missing", name);
  for (guint i = 0; i < gst_value_array_get_size(arr); ++i)
    out.push_back(g_value_get_double(gst_value_array_get_value(arr, i)));
  return out;
}

GST_START_TEST(test_sink_properties)
{
  GstElement *e = gst_element_factory_make("pointsink", nullptr);
  gboolean silent, post;
  guint64 messages, rows, bytes, dropped;
  gint64 latency;
  gint columns;
  g_object_get(e, "silent", &silent, "post-messages", &post, "messages", &messages, "rows", &rows,
               "bytes", &bytes, "dropped", &dropped, "last-latency", &latency, "columns", &columns,
               nullptr);
  fail_unless(!silent && !post);
  fail_unless(messages == 0 && rows == 0 && bytes == 0 && dropped == 0);
  fail_unless_equals_int64(latency, -1);
  fail_unless_equals_int(columns, 0);
  g_object_set(e, "silent", TRUE, "post-messages", TRUE, nullptr);
  g_object_get(e, "silent", &silent, "post-messages", &post, nullptr);
  fail_unless(silent && post);
  // counters are read-only
  GParamSpec *ps = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "messages");
  fail_unless(ps && !(ps->flags & G_PARAM_WRITABLE));
  gst_object_unref(e);
}
GST_END_TEST;

GST_START_TEST(test_sink_log_and_counters)
{
  printed.clear();
  GPrintFunc old = g_set_print_handler(collect_print);
  GstHarness *h = make_sink("ps");
  fail_unless_equals_int(gst_harness_push(h, floats_buffer({1, 2, 3, 3, -4, 6})), GST_FLOW_OK);
  fail_unless_equals_int(gst_harness_push(h, floats_buffer({})), GST_FLOW_OK);
  g_set_print_handler(old);
  fail_unless_equals_int(printed.size(), 2);
  fail_unless_equals_string(printed[0].c_str(),
                            "ps: #0 shape=(2, 3) min=[1, -4, 3] max=[3, 2, 6] mean=[2, -1, 4.5]\n");
  fail_unless_equals_string(printed[1].c_str(), "ps: #1 shape=(0, 3) min=[] max=[] mean=[]\n");
  guint64 messages, rows, bytes;
  gint columns;
  g_object_get(h->element, "messages", &messages, "rows", &rows, "bytes", &bytes, "columns",
               &columns, nullptr);
  fail_unless_equals_uint64(messages, 2);
  fail_unless_equals_uint64(rows, 2);
  fail_unless_equals_uint64(bytes, 24);
  fail_unless_equals_int(columns, 3);

  // silent: no line, still counted
  printed.clear();
  old = g_set_print_handler(collect_print);
  g_object_set(h->element, "silent", TRUE, nullptr);
  gst_harness_push(h, floats_buffer({1, 1, 1}));
  g_set_print_handler(old);
  fail_unless_equals_int(printed.size(), 0);
  g_object_get(h->element, "messages", &messages, nullptr);
  fail_unless_equals_uint64(messages, 3);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_sink_messages_latency_eos)
{
  GstHarness *h = make_sink(nullptr);
  g_object_set(h->element, "silent", TRUE, "post-messages", TRUE, nullptr);
  GstBus *bus = attach_bus(h);
  gst_harness_use_systemclock(h);
  GstClock *clock = gst_system_clock_obtain();
  gst_element_set_clock(h->element, clock);
  gst_element_set_base_time(h->element, gst_clock_get_time(clock));
  gst_object_unref(clock);

  fail_unless_equals_int(gst_harness_push(h, floats_buffer({0, 10, 20, 2, 30, 40}, 0)),
                         GST_FLOW_OK);
  GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT);
  fail_unless(m != nullptr);
  const GstStructure *s = gst_message_get_structure(m);
  fail_unless(gst_structure_has_name(s, "pointsink"));
  guint64 index, rows, pts;
  gint columns;
  gint64 latency;
  fail_unless(gst_structure_get(s, "index", G_TYPE_UINT64, &index, "rows", G_TYPE_UINT64, &rows,
                                "columns", G_TYPE_INT, &columns, "pts", G_TYPE_UINT64, &pts,
                                "latency", G_TYPE_INT64, &latency, nullptr));
  fail_unless_equals_uint64(index, 0);
  fail_unless_equals_uint64(rows, 2);
  fail_unless_equals_int(columns, 3);
  fail_unless_equals_uint64(pts, 0);
  // running time since base time, minus PTS 0: known, small, non-negative
  fail_unless(latency >= 0 && latency < 30 * GST_SECOND, "latency %" G_GINT64_FORMAT, latency);
  fail_unless(array_field(s, "min") == std::vector<double>({0, 10, 20}));
  fail_unless(array_field(s, "max") == std::vector<double>({2, 30, 40}));
  fail_unless(array_field(s, "mean") == std::vector<double>({1, 20, 30}));
  gst_message_unref(m);
  gint64 last;
  g_object_get(h->element, "last-latency", &last, nullptr);
  fail_unless(last >= 0);

  // without a PTS the latency is unknown
  gst_harness_push(h, floats_buffer({1, 2, 3}));
  m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT);
  fail_unless(m != nullptr);
  fail_unless(gst_structure_get_int64(gst_message_get_structure(m), "latency", &latency));
  fail_unless_equals_int64(latency, -1);
  gst_message_unref(m);

  // a buffer that is not a whole number of rows: warning, dropped, stream goes on
  guint8 junk[5] = {0};
  fail_unless_equals_int(gst_harness_push(h, buffer_from(junk, 5)), GST_FLOW_OK);
  auto w = pop_warnings(bus);
  fail_unless_equals_int(w.size(), 1);
  fail_unless(w[0].find("not a whole number of rows") != std::string::npos);
  guint64 dropped, messages;
  g_object_get(h->element, "dropped", &dropped, "messages", &messages, nullptr);
  fail_unless_equals_uint64(dropped, 1);
  fail_unless_equals_uint64(messages, 2);

  fail_unless(gst_harness_push_event(h, gst_event_new_eos()));
  m = gst_bus_timed_pop_filtered(bus, 5 * GST_SECOND, GST_MESSAGE_EOS);
  fail_unless(m != nullptr, "no EOS message");
  gst_message_unref(m);
  detach_bus(h, bus);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_sink_caps)
{
  check_sink_caps("pointsink", "application/x-points, columns=(int)[1, 4096]");
}
GST_END_TEST;

GST_START_TEST(test_sink_in_pipeline)
{
  // pointsrc ! npypack ! npyunpack ! pointsink reaches EOS with every row counted and a latency
  GstElement *p = gst_parse_launch("pointsrc rate=50 points=10 num-buffers=10 pattern=counter ! "
                                   "npypack ! npyunpack ! pointsink name=s silent=true",
                                   nullptr);
  fail_unless(p != nullptr);
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(p);
  GstMessage *m = gst_bus_timed_pop_filtered(bus, 20 * GST_SECOND,
                                             GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS);
  gst_message_unref(m);
  GstElement *s = gst_bin_get_by_name(GST_BIN(p), "s");
  guint64 messages, rows;
  gint64 latency;
  g_object_get(s, "messages", &messages, "rows", &rows, "last-latency", &latency, nullptr);
  fail_unless_equals_uint64(messages, 10);
  fail_unless_equals_uint64(rows, 100);
  fail_unless(latency >= 0 && latency < 5 * GST_SECOND);
  gst_object_unref(s);
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
}
GST_END_TEST;

/* Peak resident set size of this process in KiB (VmHWM), after resetting it to the current RSS. */
static long vm_hwm_kib()
{
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

static void reset_hwm()
{
  std::ofstream("/proc/self/clear_refs") << "5"; // Linux: peak RSS back to the current RSS
}

/* Pushes each .npy file through `desc` (npyunpack ... pointsink) and returns the growth of peak
 * RSS in KiB while doing so. */
static long hwm_growth_pushing(const char *desc, const std::vector<std::string> &files,
                               guint64 *rendered)
{
  GstHarness *h = gst_harness_new_parse(desc);
  gst_harness_set_src_caps_str(h, "application/x-npy");
  GstBus *bus = attach_bus(h);
  reset_hwm();
  long before = vm_hwm_kib();
  for (const auto &f : files)
    fail_unless_equals_int(gst_harness_push(h, buffer_from(f)), GST_FLOW_OK);
  long growth = vm_hwm_kib() - before;
  GstElement *sink = gst_bin_get_by_name(GST_BIN(h->element), "s");
  g_object_get(sink, "messages", rendered, nullptr);
  gst_object_unref(sink);
  detach_bus(h, bus);
  gst_harness_teardown(h);
  return growth;
}

GST_START_TEST(test_sink_untrusted_shape_memory)
{
  // Issue 11's reproductions: 128-byte files of shape (0, 2147483647) and (0, 100000000) made
  // pointsink allocate 24 GB and 3.5 GB (per-column statistics sized from the shape).
  const std::vector<std::string> files = {npy::make_header_f32(0, 2147483647),
                                          npy::make_header_f32(0, 100000000)};
  const long bound_kib = 16 * 1024;
  printed.clear();
  GPrintFunc old = g_set_print_handler(collect_print);
  guint64 rendered = 0;
  // as shipped: npyunpack refuses them (max-columns 4096)
  long growth = hwm_growth_pushing("npyunpack ! pointsink name=s sync=false post-messages=true",
                                   files, &rendered);
  fail_unless(growth >= 0 && growth < bound_kib, "peak RSS grew by %ld KiB", growth);
  fail_unless_equals_uint64(rendered, 0);
  // both bounds lifted: the shape reaches pointsink, which still allocates nothing for zero rows
  growth = hwm_growth_pushing(
      "npyunpack max-columns=2147483647 ! pointsink name=s sync=false post-messages=true "
      "max-columns=2147483647",
      files, &rendered);
  g_set_print_handler(old);
  fail_unless(growth >= 0 && growth < bound_kib, "peak RSS grew by %ld KiB", growth);
  fail_unless_equals_uint64(rendered, 2);
  fail_unless_equals_int(printed.size(), 2);
  fail_unless(printed[0].find("shape=(0, 2147483647) min=[] max=[] mean=[]") != std::string::npos,
              "%s", printed[0].c_str());
}
GST_END_TEST;

GST_START_TEST(test_sink_max_columns)
{
  // caps from upstream are untrusted too: more than max-columns is refused at accept-caps
  GstElement *e = gst_element_factory_make("pointsink", nullptr);
  gint max = 0;
  g_object_get(e, "max-columns", &max, nullptr);
  fail_unless_equals_int(max, 4096);
  GstPad *pad = gst_element_get_static_pad(e, "sink");
  GstCaps *wide = gst_caps_from_string("application/x-points, columns=(int)4097");
  GstCaps *fits = gst_caps_from_string("application/x-points, columns=(int)4096");
  fail_unless(!gst_pad_query_accept_caps(pad, wide));
  fail_unless(gst_pad_query_accept_caps(pad, fits));
  g_object_set(e, "max-columns", 5000, nullptr);
  fail_unless(gst_pad_query_accept_caps(pad, wide));
  g_object_set(e, "max-columns", 1, nullptr);
  fail_unless(!gst_pad_query_accept_caps(pad, fits));
  gst_caps_unref(wide);
  gst_caps_unref(fits);
  gst_object_unref(pad);
  gst_object_unref(e);

  // a harness forcing such caps: the buffer is not rendered, nothing is allocated for it
  e = gst_element_factory_make("pointsink", nullptr);
  g_object_set(e, "sync", FALSE, "silent", TRUE, nullptr);
  GstHarness *h = gst_harness_new_with_element(e, "sink", nullptr);
  set_points_caps(h, 100000000);
  fail_unless(gst_harness_push(h, floats_buffer({})) != GST_FLOW_OK);
  guint64 messages = 1;
  g_object_get(h->element, "messages", &messages, nullptr);
  fail_unless_equals_uint64(messages, 0);
  gst_harness_teardown(h);
}
GST_END_TEST;

static Suite *pointsink_suite(void)
{
  Suite *s = suite_create("pointsink");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_sink_properties);
  tcase_add_test(tc, test_sink_log_and_counters);
  tcase_add_test(tc, test_sink_messages_latency_eos);
  tcase_add_test(tc, test_sink_caps);
  tcase_add_test(tc, test_sink_in_pipeline);
  tcase_add_test(tc, test_sink_untrusted_shape_memory);
  tcase_add_test(tc, test_sink_max_columns);
  return s;
}

GST_CHECK_MAIN(pointsink);
