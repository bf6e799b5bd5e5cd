// SPDX-License-Identifier: LGPL-2.1-or-later
/* ballsrc, balldetect and ballscore in real pipelines: determinism, geometry, the frame mark
 * through VP8 and H.264 at low bitrates, sprites, and the local tracking loop. */
// Standard streams before gstcheck.h, whose fail() macro would clash with std::ios::fail().
#include <fstream>
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/check/gstcheck.h>
#include <gst/video/video.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ballmodel.h"
#include "ballrender.h"

using namespace pointcast::ball;

namespace {

/* Runs a pipeline to EOS, collecting every sample of the appsink named "out" (if any) and
 * every element message. Returns the error message, or "" on success. */
struct Run {
  std::vector<GstSample *> samples;
  std::vector<GstStructure *> messages;
  std::string error;
  ~Run()
  {
    for (auto *s : samples) gst_sample_unref(s);
    for (auto *m : messages) gst_structure_free(m);
  }
  const GstStructure *message(const char *name) const
  {
    for (auto it = messages.rbegin(); it != messages.rend(); ++it)
      if (gst_structure_has_name(*it, name)) return *it;
    return nullptr;
  }
};

void run_pipeline(const std::string &desc, Run &run, GstClockTime timeout = 120 * GST_SECOND)
{
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  fail_unless(pipeline != nullptr, "parse %s: %s", desc.c_str(), err ? err->message : "?");
  g_clear_error(&err);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  if (sink) g_object_set(sink, "sync", FALSE, "max-buffers", 0, "emit-signals", FALSE, nullptr);
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  const gint64 deadline = g_get_monotonic_time() + timeout / 1000;
  bool done = false;
  while (!done && g_get_monotonic_time() < deadline) {
    if (sink) {
      while (GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 0))
        run.samples.push_back(s);
    }
    GstMessage *msg = gst_bus_timed_pop(bus, 10 * GST_MSECOND);
    if (!msg) continue;
    switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_EOS: done = true; break;
    case GST_MESSAGE_ERROR: {
      GError *e = nullptr;
      gst_message_parse_error(msg, &e, nullptr);
      run.error = e->message;
      g_error_free(e);
      done = true;
      break;
    }
    case GST_MESSAGE_ELEMENT:
      run.messages.push_back(gst_structure_copy(gst_message_get_structure(msg)));
      break;
    default: break;
    }
    gst_message_unref(msg);
  }
  fail_unless(done, "pipeline timed out: %s", desc.c_str());
  if (sink) {
    while (GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 0))
      run.samples.push_back(s);
    gst_object_unref(sink);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
}

std::vector<uint8_t> bytes_of(GstSample *s)
{
  GstBuffer *b = gst_sample_get_buffer(s);
  std::vector<uint8_t> out(gst_buffer_get_size(b));
  gst_buffer_extract(b, 0, out.data(), out.size());
  return out;
}

struct Rows {
  std::vector<float> v;
  size_t rows() const { return v.size() / 3; }
};

Rows rows_of(GstSample *s)
{
  auto bytes = bytes_of(s);
  Rows r;
  r.v.resize(bytes.size() / 4);
  memcpy(r.v.data(), bytes.data(), r.v.size() * 4);
  return r;
}

} // namespace

GST_START_TEST(test_determinism)
{
  for (const char *format : {"RGB", "BGRx", "xRGB", "RGBA", "ABGR", "I420", "NV12"}) {
    std::vector<std::vector<uint8_t>> frames[2];
    for (int i = 0; i < 2; i++) {
      Run run;
      run_pipeline(std::string("ballsrc is-live=false num-buffers=12 seed=9 speed=777 angle=41 "
                               "mark=true color=0xff20c0f0 background=0xff402010 radius=13.3 ! "
                               "video/x-raw,format=") +
                       format + ",width=333,height=251,framerate=25/1 ! appsink name=out",
                   run);
      fail_unless(run.error.empty(), "%s: %s", format, run.error.c_str());
      fail_unless_equals_int(run.samples.size(), 12);
      for (auto *s : run.samples) frames[i].push_back(bytes_of(s));
    }
    fail_unless(frames[0] == frames[1], "format %s: two instances differ", format);
    fail_unless(frames[0][0] != frames[0][1], "format %s: the ball does not move", format);
  }
  // A different seed is a different video.
  Run a, b;
  run_pipeline("ballsrc is-live=false num-buffers=1 seed=1 ! "
               "video/x-raw,format=RGB,width=64,height=64 ! appsink name=out",
               a);
  run_pipeline("ballsrc is-live=false num-buffers=1 seed=2 ! "
               "video/x-raw,format=RGB,width=64,height=64 ! appsink name=out",
               b);
  fail_unless(bytes_of(a.samples[0]) != bytes_of(b.samples[0]));
}
GST_END_TEST;

