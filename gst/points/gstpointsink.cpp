// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-pointsink
 * @title: pointsink
 *
 * A sink for `application/x-points, columns=C` that prints one line per buffer (message) on
 * stdout, unless `silent`:
 *
 *     pointsink0: #3 shape=(100, 3) min=[-0.99, -1, -0.98] max=[0.97, 0.99, 1] mean=[0.01, -0.02, 0.03] latency=0.412 ms
 *
 * `#N` is the buffer index (from 0), latency is the pipeline running time at render minus the
 * buffer's running time (from its PTS); it is left out when there is no PTS or no clock. With
 * `sync=true` (the default) the sink renders at PTS + the pipeline latency, so the figure includes
 * that configured latency (basesink's 20 ms `processing-deadline` in a live pipeline).
 * Counters are read-only properties: `messages`, `rows`, `bytes`, `dropped`, `columns`,
 * `last-latency`.
 *
 * With `post-messages=true`, each buffer also posts an element message named `pointsink` with
 * the fields `index` (guint64), `rows` (guint64), `columns` (gint), `pts` (guint64, running
 * time in ns, GST_CLOCK_TIME_NONE when unknown), `latency` (gint64, ns, -1 when unknown), and
 * `min`, `max`, `mean` (GstValueArray of gdouble, one per column; empty for zero rows).
 *
 * A buffer whose size is not a whole number of rows is dropped with a warning.
 *
 * The caps' column count comes from upstream (from a remote peer's `.npy` shape, through
 * `npyunpack`), so it is untrusted: the sink accepts at most `max-columns` (default 4096; caps
 * with more are refused, so `npyunpack` drops such a buffer with a warning), and its per-buffer
 * state (min/max/mean) is at most `max-columns` values, allocated only when a buffer has rows.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 pointsrc rate=4 points=10 num-buffers=8 ! pointsink post-messages=true
 * ]|
 */
#include "gstpointsink.h"

#include "bufmap.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

GST_DEBUG_CATEGORY_STATIC(gst_point_sink_debug);
#define GST_CAT_DEFAULT gst_point_sink_debug

enum {
  PROP_0,
  PROP_SILENT,
  PROP_POST_MESSAGES,
  PROP_MESSAGES,
  PROP_ROWS,
  PROP_BYTES,
  PROP_DROPPED,
  PROP_COLUMNS,
  PROP_LAST_LATENCY,
  PROP_MAX_COLUMNS,
};

constexpr gint kDefaultMaxColumns = 4096;

struct GstPointSinkPrivate {
  std::atomic<bool> silent{false};
  std::atomic<bool> post_messages{false};
  std::atomic<gint> columns{0};
  std::atomic<guint64> messages{0};
  std::atomic<guint64> rows{0};
  std::atomic<guint64> bytes{0};
  std::atomic<guint64> dropped{0};
  std::atomic<gint64> last_latency{-1};
  std::atomic<gint> max_columns{kDefaultMaxColumns};
};

struct _GstPointSink {
  GstBaseSink parent;
  GstPointSinkPrivate *priv;
};

G_DEFINE_TYPE(GstPointSink, gst_point_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE(pointsink, "pointsink", GST_RANK_NONE, GST_TYPE_POINT_SINK);

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
                            GST_STATIC_CAPS("application/x-points, columns=(int)[1, MAX]"));

/* The template narrowed to columns [1, max-columns]: accept-caps refuses wider caps. */
static GstCaps *gst_point_sink_get_caps(GstBaseSink *sink, GstCaps *filter)
{
  const gint max = GST_POINT_SINK(sink)->priv->max_columns;
  GstCaps *caps = max > 1
      ? gst_caps_new_simple("application/x-points", "columns", GST_TYPE_INT_RANGE, 1, max, nullptr)
      : gst_caps_new_simple("application/x-points", "columns", G_TYPE_INT, 1,
                            nullptr); // a range needs min < max
  if (filter) {
    GstCaps *both = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(caps);
    caps = both;
  }
  return caps;
}

static gboolean gst_point_sink_set_caps(GstBaseSink *sink, GstCaps *caps)
{
  GstPointSinkPrivate *p = GST_POINT_SINK(sink)->priv;
  gint columns = 0;
  if (!gst_structure_get_int(gst_caps_get_structure(caps, 0), "columns", &columns) || columns < 1)
    return FALSE;
  if (columns > p->max_columns) {
    GST_ELEMENT_WARNING(
        sink, STREAM, FORMAT,
        ("Refused caps of %d columns (max-columns is %d)", columns, p->max_columns.load()),
        (nullptr));
    return FALSE;
  }
  p->columns = columns;
  return TRUE;
}

static std::string format_list(const std::vector<double> &v)
{
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    char num[32];
    g_snprintf(num, sizeof num, "%s%.6g", i ? ", " : "", v[i]);
    s += num;
  }
  return s + "]";
}

