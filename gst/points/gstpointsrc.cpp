// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-pointsrc
 * @title: pointsrc
 *
 * A live source of 3-D points: each buffer is `points` rows of three little-endian float32
 * values (x, y, z), caps `application/x-points, columns=(int)3`, timestamped in running time.
 *
 * `rate` buffers are produced per second, paced by the pipeline clock (buffer n has PTS
 * t0 + n / rate, where t0 is the running time of the first buffer). `rate=0` means "as fast as
 * possible": no pacing, each buffer gets the running time at which it was made as PTS (or none
 * without a clock); useful for benchmarks and tests.
 *
 * Patterns:
 * - `random`: uniform values in [-1, 1), from a SplitMix64 generator seeded with `seed`.
 * - `sphere`: points uniformly distributed on the unit sphere, from the same generator.
 * - `counter`: every value is predictable, so a receiver can check content exactly. The value
 *   at buffer index i (0 for the first buffer after start), row r, column c is
 *   `float(((i * points + r) * 3 + c) mod 2^24)` (exact in float32).
 *
 * The same properties give the same buffers (content, offsets) on every run.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 pointsrc rate=10 points=4 pattern=counter num-buffers=20 ! pointsink
 * ]|
 */
#include "gstpointsrc.h"

#include "bufmap.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <numbers>

GST_DEBUG_CATEGORY_STATIC(gst_point_src_debug);
#define GST_CAT_DEFAULT gst_point_src_debug

namespace {

constexpr double kDefaultRate = 4.0;
constexpr guint kDefaultPoints = 100;
constexpr guint kMaxPoints = 100000000;
constexpr GstPointSrcPattern kDefaultPattern = GST_POINT_SRC_PATTERN_RANDOM;
constexpr guint64 kDefaultSeed = 0;
constexpr guint kColumns = 3;

enum { PROP_0, PROP_RATE, PROP_POINTS, PROP_PATTERN, PROP_SEED };

/* SplitMix64: tiny, fast, and fully specified, so other implementations can reproduce it. */
struct SplitMix64 {
  guint64 state = 0;
  guint64 next()
  {
    guint64 z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /* Uniform in [-1, 1) with 24 significant bits. */
  float symmetric()
  {
    return static_cast<float>(static_cast<double>(next() >> 40) / 8388608.0 - 1.0);
  }
};

} // namespace

struct GstPointSrcPrivate {
  std::mutex lock; // guards the properties
  double rate = kDefaultRate;
  guint points = kDefaultPoints;
  GstPointSrcPattern pattern = kDefaultPattern;
  guint64 seed = kDefaultSeed;

