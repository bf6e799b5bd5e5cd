// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-ballsrc
 * @title: ballsrc
 *
 * A live video source of a ball bouncing elastically off the edges of the frame, deterministic
 * for equal properties (two instances produce identical frames). The ball is an anti-aliased
 * disc of #GstBallSrc:color (or the PNG sprite #GstBallSrc:image-location, alpha respected)
 * over a uniform #GstBallSrc:background, moving at #GstBallSrc:speed pixels per second in the
 * direction #GstBallSrc:angle with sub-pixel precision; the start position follows from
 * #GstBallSrc:seed. Any size and frame rate the caps ask for; RGB-family, I420 and NV12.
 *
 * With #GstBallSrc:mark=true the frame number is drawn as black/white 16x16 cells in a band at
 * the top of the frame (layout in the README, "Ball tracking"); the ball then stays below the
 * band, so detectors never confuse the two.
 *
 * True positions: the position of frame n is analytic (ballmodel.h), and ballsrc keeps a
 * bounded history of the last 16384 frames with the pipeline clock time at which each frame
 * left its source pad. The action signal "truth" returns them to ballscore (or any application).
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 ballsrc mark=true num-buffers=90 ! video/x-raw,width=640,height=480,framerate=30/1 ! vp8enc deadline=1 ! webmmux ! filesink location=ball.webm
 * ]|
 */
#include "gstballsrc.h"

#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

#include <cmath>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "ballmodel.h"
#include "ballrender.h"
#include "ballvideo.h"

GST_DEBUG_CATEGORY_STATIC(gst_ball_src_debug);
#define GST_CAT_DEFAULT gst_ball_src_debug

namespace pb = pointcast::ball;

namespace {

constexpr double kDefaultRadius = 20.0;
constexpr double kDefaultSpeed = 200.0;
constexpr double kDefaultAngle = 30.0;
constexpr guint kDefaultColor = 0xffffffff;
constexpr guint kDefaultBackground = 0xff000000;
constexpr size_t kHistory = 16384;
// Rows between the mark band and the ball, so coding ringing at the band's edge stays clear.
constexpr int kBandGap = 4;

struct HistoryEntry {
  guint64 frame = 0;
  double x = 0, y = 0;
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  GstClockTime left = GST_CLOCK_TIME_NONE;
};

struct BufferGuard {
  GstBuffer *buf = nullptr;
  ~BufferGuard()
  {
    if (buf) gst_buffer_unref(buf);
  }
};

} // namespace

struct BallSrcPrivate {
  std::mutex lock; // properties and history: read by ballscore's streaming thread
  // Properties.
  double radius = kDefaultRadius;
  double speed = kDefaultSpeed;
  double angle = kDefaultAngle;
  guint color = kDefaultColor;
  guint background = kDefaultBackground;
  guint64 seed = 0;
  std::string image_location;
  bool mark = false;
  bool is_live = true;

  // Stream state (streaming thread, under lock where the signal reads it).
  GstVideoInfo info{};
  bool have_info = false;
  pb::Sprite sprite;
  std::optional<pb::Motion> motion;
  pb::mark::Layout layout;
  bool mark_active = false;
  BufferGuard background_frame; // the background painted once per caps
  guint64 n_frames = 0;
  // Frames that left the pad: at EOS basesrc drops the frame it had just created, so this is the
  // count a scorer must use, not n_frames.
  guint64 n_out = 0;
  std::deque<HistoryEntry> history;
  GstClockTime frame_duration = GST_CLOCK_TIME_NONE;
};

struct _GstBallSrc {
  GstPushSrc parent;
  BallSrcPrivate *priv;
};

G_DEFINE_TYPE(GstBallSrc, gst_ball_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE(ballsrc, "ballsrc", GST_RANK_NONE, GST_TYPE_BALL_SRC);

enum {
  PROP_0,
  PROP_RADIUS,
  PROP_SPEED,
  PROP_ANGLE,
  PROP_COLOR,
  PROP_BACKGROUND,
  PROP_SEED,
  PROP_IMAGE_LOCATION,
  PROP_MARK,
  PROP_IS_LIVE,
  PROP_FRAMES,
};

enum { SIGNAL_TRUTH, N_SIGNALS };
static guint signals[N_SIGNALS];

// I420 first: what video encoders take, so a ballsrc feeding one needs no conversion.
#define BALL_FORMATS "{ I420, NV12, RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR }"

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("video/x-raw, format = (string) " BALL_FORMATS
                    ", width = (int) [ 1, 16384 ], height = (int) [ 1, 16384 ], "
                    "framerate = (fraction) [ 1/10000, 10000/1 ]"));

