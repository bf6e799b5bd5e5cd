// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-ballscore
 * @title: ballscore
 *
 * Sink for detections (`application/x-points,columns=3`, rows `[frame, x, y]`) that compares
 * each with the true position of the same frame of the ballsrc named #GstBallScore:source in
 * the same pipeline, and measures the loop latency: from the pipeline clock time at which that
 * frame left ballsrc to the clock time at which its detection reaches ballscore.
 *
 * Truth comes from ballsrc's "truth" action signal (the analytic position of the frame and the
 * time it left the source, kept for the last 16384 frames). When a buffer holds several rows
 * for one frame, the one nearest the truth is scored and the others count as extra detections.
 * A frame is scored once, when its first detection arrives: rows for it in later buffers (a
 * tracker repeating recent detections for an unreliable channel, #GstBallDetect:repeat) count
 * as extra detections too.
 *
 * Every second ballscore prints a progress line and posts a "ballscore-progress" element
 * message (frames-expected: frames sent from the first scored one on, the fair denominator
 * when trackers connect after the source started); at EOS it prints the final report with g_print and posts "ballscore-report". When
 * the detections come over a network their path may never carry an EOS, so the report also
 * comes 2 s after the source itself sent EOS (e.g. after its num-buffers), or when ballscore
 * stops. Both messages carry: frames-sent, frames-received (detection buffers),
 * frames-scored, detections, extra-detections, outliers (error > 5 px: misread mark or false
 * detection), error-mean, error-p50, error-p99, error-max (px), latency-p50, latency-p99,
 * latency-max (ms; -1 when unknown). #GstBallScore:report writes one CSV row per scored frame.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -e ballsrc name=ball mark=true num-buffers=150 ! videoconvert ! vp8enc deadline=1 ! vp8dec ! balldetect ! ballscore source=ball report=/tmp/ball.csv
 * ]|
 */
#include "gstballscore.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

GST_DEBUG_CATEGORY_STATIC(gst_ball_score_debug);
#define GST_CAT_DEFAULT gst_ball_score_debug