/* Intensity centroid of the red channel of an RGB frame below row top. */
static Point red_centroid(const std::vector<uint8_t> &rgb, int w, int h, int top)
{
  double s = 0, sx = 0, sy = 0;
  for (int y = top; y < h; y++)
    for (int x = 0; x < w; x++) {
      const double a = rgb[(static_cast<size_t>(y) * w + x) * 3] / 255.0;
      s += a;
      sx += a * x;
      sy += a * y;
    }
  return {sx / s, sy / s};
}

GST_START_TEST(test_motion_geometry)
{
  // 60 frames at 30 fps, fast enough to bounce several times: every frame's drawn centre is the
  // analytic position, and so is what the truth signal reports.
  const int w = 320, h = 240;
  for (bool with_mark : {false, true}) {
    GError *err = nullptr;
    GstElement *pipeline =
        gst_parse_launch(with_mark ? "ballsrc name=ball is-live=false num-buffers=60 seed=3 "
                                     "speed=900 angle=63 radius=15 color=0xffff0000 mark=true ! "
                                     "video/x-raw,format=RGB,width=320,height=240,framerate=30/1 ! "
                                     "appsink name=out sync=false"
                                   : "ballsrc name=ball is-live=false num-buffers=60 seed=3 "
                                     "speed=900 angle=63 radius=15 color=0xffff0000 ! "
                                     "video/x-raw,format=RGB,width=320,height=240,framerate=30/1 ! "
                                     "appsink name=out sync=false",
                         &err);
    fail_unless(pipeline != nullptr);
    GstElement *ball = gst_bin_get_by_name(GST_BIN(pipeline), "ball");
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    const int top = with_mark ? mark::layout_for_width(w).band_height + 4 : 0;
    Motion model(MotionParams{15, 900, 63, 3}, Field::whole_frame(w, h, top));
    double min_y = 1e9;
    for (guint64 n = 0; n < 60; n++) {
      GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND);
      fail_unless(s != nullptr, "frame %d missing", (int)n);
      GstBuffer *buf = gst_sample_get_buffer(s);
      fail_unless_equals_uint64(GST_BUFFER_OFFSET(buf), n);
      fail_unless_equals_uint64(GST_BUFFER_PTS(buf), gst_util_uint64_scale(n, GST_SECOND, 30));
      const Point c = red_centroid(bytes_of(s), w, h, top);
      const Point m = model.at_frame(n, 30, 1);
      fail_unless(std::hypot(c.x - m.x, c.y - m.y) < 0.03,
                  "frame %d: drawn (%f, %f), model (%f, %f)", (int)n, c.x, c.y, m.x, m.y);
      GstStructure *truth = nullptr;
      g_signal_emit_by_name(ball, "truth", n, &truth);
      fail_unless(truth != nullptr);
      double tx = 0, ty = 0;
      gst_structure_get_double(truth, "x", &tx);
      gst_structure_get_double(truth, "y", &ty);
      fail_unless(tx == m.x && ty == m.y);
      gst_structure_free(truth);
      min_y = std::min(min_y, m.y);
      gst_sample_unref(s);
    }
    // With the mark the ball never enters the band.
    fail_unless(min_y - 15 >= top - 0.5 - 1e-9);
    GstStructure *none = nullptr;
    g_signal_emit_by_name(ball, "truth", (guint64)1000, &none);
    fail_unless(none == nullptr, "a frame not produced yet has no truth");
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(ball);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
  }
}
GST_END_TEST;

