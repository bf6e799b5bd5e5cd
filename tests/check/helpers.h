/* Small helpers shared by the points gst-check tests. */
#pragma once

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include <cstring>
#include <string>
#include <vector>

/* Bytes of a buffer. */
static inline std::vector<guint8>
buffer_bytes(GstBuffer *buf)
{
  std::vector<guint8> v(gst_buffer_get_size(buf));
  if (!v.empty())
    gst_buffer_extract(buf, 0, v.data(), v.size());
  return v;
}

/* Float32 values of a buffer. */
static inline std::vector<float>
buffer_floats(GstBuffer *buf)
{
  std::vector<float> v(gst_buffer_get_size(buf) / sizeof(float));
  if (!v.empty())
    gst_buffer_extract(buf, 0, v.data(), v.size() * sizeof(float));
  return v;
}

static inline GstBuffer *
buffer_from(const void *data, gsize size)
{
  if (size == 0)
    return gst_buffer_new();
  return gst_buffer_new_memdup(data, size);
}

static inline GstBuffer *
buffer_from(const std::string &s)
{
  return buffer_from(s.data(), s.size());
}

/* Gives the harness' element a bus so its messages (warnings, element messages) can be read. */
static inline GstBus *
attach_bus(GstHarness *h)
{
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  return bus;
}

/* Text of every warning message waiting on the bus (message and debug joined). */
static inline std::vector<std::string>
pop_warnings(GstBus *bus)
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
static inline gint
pad_caps_int(GstPad *pad, const char *field)
{
  GstCaps *caps = gst_pad_get_current_caps(pad);
  gint v = -1;
  if (caps) {
    gst_structure_get_int(gst_caps_get_structure(caps, 0), field, &v);
    gst_caps_unref(caps);
  }
  return v;
}