namespace {

constexpr double kOutlierPx = 5.0;
// Frames remembered as scored: as many as ballsrc keeps the truth of.
constexpr size_t kScoredMemory = 16384;
// After the source's last frame, how long detections still in flight may take.
constexpr GstClockTime kEndGrace = 2 * GST_SECOND;

struct FileCloser {
  void operator()(FILE *f) const
  {
    if (f) fclose(f);
  }
};

double percentile(std::vector<double> v, double q)
{
  if (v.empty()) return -1.0;
  // Nearest rank: the smallest value with at least q of the values at or below it.
  const double rank = std::ceil(q * v.size());
  const size_t k = static_cast<size_t>(std::clamp(rank - 1.0, 0.0, v.size() - 1.0));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

struct Summary {
  guint64 sent = 0, received = 0, scored = 0, detections = 0, extra = 0, outliers = 0;
  guint64 expected = 0; // frames sent from the first scored one on
  double mean = -1, p50 = -1, p99 = -1, max = -1;
  double lat_p50 = -1, lat_p99 = -1, lat_max = -1;
};

} // namespace

struct BallScorePrivate {
  std::mutex lock; // properties
  std::string source;
  std::string report;
  // Streaming thread (and stop()).
  GstElement *src = nullptr;
  std::unique_ptr<FILE, FileCloser> csv;
  std::vector<double> errors;
  std::vector<double> latencies;
  guint64 received = 0, scored = 0, detections = 0, extra = 0, outliers = 0;
  // Lowest frame number scored: frames before it went out before any tracker was connected.
  guint64 first_frame = G_MAXUINT64;
  std::set<guint64> scored_frames; // the recent ones (older than ballsrc's history are dropped)
  gint64 last_progress_us = 0;
  bool reported = false;
  // The source's end: a pad probe on its src pad, then a clock callback after the grace period.
  std::mutex stats_lock; // the figures above: streaming thread and clock thread
  gulong eos_probe = 0;
  GstClockID end_timer = nullptr;
};

struct _GstBallScore {
  GstBaseSink parent;
  BallScorePrivate *priv;
};

G_DEFINE_TYPE(GstBallScore, gst_ball_score, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE(ballscore, "ballscore", GST_RANK_NONE, GST_TYPE_BALL_SCORE);

enum { PROP_0, PROP_SOURCE, PROP_REPORT };

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
                            GST_STATIC_CAPS("application/x-points, columns = (int) 3"));

static void gst_ball_score_set_property(GObject *object, guint prop_id, const GValue *value,
                                        GParamSpec *pspec)
{
  BallScorePrivate *p = GST_BALL_SCORE(object)->priv;
  std::lock_guard<std::mutex> guard(p->lock);
  const gchar *s = g_value_get_string(value);
  switch (prop_id) {
  case PROP_SOURCE: p->source = s ? s : ""; break;
  case PROP_REPORT: p->report = s ? s : ""; break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_ball_score_get_property(GObject *object, guint prop_id, GValue *value,
                                        GParamSpec *pspec)
{
  BallScorePrivate *p = GST_BALL_SCORE(object)->priv;
  std::lock_guard<std::mutex> guard(p->lock);
  switch (prop_id) {
  case PROP_SOURCE:
    g_value_set_string(value, p->source.empty() ? nullptr : p->source.c_str());
    break;
  case PROP_REPORT:
    g_value_set_string(value, p->report.empty() ? nullptr : p->report.c_str());
    break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

/* The element called name anywhere in the pipeline that holds self. */
static GstElement *find_in_pipeline(GstElement *self, const std::string &name)
{
  GstObject *top = GST_OBJECT(gst_object_ref(self));
  while (GstObject *parent = gst_object_get_parent(top)) {
    gst_object_unref(top);
    top = parent;
  }
  GstElement *found = nullptr;
  if (GST_IS_BIN(top)) found = gst_bin_get_by_name(GST_BIN(top), name.c_str());
  gst_object_unref(top);
  return found;
}

static GstPadProbeReturn source_eos_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data);

static gboolean gst_ball_score_start(GstBaseSink *sink)
{
  GstBallScore *self = GST_BALL_SCORE(sink);
  BallScorePrivate *p = self->priv;
  std::string source, report;
  {
    std::lock_guard<std::mutex> guard(p->lock);
    source = p->source;
    report = p->report;
  }
  if (source.empty()) {
    GST_ELEMENT_ERROR(self, LIBRARY, SETTINGS, ("ballscore needs source=<name of a ballsrc>"),
                      (nullptr));
    return FALSE;
  }
  GstElement *src = find_in_pipeline(GST_ELEMENT(self), source);
  if (!src || g_signal_lookup("truth", G_OBJECT_TYPE(src)) == 0) {
    if (src) gst_object_unref(src);
    GST_ELEMENT_ERROR(self, LIBRARY, SETTINGS,
                      ("no ballsrc named \"%s\" in this pipeline", source.c_str()), (nullptr));
    return FALSE;
  }
  p->src = src;
  if (GstPad *srcpad = gst_element_get_static_pad(src, "src")) {
    p->eos_probe = gst_pad_add_probe(srcpad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, source_eos_probe,
                                     self, nullptr);
    gst_object_unref(srcpad);
  }
  if (!report.empty()) {
    p->csv.reset(fopen(report.c_str(), "w"));
    if (!p->csv) {
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE, ("cannot write report \"%s\"", report.c_str()),
                        ("%s", g_strerror(errno)));
      return FALSE;
    }
    fputs("frame,true_x,true_y,det_x,det_y,error_px,latency_ms\n", p->csv.get());
  }
  p->errors.clear();
  p->latencies.clear();
  p->received = p->scored = p->detections = p->extra = p->outliers = 0;
  p->first_frame = G_MAXUINT64;
  p->scored_frames.clear();
  p->last_progress_us = g_get_monotonic_time();
  p->reported = false;
  return TRUE;
}

static Summary summarize(BallScorePrivate *p)
{
  Summary s;
  if (p->src) {
    g_object_get(p->src, "frames", &s.sent, nullptr);
  }
  s.received = p->received;
  s.scored = p->scored;
  s.detections = p->detections;
  s.extra = p->extra;
  s.outliers = p->outliers;
  if (p->first_frame != G_MAXUINT64 && s.sent > p->first_frame)
    s.expected = s.sent - p->first_frame;
  if (!p->errors.empty()) {
    double sum = 0;
    for (double e : p->errors) sum += e;
    s.mean = sum / p->errors.size();
    s.p50 = percentile(p->errors, 0.5);
    s.p99 = percentile(p->errors, 0.99);
    s.max = *std::max_element(p->errors.begin(), p->errors.end());
  }
  if (!p->latencies.empty()) {
    s.lat_p50 = percentile(p->latencies, 0.5);
    s.lat_p99 = percentile(p->latencies, 0.99);
    s.lat_max = *std::max_element(p->latencies.begin(), p->latencies.end());
  }
  return s;
}

static GstStructure *summary_structure(const char *name, const Summary &s)
{
  return gst_structure_new(
      name, "frames-sent", G_TYPE_UINT64, s.sent, "frames-received", G_TYPE_UINT64, s.received,
      "frames-expected", G_TYPE_UINT64, s.expected, "frames-scored", G_TYPE_UINT64, s.scored,
      "detections", G_TYPE_UINT64, s.detections, "extra-detections", G_TYPE_UINT64, s.extra,
      "outliers", G_TYPE_UINT64, s.outliers, "error-mean", G_TYPE_DOUBLE, s.mean, "error-p50",
      G_TYPE_DOUBLE, s.p50, "error-p99", G_TYPE_DOUBLE, s.p99, "error-max", G_TYPE_DOUBLE, s.max,
      "latency-p50", G_TYPE_DOUBLE, s.lat_p50, "latency-p99", G_TYPE_DOUBLE, s.lat_p99,
      "latency-max", G_TYPE_DOUBLE, s.lat_max, nullptr);
}

/* Called with stats_lock held. */
static void final_report(GstBallScore *self)
{
  BallScorePrivate *p = self->priv;
  if (p->reported) return;
  p->reported = true;
  if (p->csv) fflush(p->csv.get());
  const Summary s = summarize(p);
  const double pct = s.received ? 100.0 * s.scored / s.received : 0.0;
  const double pct_expected = s.expected ? 100.0 * s.scored / s.expected : 0.0;
  g_print("ballscore report (%s):\n"
          "  frames: sent %" G_GUINT64_FORMAT ", received %" G_GUINT64_FORMAT
          ", scored %" G_GUINT64_FORMAT " (%.2f%% of the %" G_GUINT64_FORMAT
          " sent from the first detection on, %.2f%% of received)\n"
          "  detections: %" G_GUINT64_FORMAT " (extra %" G_GUINT64_FORMAT
          ", outliers > %.0f px %" G_GUINT64_FORMAT ")\n"
          "  error px: mean %.3f, p50 %.3f, p99 %.3f, max %.3f\n"
          "  latency ms: p50 %.2f, p99 %.2f, max %.2f\n",
          GST_OBJECT_NAME(self), s.sent, s.received, s.scored, pct_expected, s.expected, pct,
          s.detections, s.extra, kOutlierPx, s.outliers, s.mean, s.p50, s.p99, s.max, s.lat_p50,
          s.lat_p99, s.lat_max);
  gst_element_post_message(
      GST_ELEMENT(self),
      gst_message_new_element(GST_OBJECT(self), summary_structure("ballscore-report", s)));
}

static gboolean end_timer_fired(GstClock *clock, GstClockTime time, GstClockID id,
                                gpointer user_data)
{
  GstBallScore *self = GST_BALL_SCORE(user_data);
  std::lock_guard<std::mutex> guard(self->priv->stats_lock);
  final_report(self);
  return TRUE;
}

/* The source sent EOS: its last frame is out. Over a network the detections' path may never
 * carry that EOS to us (gst-launch -e only ends sources), so report after a grace period. */
static GstPadProbeReturn source_eos_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (!event || GST_EVENT_TYPE(event) != GST_EVENT_EOS) return GST_PAD_PROBE_OK;
  GstBallScore *self = GST_BALL_SCORE(user_data);
  BallScorePrivate *p = self->priv;
  GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
  if (!clock) return GST_PAD_PROBE_OK;
  std::lock_guard<std::mutex> guard(p->stats_lock);
  if (!p->end_timer && !p->reported) {
    GST_INFO_OBJECT(self, "source finished; final report in %" GST_TIME_FORMAT,
                    GST_TIME_ARGS(kEndGrace));
    p->end_timer = gst_clock_new_single_shot_id(clock, gst_clock_get_time(clock) + kEndGrace);
    gst_clock_id_wait_async(p->end_timer, end_timer_fired, gst_object_ref(self), gst_object_unref);
  }
  gst_object_unref(clock);
  return GST_PAD_PROBE_OK;
}

static void maybe_progress(GstBallScore *self)
{
  BallScorePrivate *p = self->priv;
  const gint64 now = g_get_monotonic_time();
  if (now - p->last_progress_us < G_USEC_PER_SEC) return;
  p->last_progress_us = now;
  const Summary s = summarize(p);
  g_print("ballscore: frames %" G_GUINT64_FORMAT ", detections %" G_GUINT64_FORMAT
          ", error mean %.3f px p99 %.3f px, latency p50 %.2f ms p99 %.2f ms\n",
          s.received, s.scored, s.mean, s.p99, s.lat_p50, s.lat_p99);
  gst_element_post_message(
      GST_ELEMENT(self),
      gst_message_new_element(GST_OBJECT(self), summary_structure("ballscore-progress", s)));
}

static GstFlowReturn gst_ball_score_render(GstBaseSink *sink, GstBuffer *buffer)
{
  GstBallScore *self = GST_BALL_SCORE(sink);
  BallScorePrivate *p = self->priv;
  GstClockTime now = GST_CLOCK_TIME_NONE;
  if (GstClock *clock = gst_element_get_clock(GST_ELEMENT(self))) {
    now = gst_clock_get_time(clock);
    gst_object_unref(clock);
  }
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    GST_ELEMENT_WARNING(self, STREAM, DECODE, (nullptr),
                        ("cannot map a detection buffer; dropped"));
    return GST_FLOW_OK;
  }
  if (map.size % (3 * sizeof(float)) != 0) {
    GST_ELEMENT_WARNING(self, STREAM, DECODE, ("malformed detection buffer"),
                        ("%" G_GSIZE_FORMAT
                         " bytes is not a whole number of 3-column float32 rows; dropped",
                         map.size));
    gst_buffer_unmap(buffer, &map);
    return GST_FLOW_OK;
  }
  const size_t rows = map.size / (3 * sizeof(float));
  const auto *f = reinterpret_cast<const float *>(map.data);
  std::lock_guard<std::mutex> guard(p->stats_lock);
  if (p->reported) {
    // The final report is out (the source ended); late detections are not in it.
    gst_buffer_unmap(buffer, &map);
    return GST_FLOW_OK;
  }
  p->received++;
  p->detections += rows;

  // Nearest row to the truth per frame number in this buffer.
  struct Best {
    double err = -1, det_x = 0, det_y = 0, true_x = 0, true_y = 0, latency = -1;
    guint64 frame = 0;
    int rows = 0;
  };
  std::map<guint64, Best> per_frame;
  for (size_t i = 0; i < rows; i++) {
    const float fr = f[3 * i], x = f[3 * i + 1], y = f[3 * i + 2];
    if (!std::isfinite(fr) || !std::isfinite(x) || !std::isfinite(y) || fr < 0) {
      GST_WARNING_OBJECT(self, "row %zu is not [frame >= 0, x, y]; ignored", i);
      continue;
    }
    const guint64 frame = static_cast<guint64>(std::llround(fr));
    GstStructure *truth = nullptr;
    g_signal_emit_by_name(p->src, "truth", frame, &truth);
    Best &b = per_frame[frame];
    b.rows++;
    if (!truth) continue;
    double tx = 0, ty = 0;
    guint64 left = GST_CLOCK_TIME_NONE, full = frame;
    gst_structure_get(truth, "x", G_TYPE_DOUBLE, &tx, "y", G_TYPE_DOUBLE, &ty, "left-time",
                      G_TYPE_UINT64, &left, "frame", G_TYPE_UINT64, &full, nullptr);
    gst_structure_free(truth);
    const double err = std::hypot(x - tx, y - ty);
    if (b.err < 0 || err < b.err) {
      b.err = err;
      b.det_x = x;
      b.det_y = y;
      b.true_x = tx;
      b.true_y = ty;
      b.frame = full;
      b.latency = (GST_CLOCK_TIME_IS_VALID(left) && GST_CLOCK_TIME_IS_VALID(now) && now >= left)
          ? (now - left) / 1e6
          : -1.0;
    }
  }
  gst_buffer_unmap(buffer, &map);

  for (const auto &[frame, b] : per_frame) {
    if (b.err >= 0 && !p->scored_frames.insert(b.frame).second) {
      p->extra += b.rows; // scored when it first arrived
      continue;
    }
    p->extra += b.rows > 1 ? b.rows - 1 : 0;
    if (b.err < 0) continue;
    while (p->scored_frames.size() > kScoredMemory)
      p->scored_frames.erase(p->scored_frames.begin());
    p->scored++;
    p->first_frame = std::min<guint64>(p->first_frame, b.frame);
    p->errors.push_back(b.err);
    if (b.err > kOutlierPx) p->outliers++;
    if (b.latency >= 0) p->latencies.push_back(b.latency);
    if (p->csv)
      fprintf(p->csv.get(), "%" G_GUINT64_FORMAT ",%.4f,%.4f,%.4f,%.4f,%.4f,%.3f\n", b.frame,
              b.true_x, b.true_y, b.det_x, b.det_y, b.err, b.latency);
  }
  maybe_progress(self);
  return GST_FLOW_OK;
}

static gboolean gst_ball_score_event(GstBaseSink *sink, GstEvent *event)
{
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    std::lock_guard<std::mutex> guard(GST_BALL_SCORE(sink)->priv->stats_lock);
    final_report(GST_BALL_SCORE(sink));
  }
  return GST_BASE_SINK_CLASS(gst_ball_score_parent_class)->event(sink, event);
}