/* Marks read back from decoded frames, through an encoder/decoder pair. */
static void check_mark_round_trip(const std::string &codec, int frames)
{
  Run run;
  run_pipeline(
      "ballsrc is-live=false mark=true num-buffers=" + std::to_string(frames) +
          " speed=400 ! video/x-raw,width=640,height=480,framerate=30/1 ! videoconvert ! " + codec +
          " ! videoconvert ! video/x-raw,format=I420 ! appsink name=out",
      run);
  fail_unless(run.error.empty(), "%s: %s", codec.c_str(), run.error.c_str());
  fail_unless_equals_int(run.samples.size(), frames);
  const auto layout = mark::layout_for_width(640);
  int read = 0, misread = 0;
  for (size_t i = 0; i < run.samples.size(); i++) {
    GstVideoInfo info;
    gst_video_info_from_caps(&info, gst_sample_get_caps(run.samples[i]));
    GstVideoFrame vf;
    fail_unless(
        gst_video_frame_map(&vf, &info, gst_sample_get_buffer(run.samples[i]), GST_MAP_READ));
    ImageView v;
    v.layout = PixelLayout::I420;
    v.width = 640;
    v.height = 480;
    v.data[0] = static_cast<uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&vf, 0));
    v.stride[0] = GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0);
    auto cells = mark_cell_luma(v, layout);
    auto r = mark::decode_cells(layout, cells.data());
    gst_video_frame_unmap(&vf);
    if (!r.frame) continue;
    read++;
    if (*r.frame != i) misread++;
  }
  fail_unless_equals_int(misread, 0);
  fail_unless_equals_int(read, frames);
}

GST_START_TEST(test_mark_vp8)
{
  // 150 kbit/s for 640x480 at 30 fps is well below what VP8 needs for a clean picture.
  check_mark_round_trip(
      "vp8enc target-bitrate=150000 deadline=1 cpu-used=8 keyframe-max-dist=300 ! vp8dec", 300);
}
GST_END_TEST;

GST_START_TEST(test_mark_h264)
{
  GstElementFactory *x264 = gst_element_factory_find("x264enc");
  GstElementFactory *dec = gst_element_factory_find("avdec_h264");
  if (x264 && dec) {
    check_mark_round_trip(
        "x264enc bitrate=150 speed-preset=ultrafast tune=zerolatency key-int-max=300 ! "
        "h264parse ! avdec_h264",
        300);
  } else {
    check_mark_round_trip("openh264enc bitrate=150000 ! h264parse ! openh264dec", 300);
  }
  if (x264) gst_object_unref(x264);
  if (dec) gst_object_unref(dec);
}
GST_END_TEST;

GST_START_TEST(test_detect_stream)
{
  // One buffer per frame with the frame's PTS; zero rows when the ball is invisible.
  Run run;
  run_pipeline(
      "ballsrc is-live=false num-buffers=10 mark=true ! video/x-raw,width=320,height=240 ! "
      "balldetect ! appsink name=out",
      run);
  fail_unless(run.error.empty(), "%s", run.error.c_str());
  fail_unless_equals_int(run.samples.size(), 10);
  for (size_t i = 0; i < run.samples.size(); i++) {
    GstBuffer *b = gst_sample_get_buffer(run.samples[i]);
    fail_unless_equals_uint64(GST_BUFFER_PTS(b), gst_util_uint64_scale(i, GST_SECOND, 30));
    Rows r = rows_of(run.samples[i]);
    fail_unless_equals_int(r.rows(), 1);
    fail_unless_equals_int((int)r.v[0], (int)i);
  }
  GstCaps *caps = gst_sample_get_caps(run.samples[0]);
  int columns = 0;
  gst_structure_get_int(gst_caps_get_structure(caps, 0), "columns", &columns);
  fail_unless_equals_int(columns, 3);

  Run empty;
  run_pipeline(
      "ballsrc is-live=false num-buffers=5 color=0xff000000 ! video/x-raw,width=320,height=240 ! "
      "balldetect ! appsink name=out",
      empty);
  fail_unless_equals_int(empty.samples.size(), 5);
  for (auto *s : empty.samples)
    fail_unless_equals_int(gst_buffer_get_size(gst_sample_get_buffer(s)), 0);
}
GST_END_TEST;

