// SPDX-License-Identifier: LGPL-2.1-or-later
/* Data channel throughput and latency, in one process, for two implementations:
 *
 *   --impl bare     two bare webrtcbins connected directly (SDP and candidates handed over
 *                   in-process, as gst-plugins-bad's tests/check/elements/webrtcbin.c does); the
 *                   sender calls send-data itself and keeps at most 1 MiB buffered
 *                   (buffered-amount / on-buffered-amount-low, as a browser app would).
 *   --impl rtcpeer  rtcpeer (offerer)  ~ local:// ~  rtcpeer (answerer) ! appsink; the sending
 *                   thread pushes buffers into the offerer's data_bench pad itself, as a source
 *                   element's streaming thread would. rtcpeer does its own flow control and
 *                   splits messages above the SCTP limit.
 *
 * usage: dcbench --impl bare,rtcpeer [--sizes 1024,65536,1048576] [--seconds S] [--reps R]
 *                [--latency SECONDS] [--latency-size BYTES]
 * With several implementations (--impl bare,rtcpeer) all are set up at once and their runs
 * alternate, size by size, so a change of load on the shared machine hits them alike. Each size
 * is sent for about S seconds (run length found by a probe), R times; the best run counts (the
 * least disturbed one). With --latency,
 * one message of latency-size bytes every 250 ms (4 Hz) carries its send time; the receiver
 * takes the difference (same clock: same process).
 * Prints one JSON object per line: {"impl":...,"size":...,"messages":...,"seconds":...,
 * "msg_per_s":...,"mb_per_s":...}, {"impl":...,"size":...,"error":"..."} or
 * {"impl":...,"latency_p50_ms":...,"latency_p99_ms":...,"samples":...}. */
#include <gst/app/app.h>
#include <unistd.h>
#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr guint64 kHigh = 1 << 20, kLow = 256 << 10;

// What the receiving side has seen; fed from the receiver's streaming/SCTP thread.
struct Counter {
  std::mutex mu;
  std::condition_variable cv;
  guint64 received = 0, bytes = 0, target = 0;
  Clock::time_point last;
  bool latency_mode = false;
  std::vector<double> latencies_ms;

  void on_message(const guint8 *data, gsize size)
  {
    gint64 now = g_get_monotonic_time();
    std::lock_guard lk(mu);
    received++;
    bytes += size;
    if (latency_mode && size >= 8) {
      gint64 sent;
      memcpy(&sent, data, 8);
      latencies_ms.push_back((now - sent) / 1000.0);
    }
    if (received == target) last = Clock::now();
    cv.notify_all();
  }
};

class Impl {
public:
  virtual ~Impl() = default;
  virtual bool start(std::string *err) = 0;
  // Sends one message; blocks while the implementation applies back-pressure.
  virtual bool send(GBytes *msg, std::string *err) = 0;
  virtual void stop() = 0;
  Counter counter;
};