static gboolean gst_ball_score_stop(GstBaseSink *sink)
{
  GstBallScore *self = GST_BALL_SCORE(sink);
  BallScorePrivate *p = self->priv;
  {
    std::lock_guard<std::mutex> guard(p->stats_lock);
    if (p->end_timer) {
      gst_clock_id_unschedule(p->end_timer);
      gst_clock_id_unref(p->end_timer);
      p->end_timer = nullptr;
    }
    // Stopped without EOS (e.g. Ctrl-C without -e): the figures are still worth printing.
    if (p->src && p->received > 0) final_report(self);
    p->csv.reset();
  }
  if (p->src) {
    if (p->eos_probe) {
      if (GstPad *srcpad = gst_element_get_static_pad(p->src, "src")) {
        gst_pad_remove_probe(srcpad, p->eos_probe);
        gst_object_unref(srcpad);
      }
      p->eos_probe = 0;
    }
    gst_object_unref(p->src);
    p->src = nullptr;
  }
  return TRUE;
}

static void gst_ball_score_finalize(GObject *object)
{
  GstBallScore *self = GST_BALL_SCORE(object);
  if (self->priv->src) gst_object_unref(self->priv->src);
  delete self->priv;
  G_OBJECT_CLASS(gst_ball_score_parent_class)->finalize(object);
}