  // streaming state, reset in start()
  SplitMix64 rng;
  guint64 index = 0;
  GstClockTime next_pts = GST_CLOCK_TIME_NONE;
};

struct _GstPointSrc {
  GstPushSrc parent;
  GstPointSrcPrivate *priv;
};

G_DEFINE_TYPE(GstPointSrc, gst_point_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE(pointsrc, "pointsrc", GST_RANK_NONE, GST_TYPE_POINT_SRC);

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-points, columns=(int)3"));

GType gst_point_src_pattern_get_type(void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_POINT_SRC_PATTERN_RANDOM, "Uniform random values in [-1, 1)", "random"},
      {GST_POINT_SRC_PATTERN_SPHERE, "Random points on the unit sphere", "sphere"},
      {GST_POINT_SRC_PATTERN_COUNTER,
       "Value (i*points + r)*3 + c mod 2^24 at buffer i, row r, column c", "counter"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstPointSrcPattern", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

static GstClockTime current_running_time(GstElement *element)
{
  GstClock *clock = gst_element_get_clock(element);
  if (!clock) return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  GstClockTime base = gst_element_get_base_time(element);
  return now >= base ? now - base : 0;
}

static void fill_points(GstPointSrcPrivate *p, GstPointSrcPattern pattern, guint points, float *out)
{
  switch (pattern) {
  case GST_POINT_SRC_PATTERN_RANDOM:
    for (guint i = 0; i < points * kColumns; ++i) out[i] = p->rng.symmetric();
    break;
  case GST_POINT_SRC_PATTERN_SPHERE:
    for (guint r = 0; r < points; ++r) {
      double z = p->rng.symmetric();
      double phi = (p->rng.symmetric() + 1.0) * std::numbers::pi;
      double s = std::sqrt(std::max(0.0, 1.0 - z * z));
      out[r * 3 + 0] = static_cast<float>(s * std::cos(phi));
      out[r * 3 + 1] = static_cast<float>(s * std::sin(phi));
      out[r * 3 + 2] = static_cast<float>(z);
    }
    break;
  case GST_POINT_SRC_PATTERN_COUNTER: {
    guint64 base = p->index * points * kColumns;
    for (guint i = 0; i < points * kColumns; ++i)
      out[i] = static_cast<float>((base + i) & 0xffffffULL);
    break;
  }
  }
}

static GstFlowReturn gst_point_src_create(GstPushSrc *psrc, GstBuffer **outbuf)
{
  GstPointSrc *self = GST_POINT_SRC(psrc);
  GstPointSrcPrivate *p = self->priv;
  double rate;
  guint points;
  GstPointSrcPattern pattern;
  {
    std::lock_guard<std::mutex> g(p->lock);
    rate = p->rate;
    points = p->points;
    pattern = p->pattern;
  }

  GstBuffer *buf = gst_buffer_new_allocate(
      nullptr, static_cast<gsize>(points) * kColumns * sizeof(float), nullptr);
  if (!buf) {
    GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT, (nullptr),
                      ("cannot allocate %u points", points));
    return GST_FLOW_ERROR;
  }
  {
    BufferMap map(buf, GST_MAP_WRITE);
    if (!map) {
      gst_buffer_unref(buf);
      GST_ELEMENT_ERROR(self, RESOURCE, WRITE, (nullptr), ("cannot map buffer"));
      return GST_FLOW_ERROR;
    }
    fill_points(p, pattern, points, reinterpret_cast<float *>(map.data()));
  }

  if (rate > 0) {
    GstClockTime duration = static_cast<GstClockTime>(GST_SECOND / rate);
    if (!GST_CLOCK_TIME_IS_VALID(p->next_pts)) {
      GstClockTime now = current_running_time(GST_ELEMENT(self));
      p->next_pts = GST_CLOCK_TIME_IS_VALID(now) ? now : 0;
    }
    GST_BUFFER_PTS(buf) = p->next_pts;
    GST_BUFFER_DURATION(buf) = duration;
    p->next_pts += duration; // incremental, so a rate change mid-stream keeps PTS monotonic
  } else {
    GST_BUFFER_PTS(buf) = current_running_time(GST_ELEMENT(self));
  }
  GST_BUFFER_OFFSET(buf) = p->index;
  GST_BUFFER_OFFSET_END(buf) = p->index + 1;
  p->index++;
  *outbuf = buf;
  return GST_FLOW_OK;
}

/* Lets basesrc wait on the clock until each buffer's PTS (live pacing); no wait when rate=0. */
static void gst_point_src_get_times(GstBaseSrc *src, GstBuffer *buffer, GstClockTime *start,
                                    GstClockTime *end)
{
  *start = *end = GST_CLOCK_TIME_NONE;
  if (GST_BUFFER_DURATION_IS_VALID(buffer) && GST_BUFFER_PTS_IS_VALID(buffer)) {
    *start = GST_BUFFER_PTS(buffer);
    *end = *start + GST_BUFFER_DURATION(buffer);
  }
}

/* Buffers are made on demand, so any amount of downstream latency is fine (no max). */
static gboolean gst_point_src_query(GstBaseSrc *src, GstQuery *query)
{
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    gst_query_set_latency(query, TRUE, 0, GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  return GST_BASE_SRC_CLASS(gst_point_src_parent_class)->query(src, query);
}

static gboolean gst_point_src_start(GstBaseSrc *src)
{
  GstPointSrcPrivate *p = GST_POINT_SRC(src)->priv;
  std::lock_guard<std::mutex> g(p->lock);
  p->rng.state = p->seed;
  p->index = 0;
  p->next_pts = GST_CLOCK_TIME_NONE;
  return TRUE;
}

static void gst_point_src_set_property(GObject *object, guint prop_id, const GValue *value,
                                       GParamSpec *pspec)
{
  GstPointSrcPrivate *p = GST_POINT_SRC(object)->priv;
  std::lock_guard<std::mutex> g(p->lock);
  switch (prop_id) {
  case PROP_RATE: p->rate = g_value_get_double(value); break;
  case PROP_POINTS: p->points = g_value_get_uint(value); break;
  case PROP_PATTERN: p->pattern = static_cast<GstPointSrcPattern>(g_value_get_enum(value)); break;
  case PROP_SEED: p->seed = g_value_get_uint64(value); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_point_src_get_property(GObject *object, guint prop_id, GValue *value,
                                       GParamSpec *pspec)
{
  GstPointSrcPrivate *p = GST_POINT_SRC(object)->priv;
  std::lock_guard<std::mutex> g(p->lock);
  switch (prop_id) {
  case PROP_RATE: g_value_set_double(value, p->rate); break;
  case PROP_POINTS: g_value_set_uint(value, p->points); break;
  case PROP_PATTERN: g_value_set_enum(value, p->pattern); break;
  case PROP_SEED: g_value_set_uint64(value, p->seed); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_point_src_finalize(GObject *object)
{
  delete GST_POINT_SRC(object)->priv;
  G_OBJECT_CLASS(gst_point_src_parent_class)->finalize(object);
}

static void gst_point_src_class_init(GstPointSrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS(klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_point_src_debug, "pointsrc", 0, "Point source");

  gobject_class->set_property = gst_point_src_set_property;
  gobject_class->get_property = gst_point_src_get_property;
  gobject_class->finalize = gst_point_src_finalize;

  g_object_class_install_property(
      gobject_class, PROP_RATE,
      g_param_spec_double(
          "rate", "Rate", "Buffers per second (Hz), paced by the clock; 0 = as fast as possible",
          0.0, 1e6, kDefaultRate,
          GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property(
      gobject_class, PROP_POINTS,
      g_param_spec_uint(
          "points", "Points", "Rows (points) per buffer", 0, kMaxPoints, kDefaultPoints,
          GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property(
      gobject_class, PROP_PATTERN,
      g_param_spec_enum(
          "pattern", "Pattern", "What the points are", GST_TYPE_POINT_SRC_PATTERN, kDefaultPattern,
          GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property(
      gobject_class, PROP_SEED,
      g_param_spec_uint64(
          "seed", "Seed", "Seed of the random and sphere patterns (applied at start)", 0,
          G_MAXUINT64, kDefaultSeed,
          GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));

  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Point source", "Source/Points",
      "Live source of 3-D points (application/x-points, columns=3): random, sphere or counter",
      "pointcast");
  gst_type_mark_as_plugin_api(GST_TYPE_POINT_SRC_PATTERN, GstPluginAPIFlags(0));

  basesrc_class->start = gst_point_src_start;
  basesrc_class->query = gst_point_src_query;
  basesrc_class->get_times = gst_point_src_get_times;
  pushsrc_class->create = gst_point_src_create;
}

static void gst_point_src_init(GstPointSrc *self)
{
  self->priv = new GstPointSrcPrivate();
  gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}