// ---------------------------------------------------------------- bare webrtcbin
class Bare final : public Impl {
public:
  bool start(std::string *err) override
  {
    pipe_ = gst_pipeline_new(nullptr);
    w1_ = gst_element_factory_make("webrtcbin", "w1");
    w2_ = gst_element_factory_make("webrtcbin", "w2");
    if (!w1_ || !w2_) {
      *err = "webrtcbin not available";
      return false;
    }
    for (GstElement *w : {w1_, w2_})
      g_object_set(w, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
    gst_bin_add_many(GST_BIN(pipe_), w1_, w2_, nullptr);
    g_signal_connect(w1_, "on-negotiation-needed", G_CALLBACK(on_negotiation_needed), this);
    g_signal_connect(w1_, "on-ice-candidate", G_CALLBACK(on_candidate), w2_);
    g_signal_connect(w2_, "on-ice-candidate", G_CALLBACK(on_candidate), w1_);
    g_signal_connect(w2_, "on-data-channel", G_CALLBACK(on_data_channel), this);
    gst_element_set_state(pipe_, GST_STATE_PLAYING);
    g_signal_emit_by_name(w1_, "create-data-channel", "bench", nullptr, &tx_);
    g_object_set(tx_, "buffered-amount-low-threshold", kLow, nullptr);
    g_signal_connect(tx_, "on-open", G_CALLBACK(on_open), this);
    g_signal_connect(tx_, "on-buffered-amount-low", G_CALLBACK(on_low), this);
    std::unique_lock lk(mu_);
    GstWebRTCDataChannelState st;
    g_object_get(tx_, "ready-state", &st, nullptr);
    open_ = open_ || st == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN;
    if (!cv_.wait_for(lk, std::chrono::seconds(30), [&] { return open_ && rx_; })) {
      *err = "data channel did not open";
      return false;
    }
    return true;
  }

  bool send(GBytes *msg, std::string *err) override
  {
    if (buffered() > kHigh) {
      std::unique_lock lk(mu_);
      low_ = false;
      if (buffered() > kHigh) // re-check under the lock: the event may have fired meanwhile
        cv_.wait_for(lk, std::chrono::seconds(10), [&] { return low_; });
    }
    GError *e = nullptr;
    if (!gst_webrtc_data_channel_send_data_full(tx_, msg, &e)) {
      *err = e ? e->message : "send failed";
      g_clear_error(&e);
      return false;
    }
    return true;
  }

  void stop() override
  {
    if (pipe_) {
      gst_element_set_state(pipe_, GST_STATE_NULL);
      gst_object_unref(pipe_);
      pipe_ = nullptr;
    }
    if (rx_) g_object_unref(rx_);
    if (tx_) g_object_unref(tx_);
    rx_ = tx_ = nullptr;
  }

private:
  guint64 buffered()
  {
    guint64 v = 0;
    g_object_get(tx_, "buffered-amount", &v, nullptr);
    return v;
  }

  static void on_answer(GstPromise *p, gpointer data)
  {
    auto *b = static_cast<Bare *>(data);
    GstWebRTCSessionDescription *answer = nullptr;
    gst_structure_get(gst_promise_get_reply(p), "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
                      &answer, nullptr);
    gst_promise_unref(p);
    g_signal_emit_by_name(b->w2_, "set-local-description", answer, nullptr);
    g_signal_emit_by_name(b->w1_, "set-remote-description", answer, nullptr);
    gst_webrtc_session_description_free(answer);
  }
  static void on_offer(GstPromise *p, gpointer data)
  {
    auto *b = static_cast<Bare *>(data);
    GstWebRTCSessionDescription *offer = nullptr;
    gst_structure_get(gst_promise_get_reply(p), "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
                      &offer, nullptr);
    gst_promise_unref(p);
    g_signal_emit_by_name(b->w1_, "set-local-description", offer, nullptr);
    g_signal_emit_by_name(b->w2_, "set-remote-description", offer, nullptr);
    gst_webrtc_session_description_free(offer);
    g_signal_emit_by_name(b->w2_, "create-answer", nullptr,
                          gst_promise_new_with_change_func(on_answer, b, nullptr));
  }
  static void on_negotiation_needed(GstElement *w1, gpointer data)
  {
    g_signal_emit_by_name(w1, "create-offer", nullptr,
                          gst_promise_new_with_change_func(on_offer, data, nullptr));
  }
  static void on_candidate(GstElement *, guint mline, gchar *cand, gpointer other)
  {
    g_signal_emit_by_name(GST_ELEMENT(other), "add-ice-candidate", mline, cand);
  }
  static void on_message(GstWebRTCDataChannel *, GBytes *bytes, gpointer data)
  {
    gsize n;
    auto *p = static_cast<const guint8 *>(g_bytes_get_data(bytes, &n));
    static_cast<Bare *>(data)->counter.on_message(p, n);
  }
  static void on_data_channel(GstElement *, GstWebRTCDataChannel *chan, gpointer data)
  {
    auto *b = static_cast<Bare *>(data);
    g_signal_connect(chan, "on-message-data", G_CALLBACK(on_message), b);
    std::lock_guard lk(b->mu_);
    b->rx_ = GST_WEBRTC_DATA_CHANNEL(g_object_ref(chan));
    b->cv_.notify_all();
  }
  static void on_open(GstWebRTCDataChannel *, gpointer data)
  {
    auto *b = static_cast<Bare *>(data);
    std::lock_guard lk(b->mu_);
    b->open_ = true;
    b->cv_.notify_all();
  }
  static void on_low(GstWebRTCDataChannel *, gpointer data)
  {
    auto *b = static_cast<Bare *>(data);
    std::lock_guard lk(b->mu_);
    b->low_ = true;
    b->cv_.notify_all();
  }

  GstElement *pipe_ = nullptr, *w1_ = nullptr, *w2_ = nullptr;
  GstWebRTCDataChannel *tx_ = nullptr, *rx_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false, low_ = false;
};

// ---------------------------------------------------------------- rtcpeer
class RtcPeer final : public Impl {
public:
  bool start(std::string *err) override
  {
    if (!gst_element_factory_find("rtcpeer")) {
      *err = "rtcpeer not found (GST_PLUGIN_PATH must hold libgstpointcast.so)";
      return false;
    }
    std::string room = "dcbench-" + std::to_string(getpid()) + "-" + std::to_string(g_random_int());
    std::string desc = "rtcpeer name=tx signaling=local://" + room +
        " role=offerer wait-for-peers=1 "
        "rtcpeer name=rx signaling=local://" +
        room +
        " role=answerer "
        "rx.data_bench ! appsink name=sink sync=false async=false max-buffers=0";
    GError *e = nullptr;
    pipe_ = gst_parse_launch(desc.c_str(), &e);
    if (!pipe_) {
      *err = e ? e->message : "cannot build the pipeline";
      g_clear_error(&e);
      return false;
    }
    // The sending thread pushes into tx.data_bench itself, as a source element's streaming
    // thread does (and as the bare sender calls send-data itself): no queue hop in between.
    tx_ = gst_bin_get_by_name(GST_BIN(pipe_), "tx");
    sinkpad_ = gst_element_request_pad_simple(tx_, "data_bench");
    srcpad_ = gst_pad_new("bench", GST_PAD_SRC);
    if (!sinkpad_ || gst_pad_link(srcpad_, sinkpad_) != GST_PAD_LINK_OK) {
      *err = "cannot link to rtcpeer's data_bench pad";
      return false;
    }
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe_), "sink");
    GstAppSinkCallbacks cb = {};
    cb.new_sample = [](GstAppSink *s, gpointer data) -> GstFlowReturn {
      GstSample *sample = gst_app_sink_pull_sample(s);
      GstBuffer *buf = gst_sample_get_buffer(sample);
      GstMapInfo map;
      if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
        static_cast<RtcPeer *>(data)->counter.on_message(map.data, map.size);
        gst_buffer_unmap(buf, &map);
      }
      gst_sample_unref(sample);
      return GST_FLOW_OK;
    };
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, this, nullptr);
    gst_object_unref(sink);
    gst_element_set_state(pipe_, GST_STATE_PLAYING);
    gst_pad_set_active(srcpad_, TRUE);
    gst_pad_push_event(srcpad_, gst_event_new_stream_start("dcbench"));
    GstCaps *caps = gst_caps_new_empty_simple("application/octet-stream");
    gst_pad_push_event(srcpad_, gst_event_new_caps(caps));
    gst_caps_unref(caps);
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_BYTES);
    gst_pad_push_event(srcpad_, gst_event_new_segment(&seg));
    // The channel is open once a first message gets through (wait-for-peers=1 holds it).
    std::vector<guint8> hello(16, 0);
    GBytes *b = g_bytes_new(hello.data(), hello.size());
    bool ok = send(b, err);
    g_bytes_unref(b);
    std::unique_lock lk(counter.mu);
    if (!ok ||
        !counter.cv.wait_for(lk, std::chrono::seconds(30), [&] { return counter.received > 0; })) {
      if (err->empty()) *err = "no message arrived within 30 s: " + bus_error();
      return false;
    }
    return true;
  }

  bool send(GBytes *msg, std::string *err) override
  {
    GstBuffer *buf = gst_buffer_new_wrapped_bytes(msg);
    GstFlowReturn ret = gst_pad_push(srcpad_, buf);
    if (ret != GST_FLOW_OK) {
      *err = std::string("rtcpeer refused the buffer (") + gst_flow_get_name(ret) +
          "): " + bus_error();
      return false;
    }
    return true;
  }

  void stop() override
  {
    if (pipe_) {
      gst_pad_set_active(srcpad_, FALSE);
      gst_element_set_state(pipe_, GST_STATE_NULL);
      gst_pad_unlink(srcpad_, sinkpad_);
      gst_element_release_request_pad(tx_, sinkpad_);
      gst_object_unref(sinkpad_);
      gst_object_unref(srcpad_);
      gst_object_unref(tx_);
      gst_object_unref(pipe_);
      pipe_ = nullptr;
    }
  }