static void gst_ball_score_class_init(GstBallScoreClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSinkClass *sink_class = GST_BASE_SINK_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_ball_score_debug, "ballscore", 0, "ball tracking scorer");

  gobject_class->set_property = gst_ball_score_set_property;
  gobject_class->get_property = gst_ball_score_get_property;
  gobject_class->finalize = gst_ball_score_finalize;

  const auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                           GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_SOURCE,
      g_param_spec_string("source", "Source",
                          "Name of the ballsrc in this pipeline whose frames are scored", nullptr,
                          rw));
  g_object_class_install_property(
      gobject_class, PROP_REPORT,
      g_param_spec_string(
          "report", "Report",
          "Path of a CSV file: frame,true_x,true_y,det_x,det_y,error_px,latency_ms, one row per "
          "scored frame",
          nullptr, rw));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_set_static_metadata(
      element_class, "Ball tracking scorer", "Sink/Analyzer",
      "Compares [frame, x, y] detections with ballsrc's true positions; reports pixel error and "
      "loop latency",
      "pointcast");

  sink_class->start = gst_ball_score_start;
  sink_class->stop = gst_ball_score_stop;
  sink_class->render = gst_ball_score_render;
  sink_class->event = gst_ball_score_event;
}

static void gst_ball_score_init(GstBallScore *self)
{
  self->priv = new BallScorePrivate();
  // Detections are scored when they arrive; waiting for their PTS would add latency.
  gst_base_sink_set_sync(GST_BASE_SINK(self), FALSE);
}