/* Loads a PNG (or anything GStreamer can decode) as RGBA with a small private pipeline. */
static bool load_sprite(const std::string &location, pb::Sprite &out, std::string &why)
{
  g_autoptr(GError) err = nullptr;
  g_autofree gchar *escaped = g_strescape(location.c_str(), nullptr);
  g_autofree gchar *desc = g_strdup_printf(
      "filesrc location=\"%s\" ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! "
      "appsink name=sink sync=false",
      escaped);
  GstElement *pipeline = gst_parse_launch(desc, &err);
  if (!pipeline) {
    why = err ? err->message : "cannot build the image decoder";
    return false;
  }
  auto drop = std::unique_ptr<GstElement, decltype(&gst_object_unref)>(pipeline, gst_object_unref);
  g_autoptr(GstElement) sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gst_element_set_state(pipeline, GST_STATE_PAUSED);
  GstSample *sample = gst_app_sink_try_pull_preroll(GST_APP_SINK(sink), 10 * GST_SECOND);
  bool ok = false;
  if (!sample) {
    g_autoptr(GstBus) bus = gst_element_get_bus(pipeline);
    g_autoptr(GstMessage) msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (msg) {
      g_autoptr(GError) e = nullptr;
      gst_message_parse_error(msg, &e, nullptr);
      why = e->message;
    } else {
      why = "no image decoded";
    }
  } else {
    GstVideoInfo info;
    GstVideoFrame frame;
    if (gst_video_info_from_caps(&info, gst_sample_get_caps(sample)) &&
        gst_video_frame_map(&frame, &info, gst_sample_get_buffer(sample), GST_MAP_READ)) {
      out =
          pb::Sprite::from_rgba(static_cast<const uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)),
                                GST_VIDEO_FRAME_WIDTH(&frame), GST_VIDEO_FRAME_HEIGHT(&frame),
                                GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0));
      gst_video_frame_unmap(&frame);
      ok = true;
    } else {
      why = "decoded image has unusable caps";
    }
    gst_sample_unref(sample);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  return ok;
}