private:
  std::string bus_error()
  {
    GstBus *bus = gst_element_get_bus(pipe_);
    std::string out = "no error on the bus";
    while (GstMessage *m =
               gst_bus_pop_filtered(bus, GstMessageType(GST_MESSAGE_ERROR | GST_MESSAGE_WARNING))) {
      GError *e = nullptr;
      gchar *dbg = nullptr;
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR)
        gst_message_parse_error(m, &e, &dbg);
      else
        gst_message_parse_warning(m, &e, &dbg);
      out = std::string(e->message) + " (" + (dbg ? dbg : "") + ")";
      g_clear_error(&e);
      g_free(dbg);
      gst_message_unref(m);
    }
    gst_object_unref(bus);
    return out;
  }

  GstElement *pipe_ = nullptr, *tx_ = nullptr;
  GstPad *srcpad_ = nullptr, *sinkpad_ = nullptr;
};

// ---------------------------------------------------------------- measuring
// Sends n messages of size bytes; seconds from the first send to the last arrival, or -1.
double run(Impl &impl, size_t size, guint64 n, std::string *err)
{
  std::vector<guint8> payload(size);
  for (size_t i = 0; i < size; i++) payload[i] = guint8(i * 7);
  GBytes *msg = g_bytes_new(payload.data(), size);
  {
    std::lock_guard lk(impl.counter.mu);
    impl.counter.received = 0;
    impl.counter.bytes = 0;
    impl.counter.target = n;
  }
  auto t0 = Clock::now();
  for (guint64 i = 0; i < n; i++) {
    if (!impl.send(msg, err)) {
      g_bytes_unref(msg);
      return -1;
    }
  }
  g_bytes_unref(msg);
  auto &c = impl.counter;
  std::unique_lock lk(c.mu);
  if (!c.cv.wait_for(lk, std::chrono::seconds(60), [&] { return c.received >= c.target; })) {
    *err = "timeout: " + std::to_string(c.received) + "/" + std::to_string(n) + " arrived";
    return -1;
  }
  if (c.received != n || c.bytes != n * size) {
    *err = "count mismatch: " + std::to_string(c.received) + " messages, " +
        std::to_string(c.bytes) + " bytes";
    return -1;
  }
  return std::chrono::duration<double>(c.last - t0).count();
}

