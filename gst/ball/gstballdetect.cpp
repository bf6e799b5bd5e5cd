// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-balldetect
 * @title: balldetect
 *
 * Finds balls in raw video and outputs, for every frame, one `application/x-points,columns=3`
 * buffer with one row `[frame, x, y]` per ball (centre in pixels, pixel (i, j) centred on
 * (i, j)); zero rows when there is none. The buffer keeps the frame's PTS and duration.
 * With #GstBallDetect:repeat=N each buffer also carries, after its own rows, the rows of the
 * previous N frames: on a channel that may lose a message without retransmitting it (or
 * retransmits late), the next one brings that frame's detections a frame later; a scorer
 * keeps the first it gets (ballscore counts the repeats as extra detections).
 *
 * `frame` is the number read from the frame mark that #GstBallSrc:mark draws (README, "Ball
 * tracking"); when a frame's mark cannot be read it is extrapolated from the last mark read,
 * and a stream that never had a mark counts frames from 0. Once a mark has been seen, its band
 * is excluded from the search.
 *
 * Detection: a coarse pass over every s-th pixel (s = #GstBallDetect:min-radius clamped to
 * 2..8) estimates the background colour (median) and finds blobs that differ from it; a fine
 * pass in each blob's region computes each pixel's fraction of ball colour and takes the
 * weighted centroid, or, for a ball cut by the frame edge, fits a circle to the visible rim.
 * Blobs whose radius is outside [#GstBallDetect:min-radius, #GstBallDetect:max-radius] are
 * ignored.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 ballsrc mark=true num-buffers=60 ! videoconvert ! vp8enc deadline=1 ! vp8dec ! balldetect ! fakesink dump=true
 * ]|
 */
#include "gstballdetect.h"

#include <gst/video/video.h>

#include <dlfcn.h>

#include <array>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>

#include "balldetector.h"
#include "detectmodule.h"
#include "ballmodel.h"
#include "ballvideo.h"

GST_DEBUG_CATEGORY_STATIC(gst_ball_detect_debug);
#define GST_CAT_DEFAULT gst_ball_detect_debug

namespace pb = pointcast::ball;

namespace {
constexpr double kDefaultMinRadius = 4.0;
constexpr double kDefaultMaxRadius = 400.0;
constexpr guint kMaxRepeat = 16;
} // namespace

struct BallDetectPrivate {
  std::mutex lock; // properties
  double min_radius = kDefaultMinRadius;
  double max_radius = kDefaultMaxRadius;
  guint repeat = 0;
  // Streaming thread only.
  GstVideoInfo info{};
  bool have_info = false;
  pb::Detector detector;
  pb::DetectEntry detect = nullptr;                     // from the OpenCV module (detectmodule.h)
  guint64 counter = 0;                                  // frames seen
  std::optional<guint64> last_mark;                     // last frame number read
  guint64 last_mark_counter = 0;                        // counter value when it was read
  std::deque<std::vector<std::array<float, 3>>> recent; // rows of the last `repeat` frames
};

struct _GstBallDetect {
  GstBaseTransform parent;
  BallDetectPrivate *priv;
};

G_DEFINE_TYPE(GstBallDetect, gst_ball_detect, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(balldetect, "balldetect", GST_RANK_NONE, GST_TYPE_BALL_DETECT);

enum { PROP_0, PROP_MIN_RADIUS, PROP_MAX_RADIUS, PROP_REPEAT };

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(
        "{ I420, YV12, NV12, GRAY8, RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR }")));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-points, columns = (int) 3"));