static void gst_ball_src_set_property(GObject *object, guint prop_id, const GValue *value,
                                      GParamSpec *pspec)
{
  GstBallSrc *self = GST_BALL_SRC(object);
  BallSrcPrivate *p = self->priv;
  std::lock_guard<std::mutex> guard(p->lock);
  switch (prop_id) {
  case PROP_RADIUS: p->radius = g_value_get_double(value); break;
  case PROP_SPEED: p->speed = g_value_get_double(value); break;
  case PROP_ANGLE: p->angle = g_value_get_double(value); break;
  case PROP_COLOR: p->color = g_value_get_uint(value); break;
  case PROP_BACKGROUND: p->background = g_value_get_uint(value); break;
  case PROP_SEED: p->seed = g_value_get_uint64(value); break;
  case PROP_IMAGE_LOCATION: {
    const gchar *s = g_value_get_string(value);
    p->image_location = s ? s : "";
    break;
  }
  case PROP_MARK: p->mark = g_value_get_boolean(value); break;
  case PROP_IS_LIVE:
    p->is_live = g_value_get_boolean(value);
    gst_base_src_set_live(GST_BASE_SRC(self), p->is_live);
    break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_ball_src_get_property(GObject *object, guint prop_id, GValue *value,
                                      GParamSpec *pspec)
{
  GstBallSrc *self = GST_BALL_SRC(object);
  BallSrcPrivate *p = self->priv;
  std::lock_guard<std::mutex> guard(p->lock);
  switch (prop_id) {
  case PROP_RADIUS: g_value_set_double(value, p->radius); break;
  case PROP_SPEED: g_value_set_double(value, p->speed); break;
  case PROP_ANGLE: g_value_set_double(value, p->angle); break;
  case PROP_COLOR: g_value_set_uint(value, p->color); break;
  case PROP_BACKGROUND: g_value_set_uint(value, p->background); break;
  case PROP_SEED: g_value_set_uint64(value, p->seed); break;
  case PROP_IMAGE_LOCATION:
    g_value_set_string(value, p->image_location.empty() ? nullptr : p->image_location.c_str());
    break;
  case PROP_MARK: g_value_set_boolean(value, p->mark); break;
  case PROP_IS_LIVE: g_value_set_boolean(value, p->is_live); break;
  case PROP_FRAMES: g_value_set_uint64(value, p->n_out); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static GstCaps *gst_ball_src_fixate(GstBaseSrc *src, GstCaps *caps)
{
  caps = gst_caps_make_writable(caps);
  GstStructure *s = gst_caps_get_structure(caps, 0);
  gst_structure_fixate_field_nearest_int(s, "width", 640);
  gst_structure_fixate_field_nearest_int(s, "height", 480);
  gst_structure_fixate_field_nearest_fraction(s, "framerate", 30, 1);
  return GST_BASE_SRC_CLASS(gst_ball_src_parent_class)->fixate(src, caps);
}

static gboolean gst_ball_src_set_caps(GstBaseSrc *src, GstCaps *caps)
{
  GstBallSrc *self = GST_BALL_SRC(src);
  BallSrcPrivate *p = self->priv;
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, caps) || GST_VIDEO_INFO_FPS_N(&info) <= 0) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr), ("unusable caps %" GST_PTR_FORMAT, caps));
    return FALSE;
  }
  GstBuffer *bg = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr);
  GstVideoFrame frame;
  pb::ImageView view;
  if (!gst_video_frame_map(&frame, &info, bg, GST_MAP_WRITE)) {
    gst_buffer_unref(bg);
    return FALSE;
  }
  const bool known = pb::view_for_frame(&frame, view);
  std::lock_guard<std::mutex> guard(p->lock);
  if (known) pb::fill(view, pb::rgb_from_argb(p->background));
  gst_video_frame_unmap(&frame);
  if (!known) {
    gst_buffer_unref(bg);
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr), ("unsupported format"));
    return FALSE;
  }
  p->info = info;
  p->have_info = true;
  if (p->background_frame.buf) gst_buffer_unref(p->background_frame.buf);
  p->background_frame.buf = bg;
  const int w = GST_VIDEO_INFO_WIDTH(&info), h = GST_VIDEO_INFO_HEIGHT(&info);
  p->layout = pb::mark::layout_for_width(w);
  p->mark_active =
      p->mark && p->layout.valid() && p->layout.band_height + kBandGap + 2.0 * p->radius + 2.0 <= h;
  if (p->mark && !p->mark_active)
    GST_ELEMENT_WARNING(
        self, STREAM, FORMAT, ("frame too small for the frame mark"),
        ("%dx%d with radius %.1f: the mark needs a width of at least 16 px and a %d px band "
         "above the ball; drawing no mark",
         w, h, p->radius, p->layout.band_height));
  const double reserved = p->mark_active ? p->layout.band_height + kBandGap : 0.0;
  p->motion.emplace(pb::MotionParams{p->radius, p->speed, p->angle, p->seed},
                    pb::Field::whole_frame(w, h, reserved));
  p->frame_duration = gst_util_uint64_scale_int(GST_SECOND, GST_VIDEO_INFO_FPS_D(&info),
                                                GST_VIDEO_INFO_FPS_N(&info));
  GST_INFO_OBJECT(self, "%dx%d, mark %s, start (%.3f, %.3f)", w, h, p->mark_active ? "on" : "off",
                  p->motion->start().x, p->motion->start().y);
  return TRUE;
}

/* A pool of whole frames: basesrc's default would hand out blocksize (4 KiB) buffers when
 * downstream proposes no pool. */