double percentile(std::vector<double> v, double p)
{
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, size_t(p / 100.0 * v.size()));
  return v[i];
}

std::string json_escape(const std::string &s)
{
  gchar *e = g_strescape(s.c_str(), nullptr);
  std::string out(e);
  g_free(e);
  return out;
}

// One message every 250 ms carrying its send time; p50/p99 of the arrival delays.
void measure_latency(Impl &impl, const char *name, double latency_s, size_t latency_size)
{
  auto &c = impl.counter;
  {
    std::lock_guard lk(c.mu);
    c.received = 0;
    c.target = 0;
    c.latency_mode = true;
    c.latencies_ms.clear();
  }
  std::vector<guint8> payload(latency_size, 0x5a);
  guint64 count = std::max<guint64>(1, guint64(latency_s * 4));
  gint64 next = g_get_monotonic_time();
  std::string err;
  for (guint64 i = 0; i < count && err.empty(); i++) {
    next += 250000;
    gint64 now = g_get_monotonic_time();
    memcpy(payload.data(), &now, 8);
    GBytes *msg = g_bytes_new(payload.data(), payload.size());
    impl.send(msg, &err);
    g_bytes_unref(msg);
    gint64 wait = next - g_get_monotonic_time();
    if (wait > 0) g_usleep(wait);
  }
  std::unique_lock lk(c.mu);
  c.cv.wait_for(lk, std::chrono::seconds(5), [&] { return c.received >= count; });
  c.latency_mode = false;
  if (c.latencies_ms.empty()) {
    std::printf("{\"impl\":\"%s\",\"latency\":true,\"error\":\"%s\"}\n", name,
                json_escape(err.empty() ? "nothing arrived" : err).c_str());
  } else {
    size_t over = std::count_if(c.latencies_ms.begin(), c.latencies_ms.end(),
                                [](double v) { return v > 10.0; });
    std::printf(
        "{\"impl\":\"%s\",\"latency\":true,\"size\":%zu,\"samples\":%zu,\"sent\":%" G_GUINT64_FORMAT
        ",\"latency_p50_ms\":%.3f,\"latency_p99_ms\":%.3f,"
        "\"over_10ms\":%zu}\n",
        name, latency_size, c.latencies_ms.size(), count, percentile(c.latencies_ms, 50),
        percentile(c.latencies_ms, 99), over);
  }
  std::fflush(stdout);
}

} // namespace