GST_START_TEST(test_sprite)
{
  // A 64x64 PNG: an opaque red disc of radius 30 with a soft rim, transparent elsewhere.
  const int n = 64;
  std::vector<uint8_t> rgba(n * n * 4, 0);
  for (int y = 0; y < n; y++)
    for (int x = 0; x < n; x++) {
      const double d = std::hypot(x - 31.5, y - 31.5);
      const double a = std::clamp(30.5 - d, 0.0, 1.0);
      uint8_t *p = &rgba[(y * n + x) * 4];
      p[0] = 255;
      p[3] = static_cast<uint8_t>(std::lround(a * 255));
    }
  gchar *png = g_build_filename(g_get_tmp_dir(), "pointcast-test-sprite-XXXXXX.png", nullptr);
  const int fd = g_mkstemp(png);
  fail_unless(fd >= 0);
  close(fd);
  {
    GstElement *p = gst_parse_launch(
        (std::string("appsrc name=in caps=video/x-raw,format=RGBA,width=64,height=64,framerate=1/1 "
                     "! pngenc ! filesink location=") +
         png)
            .c_str(),
        nullptr);
    GstElement *in = gst_bin_get_by_name(GST_BIN(p), "in");
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstBuffer *buf = gst_buffer_new_memdup(rgba.data(), rgba.size());
    GST_BUFFER_PTS(buf) = 0;
    gst_app_src_push_buffer(GST_APP_SRC(in), buf);
    gst_app_src_end_of_stream(GST_APP_SRC(in));
    GstBus *bus = gst_element_get_bus(p);
    GstMessage *m = gst_bus_timed_pop_filtered(
        bus, 10 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS);
    gst_message_unref(m);
    gst_object_unref(bus);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(in);
    gst_object_unref(p);
  }
  Run run;
  run_pipeline(
      std::string(
          "ballsrc is-live=false num-buffers=8 seed=4 speed=300 radius=12 image-location=") +
          png + " ! video/x-raw,format=RGB,width=200,height=150,framerate=30/1 ! appsink name=out",
      run);
  fail_unless(run.error.empty(), "%s", run.error.c_str());
  fail_unless_equals_int(run.samples.size(), 8);
  Motion model(MotionParams{12, 300, 30, 4}, Field::whole_frame(200, 150));
  for (size_t i = 0; i < run.samples.size(); i++) {
    const auto rgb = bytes_of(run.samples[i]);
    const Point c = red_centroid(rgb, 200, 150, 0);
    const Point m = model.at_frame(i, 30, 1);
    fail_unless(std::hypot(c.x - m.x, c.y - m.y) < 0.05,
                "sprite frame %d at (%f, %f), model (%f, %f)", (int)i, c.x, c.y, m.x, m.y);
    // The sprite is red only: no green or blue anywhere, transparent parts show the background.
    fail_unless_equals_int(rgb[1], 0);
  }
  remove(png);
  g_free(png);

  Run bad;
  run_pipeline(
      "ballsrc is-live=false num-buffers=2 image-location=/nonexistent/ball.png ! fakesink", bad);
  fail_unless(bad.error.find("/nonexistent/ball.png") != std::string::npos, "error: %s",
              bad.error.c_str());
}
GST_END_TEST;

GST_START_TEST(test_score_needs_source)
{
  Run run;
  run_pipeline("ballsrc is-live=false num-buffers=2 ! balldetect ! ballscore", run);
  fail_unless(run.error.find("source") != std::string::npos, "error: %s", run.error.c_str());
  Run wrong;
  run_pipeline("ballsrc is-live=false num-buffers=2 ! balldetect ! ballscore source=nosuch", wrong);
  fail_unless(wrong.error.find("nosuch") != std::string::npos, "error: %s", wrong.error.c_str());
}
GST_END_TEST;

static double get_d(const GstStructure *s, const char *f)
{
  double v = -1;
  fail_unless(gst_structure_get_double(s, f, &v), "%s missing", f);
  return v;
}
static guint64 get_u(const GstStructure *s, const char *f)
{
  guint64 v = 0;
  fail_unless(gst_structure_get_uint64(s, f, &v), "%s missing", f);
  return v;
}