static gboolean gst_ball_src_decide_allocation(GstBaseSrc *src, GstQuery *query)
{
  GstCaps *caps = nullptr;
  gst_query_parse_allocation(query, &caps, nullptr);
  GstVideoInfo info;
  if (!caps || !gst_video_info_from_caps(&info, caps)) return FALSE;
  GstBufferPool *pool = nullptr;
  guint size = 0, min = 0, max = 0;
  const bool have_pool = gst_query_get_n_allocation_pools(query) > 0;
  if (have_pool) {
    gst_query_parse_nth_allocation_pool(query, 0, &pool, &size, &min, &max);
    size = MAX(size, GST_VIDEO_INFO_SIZE(&info));
  } else {
    size = GST_VIDEO_INFO_SIZE(&info);
    min = max = 0;
  }
  if (!pool) pool = gst_video_buffer_pool_new();
  GstStructure *config = gst_buffer_pool_get_config(pool);
  gst_buffer_pool_config_set_params(config, caps, size, min, max);
  if (gst_query_find_allocation_meta(query, GST_VIDEO_META_API_TYPE, nullptr))
    gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!gst_buffer_pool_set_config(pool, config)) {
    // The pool may have adjusted the config; accept what it suggests.
    config = gst_buffer_pool_get_config(pool);
    if (!gst_buffer_pool_config_validate_params(config, caps, size, min, max) ||
        !gst_buffer_pool_set_config(pool, config)) {
      gst_object_unref(pool);
      return FALSE;
    }
  }
  if (have_pool)
    gst_query_set_nth_allocation_pool(query, 0, pool, size, min, max);
  else
    gst_query_add_allocation_pool(query, pool, size, min, max);
  gst_object_unref(pool);
  return GST_BASE_SRC_CLASS(gst_ball_src_parent_class)->decide_allocation(src, query);
}

static gboolean gst_ball_src_start(GstBaseSrc *src)
{
  GstBallSrc *self = GST_BALL_SRC(src);
  BallSrcPrivate *p = self->priv;
  std::string location;
  {
    std::lock_guard<std::mutex> guard(p->lock);
    p->n_frames = 0;
    p->n_out = 0;
    p->history.clear();
    p->sprite = pb::Sprite();
    location = p->image_location;
  }
  if (!location.empty()) {
    pb::Sprite sprite;
    std::string why;
    if (!load_sprite(location, sprite, why)) {
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
                        ("cannot load image-location \"%s\"", location.c_str()),
                        ("%s", why.c_str()));
      return FALSE;
    }
    std::lock_guard<std::mutex> guard(p->lock);
    p->sprite = std::move(sprite);
  }
  return TRUE;
}

static void gst_ball_src_get_times(GstBaseSrc *src, GstBuffer *buffer, GstClockTime *start,
                                   GstClockTime *end)
{
  // Live: basesrc waits on the clock until each frame's time has come.
  if (gst_base_src_is_live(src)) {
    *start = GST_BUFFER_PTS(buffer);
    *end = GST_BUFFER_DURATION_IS_VALID(buffer) ? *start + GST_BUFFER_DURATION(buffer)
                                                : GST_CLOCK_TIME_NONE;
  } else {
    *start = *end = GST_CLOCK_TIME_NONE;
  }
}

static gboolean gst_ball_src_query(GstBaseSrc *src, GstQuery *query)
{
  GstBallSrc *self = GST_BALL_SRC(src);
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    GstClockTime d;
    {
      std::lock_guard<std::mutex> guard(self->priv->lock);
      d = self->priv->frame_duration;
    }
    if (!GST_CLOCK_TIME_IS_VALID(d)) return FALSE;
    // A live frame is complete one frame duration after its timestamp.
    gst_query_set_latency(query, gst_base_src_is_live(src), d, d);
    return TRUE;
  }
  return GST_BASE_SRC_CLASS(gst_ball_src_parent_class)->query(src, query);
}