static void gst_ball_detect_set_property(GObject *object, guint prop_id, const GValue *value,
                                         GParamSpec *pspec)
{
  BallDetectPrivate *p = GST_BALL_DETECT(object)->priv;
  std::lock_guard<std::mutex> guard(p->lock);
  switch (prop_id) {
  case PROP_MIN_RADIUS: p->min_radius = g_value_get_double(value); break;
  case PROP_MAX_RADIUS: p->max_radius = g_value_get_double(value); break;
  case PROP_REPEAT: p->repeat = g_value_get_uint(value); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_ball_detect_get_property(GObject *object, guint prop_id, GValue *value,
                                         GParamSpec *pspec)
{
  BallDetectPrivate *p = GST_BALL_DETECT(object)->priv;
  std::lock_guard<std::mutex> guard(p->lock);
  switch (prop_id) {
  case PROP_MIN_RADIUS: g_value_set_double(value, p->min_radius); break;
  case PROP_MAX_RADIUS: g_value_set_double(value, p->max_radius); break;
  case PROP_REPEAT: g_value_set_uint(value, p->repeat); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static GstCaps *gst_ball_detect_transform_caps(GstBaseTransform *trans, GstPadDirection direction,
                                               GstCaps *caps, GstCaps *filter)
{
  // Any raw frame gives points, and points can come from any raw frame we accept.
  GstCaps *other = direction == GST_PAD_SINK ? gst_static_pad_template_get_caps(&src_template)
                                             : gst_static_pad_template_get_caps(&sink_template);
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full(filter, other, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(other);
    other = tmp;
  }
  return other;
}

static gboolean gst_ball_detect_set_caps(GstBaseTransform *trans, GstCaps *incaps, GstCaps *outcaps)
{
  GstBallDetect *self = GST_BALL_DETECT(trans);
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, incaps)) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr),
                      ("unusable caps %" GST_PTR_FORMAT, incaps));
    return FALSE;
  }
  self->priv->info = info;
  self->priv->have_info = true;
  return TRUE;
}

static gboolean gst_ball_detect_start(GstBaseTransform *trans)
{
  BallDetectPrivate *p = GST_BALL_DETECT(trans)->priv;
  p->recent.clear();
  if (!p->detect) {
    // The module sits next to the plugin file this code was loaded from.
    Dl_info where{};
    std::string dir = ".";
    if (dladdr(reinterpret_cast<void *>(&gst_ball_detect_start), &where) && where.dli_fname) {
      gchar *d = g_path_get_dirname(where.dli_fname);
      dir = d;
      g_free(d);
    }
    std::string error;
    p->detect = pb::load_detect_module(dir, &error);
    if (!p->detect) {
      GST_ELEMENT_ERROR(trans, LIBRARY, INIT, ("balldetect cannot load its OpenCV module"),
                        ("%s", error.c_str()));
      return FALSE;
    }
  }
  p->detector.reset();
  p->counter = 0;
  p->last_mark.reset();
  return TRUE;
}