static GValue value_array(const std::vector<double> &v)
{
  GValue arr = G_VALUE_INIT;
  gst_value_array_init(&arr, v.size());
  for (double d : v) {
    GValue item = G_VALUE_INIT;
    g_value_init(&item, G_TYPE_DOUBLE);
    g_value_set_double(&item, d);
    gst_value_array_append_and_take_value(&arr, &item);
  }
  return arr;
}

static GstFlowReturn gst_point_sink_render(GstBaseSink *sink, GstBuffer *buf)
{
  GstPointSink *self = GST_POINT_SINK(sink);
  GstPointSinkPrivate *p = self->priv;
  const gint columns = p->columns;
  if (columns < 1) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr), ("no caps before the first buffer"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  BufferMap map(buf, GST_MAP_READ);
  if (!map) {
    GST_ELEMENT_ERROR(self, RESOURCE, READ, (nullptr), ("cannot map buffer"));
    return GST_FLOW_ERROR;
  }
  const gsize row_bytes = static_cast<gsize>(columns) * sizeof(float);
  if (map.size() % row_bytes != 0) {
    p->dropped++;
    GST_ELEMENT_WARNING(
        self, STREAM, FORMAT, ("Dropped a points buffer: size is not a whole number of rows"),
        ("%" G_GSIZE_FORMAT " bytes is not a multiple of %" G_GSIZE_FORMAT, map.size(), row_bytes));
    return GST_FLOW_OK;
  }
  const guint64 rows = map.size() / row_bytes;
  const guint64 index = p->messages.load();
  const bool silent = p->silent, post = p->post_messages;

  // latency: running time now minus the buffer's running time
  gint64 latency = -1;
  GstClockTime pts_rt = GST_CLOCK_TIME_NONE;
  if (GST_BUFFER_PTS_IS_VALID(buf))
    pts_rt = gst_segment_to_running_time(&sink->segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
  if (GST_CLOCK_TIME_IS_VALID(pts_rt)) {
    if (GstClock *clock = gst_element_get_clock(GST_ELEMENT(self))) {
      GstClockTime now = gst_clock_get_time(clock);
      GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
      gst_object_unref(clock);
      if (now >= base) latency = static_cast<gint64>(now - base) - static_cast<gint64>(pts_rt);
    }
  }
  if (latency >= 0) p->last_latency = latency;

  if (!silent || post) {
    // columns <= max-columns (set_caps); a buffer without rows allocates nothing
    const std::size_t n = rows ? static_cast<std::size_t>(columns) : 0;
    std::vector<double> mn(n, std::numeric_limits<double>::infinity());
    std::vector<double> mx(n, -std::numeric_limits<double>::infinity());
    std::vector<double> sum(n, 0.0);
    std::vector<float> row(n);
    for (guint64 r = 0; r < rows; ++r) {
      std::memcpy(row.data(), map.data() + r * row_bytes, row_bytes); // payload may be unaligned
      for (std::size_t c = 0; c < n; ++c) {
        double v = row[c];
        mn[c] = std::min(mn[c], v);
        mx[c] = std::max(mx[c], v);
        sum[c] += v;
      }
    }
    std::vector<double> mean(n);
    for (std::size_t c = 0; c < n; ++c) mean[c] = sum[c] / static_cast<double>(rows);

    if (!silent) {
      g_autofree gchar *name = gst_object_get_name(GST_OBJECT(self));
      std::string lat;
      if (latency >= 0) {
        char b[48];
        g_snprintf(b, sizeof b, " latency=%.3f ms", latency / 1e6);
        lat = b;
      }
      g_print("%s: #%" G_GUINT64_FORMAT " shape=(%" G_GUINT64_FORMAT
              ", %d) min=%s max=%s mean=%s%s\n",
              name, index, rows, columns, format_list(mn).c_str(), format_list(mx).c_str(),
              format_list(mean).c_str(), lat.c_str());
    }
    if (post) {
      GstStructure *s =
          gst_structure_new("pointsink", "index", G_TYPE_UINT64, index, "rows", G_TYPE_UINT64, rows,
                            "columns", G_TYPE_INT, columns, "pts", G_TYPE_UINT64, pts_rt, "latency",
                            G_TYPE_INT64, latency, nullptr);
      GValue vmin = value_array(mn), vmax = value_array(mx), vmean = value_array(mean);
      gst_structure_take_value(s, "min", &vmin);
      gst_structure_take_value(s, "max", &vmax);
      gst_structure_take_value(s, "mean", &vmean);
      gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
    }
  }
  p->rows += rows;
  p->bytes += map.size();
  p->messages++;
  return GST_FLOW_OK;
}

static gboolean gst_point_sink_start(GstBaseSink *sink)
{
  GstPointSinkPrivate *p = GST_POINT_SINK(sink)->priv;
  p->messages = 0;
  p->rows = 0;
  p->bytes = 0;
  p->dropped = 0;
  p->last_latency = -1;
  return TRUE;
}

static void gst_point_sink_set_property(GObject *object, guint prop_id, const GValue *value,
                                        GParamSpec *pspec)
{
  GstPointSinkPrivate *p = GST_POINT_SINK(object)->priv;
  switch (prop_id) {
  case PROP_SILENT: p->silent = g_value_get_boolean(value); break;
  case PROP_POST_MESSAGES: p->post_messages = g_value_get_boolean(value); break;
  case PROP_MAX_COLUMNS: p->max_columns = g_value_get_int(value); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_point_sink_get_property(GObject *object, guint prop_id, GValue *value,
                                        GParamSpec *pspec)
{
  GstPointSinkPrivate *p = GST_POINT_SINK(object)->priv;
  switch (prop_id) {
  case PROP_SILENT: g_value_set_boolean(value, p->silent); break;
  case PROP_POST_MESSAGES: g_value_set_boolean(value, p->post_messages); break;
  case PROP_MESSAGES: g_value_set_uint64(value, p->messages); break;
  case PROP_ROWS: g_value_set_uint64(value, p->rows); break;
  case PROP_BYTES: g_value_set_uint64(value, p->bytes); break;
  case PROP_DROPPED: g_value_set_uint64(value, p->dropped); break;
  case PROP_COLUMNS: g_value_set_int(value, p->columns); break;
  case PROP_LAST_LATENCY: g_value_set_int64(value, p->last_latency); break;
  case PROP_MAX_COLUMNS: g_value_set_int(value, p->max_columns); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_point_sink_finalize(GObject *object)
{
  delete GST_POINT_SINK(object)->priv;
  G_OBJECT_CLASS(gst_point_sink_parent_class)->finalize(object);
}

static void gst_point_sink_class_init(GstPointSinkClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSinkClass *basesink_class = GST_BASE_SINK_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_point_sink_debug, "pointsink", 0, "Point sink");
  gobject_class->set_property = gst_point_sink_set_property;
  gobject_class->get_property = gst_point_sink_get_property;
  gobject_class->finalize = gst_point_sink_finalize;

  const auto rw =
      GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  const auto ro = GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(
      gobject_class, PROP_SILENT,
      g_param_spec_boolean("silent", "Silent", "Do not print a line per buffer", FALSE, rw));
  g_object_class_install_property(
      gobject_class, PROP_POST_MESSAGES,
      g_param_spec_boolean("post-messages", "Post messages",
                           "Post an element message 'pointsink' per buffer (index, rows, columns, "
                           "pts, latency, min, max, mean)",
                           FALSE, rw));
  g_object_class_install_property(
      gobject_class, PROP_MESSAGES,
      g_param_spec_uint64("messages", "Messages", "Buffers received", 0, G_MAXUINT64, 0, ro));
  g_object_class_install_property(
      gobject_class, PROP_ROWS,
      g_param_spec_uint64("rows", "Rows", "Rows (points) received", 0, G_MAXUINT64, 0, ro));
  g_object_class_install_property(
      gobject_class, PROP_BYTES,
      g_param_spec_uint64("bytes", "Bytes", "Payload bytes received", 0, G_MAXUINT64, 0, ro));
  g_object_class_install_property(
      gobject_class, PROP_DROPPED,
      g_param_spec_uint64("dropped", "Dropped", "Buffers dropped (not a whole number of rows)", 0,
                          G_MAXUINT64, 0, ro));
  g_object_class_install_property(gobject_class, PROP_COLUMNS,
                                  g_param_spec_int("columns", "Columns",
                                                   "Columns of the current caps (0 before caps)", 0,
                                                   G_MAXINT, 0, ro));
  g_object_class_install_property(
      gobject_class, PROP_LAST_LATENCY,
      g_param_spec_int64("last-latency", "Last latency",
                         "Latency of the last buffer with a known one (running time at render "
                         "minus PTS), ns; -1 = unknown",
                         -1, G_MAXINT64, -1, ro));
  g_object_class_install_property(
      gobject_class, PROP_MAX_COLUMNS,
      g_param_spec_int(
          "max-columns", "Max columns",
          "Largest column count accepted in caps (upstream's shape is untrusted: per-buffer state "
          "grows "
          "with the columns)",
          1, G_MAXINT, kDefaultMaxColumns,
          GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_set_static_metadata(element_class, "Point sink", "Sink/Points",
                                        "Logs one line per points buffer (index, shape, "
                                        "min/max/mean per column, latency) and counts them",
                                        "pointcast");

  basesink_class->get_caps = gst_point_sink_get_caps;
  basesink_class->set_caps = gst_point_sink_set_caps;
  basesink_class->render = gst_point_sink_render;
  basesink_class->start = gst_point_sink_start;
}

static void gst_point_sink_init(GstPointSink *self)
{
  self->priv = new GstPointSinkPrivate();
  gst_base_sink_set_sync(GST_BASE_SINK(self), TRUE);
}