static GstFlowReturn gst_ball_src_fill(GstPushSrc *src, GstBuffer *buffer)
{
  GstBallSrc *self = GST_BALL_SRC(src);
  BallSrcPrivate *p = self->priv;
  std::unique_lock<std::mutex> guard(p->lock);
  if (!p->have_info || !p->background_frame.buf) {
    guard.unlock();
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr), ("fill before caps were set"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  GstVideoFrame frame, bgframe;
  if (!gst_video_frame_map(&frame, &p->info, buffer, GST_MAP_WRITE)) {
    guard.unlock();
    GST_ELEMENT_ERROR(self, RESOURCE, WRITE, (nullptr), ("cannot map the output buffer"));
    return GST_FLOW_ERROR;
  }
  if (gst_video_frame_map(&bgframe, &p->info, p->background_frame.buf, GST_MAP_READ)) {
    gst_video_frame_copy(&frame, &bgframe);
    gst_video_frame_unmap(&bgframe);
  }
  pb::ImageView view;
  pb::view_for_frame(&frame, view);
  const guint64 n = p->n_frames;
  if (p->mark_active) pb::draw_mark(view, p->layout, n);
  const pb::Point pos =
      p->motion->at_frame(n, GST_VIDEO_INFO_FPS_N(&p->info), GST_VIDEO_INFO_FPS_D(&p->info));
  const guint32 c = p->color;
  pb::draw_ball(view, pos.x, pos.y, p->radius, pb::rgb_from_argb(c), ((c >> 24) & 0xff) / 255.0,
                pb::rgb_from_argb(p->background), p->sprite.empty() ? nullptr : &p->sprite);
  gst_video_frame_unmap(&frame);

  const GstClockTime pts = gst_util_uint64_scale_int(n * GST_SECOND, GST_VIDEO_INFO_FPS_D(&p->info),
                                                     GST_VIDEO_INFO_FPS_N(&p->info));
  const GstClockTime next = gst_util_uint64_scale_int(
      (n + 1) * GST_SECOND, GST_VIDEO_INFO_FPS_D(&p->info), GST_VIDEO_INFO_FPS_N(&p->info));
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DTS(buffer) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DURATION(buffer) = next - pts;
  GST_BUFFER_OFFSET(buffer) = n;
  GST_BUFFER_OFFSET_END(buffer) = n + 1;
  p->history.push_back(HistoryEntry{n, pos.x, pos.y, pts, GST_CLOCK_TIME_NONE});
  while (p->history.size() > kHistory) p->history.pop_front();
  p->n_frames = n + 1;
  return GST_FLOW_OK;
}

/* Stamps the clock time at which each frame leaves the source pad (after basesrc's clock wait). */
static GstPadProbeReturn ball_src_left_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  GstBallSrc *self = GST_BALL_SRC(user_data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!buf) return GST_PAD_PROBE_OK;
  GstClockTime now = GST_CLOCK_TIME_NONE;
  if (GstClock *clock = gst_element_get_clock(GST_ELEMENT(self))) {
    now = gst_clock_get_time(clock);
    gst_object_unref(clock);
  }
  const guint64 n = GST_BUFFER_OFFSET(buf);
  BallSrcPrivate *p = self->priv;
  std::lock_guard<std::mutex> guard(p->lock);
  p->n_out = std::max(p->n_out, n + 1);
  for (auto it = p->history.rbegin(); it != p->history.rend(); ++it) {
    if (it->frame == n) {
      it->left = now;
      break;
    }
  }
  return GST_PAD_PROBE_OK;
}

/* "truth" action signal: the true position of a frame. Frame numbers are taken modulo 2^24
 * (as the mark carries them); the most recent frame with that number is meant. */
static GstStructure *gst_ball_src_truth(GstBallSrc *self, guint64 frame)
{
  BallSrcPrivate *p = self->priv;
  std::lock_guard<std::mutex> guard(p->lock);
  if (!p->motion || p->n_frames == 0) return nullptr;
  const guint64 mod = pb::mark::kFrameModulo;
  const guint64 want = frame % mod;
  const guint64 last = p->n_frames - 1;
  if (last < want) return nullptr; // not produced yet
  // The most recent frame with this number.
  const guint64 full = last - (last - want) % mod;
  GstClockTime left = GST_CLOCK_TIME_NONE;
  if (!p->history.empty() && full >= p->history.front().frame) {
    const HistoryEntry &e = p->history[full - p->history.front().frame];
    if (e.frame == full) left = e.left;
  }
  const pb::Point pos =
      p->motion->at_frame(full, GST_VIDEO_INFO_FPS_N(&p->info), GST_VIDEO_INFO_FPS_D(&p->info));
  return gst_structure_new(
      "ballsrc-truth", "frame", G_TYPE_UINT64, full, "x", G_TYPE_DOUBLE, pos.x, "y", G_TYPE_DOUBLE,
      pos.y, "left-time", G_TYPE_UINT64, left, "pts", G_TYPE_UINT64,
      gst_util_uint64_scale_int(full * GST_SECOND, GST_VIDEO_INFO_FPS_D(&p->info),
                                GST_VIDEO_INFO_FPS_N(&p->info)),
      nullptr);
}

static void gst_ball_src_finalize(GObject *object)
{
  GstBallSrc *self = GST_BALL_SRC(object);
  delete self->priv;
  G_OBJECT_CLASS(gst_ball_src_parent_class)->finalize(object);
}