GST_START_TEST(test_local_loop)
{
  // The tracking loop without WebRTC: VP8 at a modest bitrate, scored against the truth.
  gchar *csv = g_build_filename(g_get_tmp_dir(), "pointcast-test-ballscore-XXXXXX.csv", nullptr);
  const int fd = g_mkstemp(csv);
  close(fd);
  const int frames = 450;
  Run run;
  run_pipeline(
      "ballsrc name=ball is-live=false mark=true num-buffers=" + std::to_string(frames) +
          " speed=240 angle=37 seed=11 background=0xff304050 color=0xfff0d020 ! "
          "video/x-raw,width=640,height=480,framerate=30/1 ! tee name=t ! queue ! videoconvert ! "
          "vp8enc target-bitrate=600000 deadline=1 cpu-used=8 ! vp8dec ! balldetect ! "
          "ballscore source=ball report=" +
          std::string(csv) + "  t. ! queue ! fakesink",
      run);
  fail_unless(run.error.empty(), "%s", run.error.c_str());
  const GstStructure *rep = run.message("ballscore-report");
  fail_unless(rep != nullptr, "no final report");
  const guint64 sent = get_u(rep, "frames-sent"), scored = get_u(rep, "frames-scored");
  fail_unless_equals_uint64(sent, frames);
  fail_unless_equals_uint64(get_u(rep, "frames-received"), frames);
  fail_unless_equals_uint64(get_u(rep, "frames-expected"), frames);
  fail_unless(scored * 1000 >= sent * 999, "scored %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT,
              scored, sent);
  fail_unless_equals_uint64(get_u(rep, "outliers"), 0);
  fail_unless_equals_uint64(get_u(rep, "extra-detections"), 0);
  const double mean = get_d(rep, "error-mean"), p99 = get_d(rep, "error-p99");
  fail_unless(mean >= 0 && mean <= 0.3, "mean error %f px", mean);
  fail_unless(p99 >= 0 && p99 <= 1.0, "p99 error %f px", p99);
  // The CSV: header and one row per scored frame.
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);
  fail_unless(line == "frame,true_x,true_y,det_x,det_y,error_px,latency_ms", "header %s",
              line.c_str());
  guint64 lines = 0;
  while (std::getline(in, line)) lines++;
  fail_unless_equals_uint64(lines, scored);
  remove(csv);
  g_free(csv);
}
GST_END_TEST;

GST_START_TEST(test_live_latency)
{
  // Live: frames leave ballsrc at their clock time, so the latency is the loop's own time.
  Run run;
  run_pipeline("ballsrc name=ball mark=true num-buffers=45 ! "
               "video/x-raw,width=320,height=240,framerate=30/1 ! "
               "balldetect ! ballscore source=ball",
               run, 60 * GST_SECOND);
  fail_unless(run.error.empty(), "%s", run.error.c_str());
  const GstStructure *rep = run.message("ballscore-report");
  fail_unless(rep != nullptr);
  // 45 live frames take 1.5 s: at least one per-second progress message.
  fail_unless(run.message("ballscore-progress") != nullptr, "no progress message");
  const double p50 = get_d(rep, "latency-p50");
  fail_unless(p50 >= 0 && p50 < 50.0, "latency p50 %f ms", p50);
  fail_unless(get_d(rep, "error-max") < 0.1);
}
GST_END_TEST;

GST_START_TEST(test_report_when_source_ends)
{
  // The detections' path never ends (as over WebRTC): they come from a second, identical and
  // endless ballsrc. The report must still come, shortly after the scored source's last frame.
  GstElement *pipeline =
      gst_parse_launch("ballsrc name=ball mark=true num-buffers=30 ! "
                       "video/x-raw,width=320,height=240,framerate=30/1 ! fakesink "
                       "ballsrc mark=true ! video/x-raw,width=320,height=240,framerate=30/1 ! "
                       "balldetect ! ballscore source=ball",
                       nullptr);
  fail_unless(pipeline != nullptr);
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  const gint64 start = g_get_monotonic_time();
  GstStructure *report = nullptr;
  while (!report && g_get_monotonic_time() - start < 30 * G_USEC_PER_SEC) {
    GstMessage *msg = gst_bus_timed_pop(bus, 100 * GST_MSECOND);
    if (!msg) continue;
    fail_if(GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR);
    const GstStructure *s = gst_message_get_structure(msg);
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT &&
        gst_structure_has_name(s, "ballscore-report"))
      report = gst_structure_copy(s);
    gst_message_unref(msg);
  }
  fail_unless(report != nullptr, "no report after the source ended");
  // 30 frames take 1 s, the grace period 2 s; allow a loaded machine plenty more.
  fail_unless(g_get_monotonic_time() - start < 15 * G_USEC_PER_SEC);
  fail_unless_equals_uint64(get_u(report, "frames-sent"), 30);
  fail_unless(get_u(report, "frames-scored") >= 29);
  fail_unless(get_d(report, "error-max") < 0.1);
  gst_structure_free(report);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
}
GST_END_TEST;