int main(int argc, char **argv)
{
  gst_init(&argc, &argv);
  std::vector<std::string> names = {"bare"};
  std::vector<size_t> sizes = {1024, 65536, 1048576};
  double seconds = 1.5, latency_s = 0;
  size_t latency_size = 12128; // a (1000, 3) float32 array as numpy.save writes it
  int reps = 3;
  auto split = [](const std::string &v) {
    std::vector<std::string> out;
    std::stringstream ss(v);
    std::string tok;
    while (std::getline(ss, tok, ','))
      if (!tok.empty()) out.push_back(tok);
    return out;
  };
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--impl")
      names = split(v);
    else if (a == "--sizes") {
      sizes.clear();
      for (auto &t : split(v)) sizes.push_back(std::stoul(t));
    } else if (a == "--seconds")
      seconds = std::stod(v);
    else if (a == "--reps")
      reps = std::stoi(v);
    else if (a == "--latency")
      latency_s = std::stod(v);
    else if (a == "--latency-size")
      latency_size = std::max<size_t>(8, std::stoul(v));
  }

  // Every implementation is set up first; then, size by size, their runs alternate so that
  // the load of the shared machine hits them alike.
  struct Entry {
    std::string name;
    std::unique_ptr<Impl> impl;
    guint64 n = 0;
    double best = -1;
    std::string err;
  };
  std::vector<Entry> entries;
  for (auto &name : names) {
    Entry e;
    e.name = name;
    if (name == "bare")
      e.impl = std::make_unique<Bare>();
    else if (name == "rtcpeer")
      e.impl = std::make_unique<RtcPeer>();
    else {
      std::fprintf(stderr, "unknown --impl %s\n", name.c_str());
      return 2;
    }
    std::string err;
    if (!e.impl->start(&err)) {
      std::printf("{\"impl\":\"%s\",\"error\":\"%s\"}\n", name.c_str(), json_escape(err).c_str());
      std::fflush(stdout);
      e.impl->stop();
      continue;
    }
    run(*e.impl, 1024, 2000, &err); // warm-up: SCTP's congestion window opens
    entries.push_back(std::move(e));
  }

  for (size_t size : sizes) {
    for (auto &e : entries) {
      // Probe until a run takes a noticeable time, then size the runs to about `seconds`.
      e.err.clear();
      e.best = -1;
      e.n = size <= 4096 ? 2000 : std::max<guint64>(8, (8u << 20) / size);
      double t = run(*e.impl, size, e.n, &e.err);
      while (t > 0 && t < seconds / 4) {
        e.n *= 4;
        t = run(*e.impl, size, e.n, &e.err);
      }
      if (t > 0) e.n = std::max<guint64>(4, guint64(e.n * seconds / t));
    }
    for (int r = 0; r < reps; r++)
      for (auto &e : entries) {
        if (!e.err.empty()) continue;
        double s = run(*e.impl, size, e.n, &e.err);
        if (s > 0 && (e.best < 0 || s < e.best)) e.best = s;
      }
    for (auto &e : entries) {
      const char *name = e.name.c_str();
      if (!e.err.empty() || e.best <= 0)
        std::printf("{\"impl\":\"%s\",\"size\":%zu,\"error\":\"%s\"}\n", name, size,
                    json_escape(e.err).c_str());
      else
        std::printf("{\"impl\":\"%s\",\"size\":%zu,\"messages\":%" G_GUINT64_FORMAT
                    ",\"seconds\":%.4f,\"msg_per_s\":%.1f,\"mb_per_s\":%.3f}\n",
                    name, size, e.n, e.best, e.n / e.best, e.n * size / e.best / 1e6);
    }
    std::fflush(stdout);
  }

  if (latency_s > 0)
    for (auto &e : entries) measure_latency(*e.impl, e.name.c_str(), latency_s, latency_size);
  for (auto &e : entries) e.impl->stop();
  return entries.size() == names.size() ? 0 : 1;
}