static void gst_ball_src_class_init(GstBallSrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS(klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_ball_src_debug, "ballsrc", 0, "bouncing ball source");

  gobject_class->set_property = gst_ball_src_set_property;
  gobject_class->get_property = gst_ball_src_get_property;
  gobject_class->finalize = gst_ball_src_finalize;

  const auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                           GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(gobject_class, PROP_RADIUS,
                                  g_param_spec_double("radius", "Radius", "Ball radius in pixels",
                                                      0.5, 4096.0, kDefaultRadius, rw));
  g_object_class_install_property(gobject_class, PROP_SPEED,
                                  g_param_spec_double("speed", "Speed",
                                                      "Ball speed in pixels per second", 0.0, 1e6,
                                                      kDefaultSpeed, rw));
  g_object_class_install_property(
      gobject_class, PROP_ANGLE,
      g_param_spec_double("angle", "Angle", "Direction of motion in degrees (0 = right, 90 = up)",
                          -360.0, 360.0, kDefaultAngle, rw));
  g_object_class_install_property(gobject_class, PROP_COLOR,
                                  g_param_spec_uint("color", "Color",
                                                    "Ball colour as 0xAARRGGBB (alpha = opacity)",
                                                    0, G_MAXUINT32, kDefaultColor, rw));
  g_object_class_install_property(
      gobject_class, PROP_BACKGROUND,
      g_param_spec_uint("background", "Background",
                        "Background colour as 0xAARRGGBB (alpha ignored)", 0, G_MAXUINT32,
                        kDefaultBackground, rw));
  g_object_class_install_property(gobject_class, PROP_SEED,
                                  g_param_spec_uint64("seed", "Seed",
                                                      "Chooses the start position (splitmix64)", 0,
                                                      G_MAXUINT64, 0, rw));
  g_object_class_install_property(
      gobject_class, PROP_IMAGE_LOCATION,
      g_param_spec_string(
          "image-location", "Image location",
          "Optional sprite (e.g. a PNG with alpha) drawn instead of the disc; its larger side "
          "spans the diameter",
          nullptr, rw));
  g_object_class_install_property(
      gobject_class, PROP_MARK,
      g_param_spec_boolean(
          "mark", "Mark",
          "Draw the frame number as a coding-proof band of 16x16 cells at the top (README: "
          "Ball tracking)",
          FALSE, rw));
  g_object_class_install_property(
      gobject_class, PROP_IS_LIVE,
      g_param_spec_boolean(
          "is-live", "Is live",
          "Produce frames at their clock time (false: as fast as downstream takes them)", TRUE,
          rw));
  g_object_class_install_property(
      gobject_class, PROP_FRAMES,
      g_param_spec_uint64(
          "frames", "Frames", "Frames that left the source pad since the stream started", 0,
          G_MAXUINT64, 0, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  /**
   * GstBallSrc::truth:
   * @frame: a frame number (taken modulo 2^24, as the frame mark carries it)
   *
   * Returns: (transfer full) (nullable): a "ballsrc-truth" structure with frame (guint64),
   * x, y (gdouble, centre in pixels, pixel (i, j) centred on (i, j)), pts (guint64) and
   * left-time (guint64: pipeline clock time at which the frame left the source pad, or
   * GST_CLOCK_TIME_NONE when unknown or older than the history), or NULL for a frame not
   * produced yet.
   */
  signals[SIGNAL_TRUTH] =
      g_signal_new_class_handler("truth", G_TYPE_FROM_CLASS(klass),
                                 static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                                 G_CALLBACK(gst_ball_src_truth), nullptr, nullptr, nullptr,
                                 GST_TYPE_STRUCTURE, 1, G_TYPE_UINT64);

  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Bouncing ball source", "Source/Video",
      "Live video of a ball bouncing off the frame edges, with an optional coding-proof frame "
      "number mark and the true position of every frame",
      "pointcast");

  basesrc_class->fixate = gst_ball_src_fixate;
  basesrc_class->set_caps = gst_ball_src_set_caps;
  basesrc_class->start = gst_ball_src_start;
  basesrc_class->decide_allocation = gst_ball_src_decide_allocation;
  basesrc_class->get_times = gst_ball_src_get_times;
  basesrc_class->query = gst_ball_src_query;
  pushsrc_class->fill = gst_ball_src_fill;
}

static void gst_ball_src_init(GstBallSrc *self)
{
  self->priv = new BallSrcPrivate();
  gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
  GstPad *pad = GST_BASE_SRC_PAD(self);
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, ball_src_left_probe, self, nullptr);
}