GST_START_TEST(test_frames_counts_what_left)
{
  // gst-launch -e ends a live ballsrc with an EOS event; basesrc then drops the frame it had
  // just created. "frames" (ballscore's frames-sent) must count only frames that left the pad,
  // else the scorer expects a detection for a frame nobody ever saw.
  GError *error = nullptr;
  GstElement *pipeline =
      gst_parse_launch("ballsrc name=ball ! video/x-raw,width=160,height=120,framerate=30/1 ! "
                       "appsink name=out sync=false emit-signals=false max-buffers=1000",
                       &error);
  fail_unless(pipeline != nullptr && error == nullptr, "%s",
              error ? error->message : "no pipeline");
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "ball");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  // Frames leave every 33 ms; the EOS lands somewhere within a frame interval.
  g_usleep(300000 + g_random_int_range(0, 33000));
  gst_element_send_event(pipeline, gst_event_new_eos());
  guint64 got = 0;
  while (GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 2 * GST_SECOND)) {
    got++;
    gst_sample_unref(sample);
  }
  fail_unless(gst_app_sink_is_eos(GST_APP_SINK(sink)));
  guint64 frames = 0;
  g_object_get(src, "frames", &frames, nullptr);
  fail_unless(got > 5, "only %" G_GUINT64_FORMAT " frames", got);
  fail_unless_equals_uint64(frames, got);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}
GST_END_TEST;

GST_START_TEST(test_repeat_scored_once)
{
  // balldetect repeat=2: each buffer carries this frame's row and the two before it (so that a
  // lost message's detections come with the next); ballscore scores every frame once, at its
  // first row, and counts the repeats as extra detections.
  const int frames = 60;
  Run run;
  run_pipeline("ballsrc name=ball is-live=false mark=true num-buffers=" + std::to_string(frames) +
                   " ! video/x-raw,width=320,height=240,framerate=30/1 ! balldetect repeat=2 ! "
                   "ballscore source=ball",
               run);
  fail_unless(run.error.empty(), "%s", run.error.c_str());
  const GstStructure *rep = run.message("ballscore-report");
  fail_unless(rep != nullptr, "no final report");
  fail_unless_equals_uint64(get_u(rep, "frames-received"), frames);
  fail_unless_equals_uint64(get_u(rep, "frames-scored"), frames);
  fail_unless_equals_uint64(get_u(rep, "detections"), 3 * frames - 3);
  fail_unless_equals_uint64(get_u(rep, "extra-detections"), 2 * frames - 3);
  fail_unless_equals_uint64(get_u(rep, "outliers"), 0);
}
GST_END_TEST;

static Suite *ballelements_suite(void)
{
  Suite *s = suite_create("ballelements");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 300);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_determinism);
  tcase_add_test(tc, test_motion_geometry);
  tcase_add_test(tc, test_mark_vp8);
  tcase_add_test(tc, test_mark_h264);
  tcase_add_test(tc, test_detect_stream);
  tcase_add_test(tc, test_sprite);
  tcase_add_test(tc, test_score_needs_source);
  tcase_add_test(tc, test_local_loop);
  tcase_add_test(tc, test_live_latency);
  tcase_add_test(tc, test_report_when_source_ends);
  tcase_add_test(tc, test_frames_counts_what_left);
  tcase_add_test(tc, test_repeat_scored_once);
  return s;
}

GST_CHECK_MAIN(ballelements);
