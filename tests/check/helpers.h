// SPDX-License-Identifier: LGPL-2.1-or-later
/* Small helpers shared by the points gst-check tests. */
#pragma once

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include <cstring>
#include <string>
#include <vector>

/* Bytes of a buffer. */
static inline std::vector<guint8> buffer_bytes(GstBuffer *buf)
{
  std::vector<guint8> v(gst_buffer_get_size(buf));
  if (!v.empty()) gst_buffer_extract(buf, 0, v.data(), v.size());
  return v;
}

/* Float32 values of a buffer. */
static inline std::vector<float> buffer_floats(GstBuffer *buf)
{
  std::vector<float> v(gst_buffer_get_size(buf) / sizeof(float));
  if (!v.empty()) gst_buffer_extract(buf, 0, v.data(), v.size() * sizeof(float));
  return v;
}

static inline GstBuffer *buffer_from(const void *data, gsize size)
{
  if (size == 0) return gst_buffer_new();
  return gst_buffer_new_memdup(data, size);
}

static inline GstBuffer *buffer_from(const std::string &s)
{
  return buffer_from(s.data(), s.size());
}

/* A buffer of float32 values with the given timestamps. */
static inline GstBuffer *floats_buffer(const std::vector<float> &v,
                                       GstClockTime pts = GST_CLOCK_TIME_NONE,
                                       GstClockTime duration = GST_CLOCK_TIME_NONE)
{
  GstBuffer *b = buffer_from(v.data(), v.size() * sizeof(float));
  GST_BUFFER_PTS(b) = pts;
  GST_BUFFER_DURATION(b) = duration;
  return b;
}

/* Feeds the harness application/x-points with the given number of columns. */
static inline void set_points_caps(GstHarness *h, int columns)
{
  std::string caps = "application/x-points, columns=(int)" + std::to_string(columns);
  gst_harness_set_src_caps_str(h, caps.c_str());
}

/* Gives the harness' element a bus so its messages (warnings, element messages) can be read. */
static inline GstBus *attach_bus(GstHarness *h)
{
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  return bus;
}

/* Undoes attach_bus (before gst_harness_teardown). */
static inline void detach_bus(GstHarness *h, GstBus *bus)
{
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
}

/* The caps a fresh `factory` accepts on its sink pad are exactly `expected`. */
static inline void check_sink_caps(const char *factory, const char *expected)
{
  GstHarness *h = gst_harness_new(factory);
  GstCaps *caps = gst_pad_query_caps(GST_PAD_PEER(h->srcpad), nullptr);
  GstCaps *expect = gst_caps_from_string(expected);
  fail_unless(gst_caps_is_equal(caps, expect), "%s: %" GST_PTR_FORMAT, factory, caps);
  gst_caps_unref(caps);
  gst_caps_unref(expect);
  gst_harness_teardown(h);
}

/* Text of every warning message waiting on the bus (message and debug joined). */
static inline std::vector<std::string> pop_warnings(GstBus *bus)
{
  std::vector<std::string> out;
  while (GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING)) {
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_warning(m, &err, &dbg);
    out.push_back(std::string(err->message) + " | " + (dbg ? dbg : ""));
    g_clear_error(&err);
    g_free(dbg);
    gst_message_unref(m);
  }
  return out;
}

/* Integer field of the current caps on a pad, or -1. */
static inline gint pad_caps_int(GstPad *pad, const char *field)
{
  GstCaps *caps = gst_pad_get_current_caps(pad);
  gint v = -1;
  if (caps) {
    gst_structure_get_int(gst_caps_get_structure(caps, 0), field, &v);
    gst_caps_unref(caps);
  }
  return v;
}