static GstFlowReturn gst_ball_detect_generate_output(GstBaseTransform *trans, GstBuffer **outbuf)
{
  GstBallDetect *self = GST_BALL_DETECT(trans);
  BallDetectPrivate *p = self->priv;
  *outbuf = nullptr;
  GstBuffer *in = trans->queued_buf;
  trans->queued_buf = nullptr;
  if (!in) return GST_FLOW_OK;
  if (!p->have_info) {
    gst_buffer_unref(in);
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr), ("buffer before caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  guint repeat;
  {
    std::lock_guard<std::mutex> guard(p->lock);
    p->detector.set_params(pb::DetectorParams{p->min_radius, p->max_radius});
    repeat = p->repeat;
  }
  GstVideoFrame frame;
  if (!gst_video_frame_map(&frame, &p->info, in, GST_MAP_READ)) {
    // A broken buffer costs one frame, not the stream.
    GST_ELEMENT_WARNING(self, STREAM, DECODE, (nullptr), ("cannot map a video frame; dropped"));
    gst_buffer_unref(in);
    p->counter++;
    return GST_FLOW_OK;
  }
  pb::Detector::Result result;
  pb::ImageView view;
  bool ok = pb::view_for_frame(&frame, view);
  if (ok) {
    try {
      p->detect(&p->detector, &view, &result);
    } catch (const std::exception &e) {
      GST_ELEMENT_WARNING(self, STREAM, FAILED, (nullptr), ("detection failed: %s", e.what()));
      ok = false;
    }
  }
  gst_video_frame_unmap(&frame);

  guint64 number;
  if (result.mark) {
    number = *result.mark;
    p->last_mark = number;
    p->last_mark_counter = p->counter;
  } else if (p->last_mark) {
    number = *p->last_mark + (p->counter - p->last_mark_counter);
  } else {
    number = p->counter;
  }
  number %= pb::mark::kFrameModulo;
  p->counter++;

  const size_t rows = ok ? result.balls.size() : 0;
  std::vector<std::array<float, 3>> mine;
  for (size_t i = 0; i < rows; i++)
    mine.push_back({static_cast<float>(number), static_cast<float>(result.balls[i].x),
                    static_cast<float>(result.balls[i].y)});
  size_t total = mine.size();
  while (p->recent.size() > repeat) p->recent.pop_back();
  for (auto &r : p->recent) total += r.size();
  GstBuffer *out = gst_buffer_new_allocate(nullptr, total * 3 * sizeof(float), nullptr);
  if (total > 0) {
    GstMapInfo map;
    if (gst_buffer_map(out, &map, GST_MAP_WRITE)) {
      auto *f = reinterpret_cast<float *>(map.data);
      for (auto &row : mine) f = std::copy(row.begin(), row.end(), f);
      for (auto &r : p->recent) // newest first
        for (auto &row : r) f = std::copy(row.begin(), row.end(), f);
      gst_buffer_unmap(out, &map);
    }
  }
  if (repeat > 0) {
    p->recent.push_front(std::move(mine));
    if (p->recent.size() > repeat) p->recent.pop_back();
  }
  gst_buffer_copy_into(out, in, static_cast<GstBufferCopyFlags>(GST_BUFFER_COPY_TIMESTAMPS), 0, -1);
  GST_LOG_OBJECT(self, "frame %" G_GUINT64_FORMAT ": %zu balls%s", number, rows,
                 result.mark ? "" : " (no mark read)");
  gst_buffer_unref(in);
  *outbuf = out;
  return GST_FLOW_OK;
}

static void gst_ball_detect_finalize(GObject *object)
{
  delete GST_BALL_DETECT(object)->priv;
  G_OBJECT_CLASS(gst_ball_detect_parent_class)->finalize(object);
}

static void gst_ball_detect_class_init(GstBallDetectClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_ball_detect_debug, "balldetect", 0, "ball detector");

  gobject_class->set_property = gst_ball_detect_set_property;
  gobject_class->get_property = gst_ball_detect_get_property;
  gobject_class->finalize = gst_ball_detect_finalize;

  const auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                           GST_PARAM_MUTABLE_PLAYING);
  g_object_class_install_property(
      gobject_class, PROP_MIN_RADIUS,
      g_param_spec_double("min-radius", "Minimum radius",
                          "Smallest ball radius in pixels (also sets the coarse search step)", 1.0,
                          4096.0, kDefaultMinRadius, rw));
  g_object_class_install_property(gobject_class, PROP_MAX_RADIUS,
                                  g_param_spec_double("max-radius", "Maximum radius",
                                                      "Largest ball radius in pixels", 1.0, 16384.0,
                                                      kDefaultMaxRadius, rw));
  g_object_class_install_property(
      gobject_class, PROP_REPEAT,
      g_param_spec_uint("repeat", "Repeat",
                        "Also send the rows of the previous N frames in each buffer, after this "
                        "frame's (for a channel that may lose messages: the next message brings "
                        "them)",
                        0, kMaxRepeat, 0, rw));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Ball detector", "Filter/Analyzer/Video",
      "Finds balls in raw video with sub-pixel accuracy and reads ballsrc's frame mark; outputs "
      "[frame, x, y] rows as application/x-points",
      "pointcast");

  trans_class->transform_caps = gst_ball_detect_transform_caps;
  trans_class->set_caps = gst_ball_detect_set_caps;
  trans_class->start = gst_ball_detect_start;
  trans_class->generate_output = gst_ball_detect_generate_output;
  trans_class->passthrough_on_same_caps = FALSE;
}

static void gst_ball_detect_init(GstBallDetect *self)
{
  self->priv = new BallDetectPrivate();
}
