// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/rtcprate.h"

#include "rtc/fec.h"
#include "rtc/probeutil.h"

#include <algorithm>
#include <memory>
#include <mutex>

namespace pointcast::rtc::rtcprate {

namespace {
constexpr int kSendOnly = 800, kSlow = 5000, kFast = 40000; // bit/s of RTCP
constexpr gint64 kStartUs = 5'000'000;                      // fast from the first packet on
constexpr gint64 kCleanUs = 10'000'000;                     // fast until clean this long
constexpr gint64 kCheckUs = 1'000'000;
constexpr GstClockTime kSendOnlyAfter = 2 * GST_SECOND; // connected this long without media in
constexpr gint64 kWindowNs = 100 * GST_MSECOND;         // DelayTrend's windows of arrival
constexpr gint64 kRiseNs = 10 * GST_MSECOND;            // a floor this far above the one before
constexpr gint64 kGapNs = 2 * GST_SECOND;               // no packet this long: start over
constexpr gint64 kJumpS = 10;                           // a timestamp this far off: a new stream
constexpr const char *kRateKey = "pointcast-rtcp-rate";

// One per rtpsession (all its jitterbuffers share it).
struct Rate {
  GWeakRef session;
  std::mutex lock; // the fields below; held while the rtpsession's bandwidth is set
  bool receives = false;
  gint64 fast_until = 0;
  int bandwidth = kSlow; // what the rtpsession was given
  Rate(GstElement *s) { g_weak_ref_init(&session, s); }
  ~Rate() { g_weak_ref_clear(&session); }
};

// Per jitterbuffer.
struct Watch {
  std::shared_ptr<Rate> rate; // with the rtpsession's
  gint64 next_check = 0;
  Trouble trouble;
};

// The sink pad's: a queue building in front of the jitterbuffer.
struct QueueWatch {
  std::shared_ptr<Rate> rate;
  DelayTrend trend;
  bool media = false; // an RTP packet came: the jitterbuffer's start
  struct PtRate {
    int clock_rate = 0; // 0: not asked yet, -1: none known (asked again at retry)
    gint64 retry = 0;
  } pts[128];
};

// Under r->lock. rtpsession schedules its next report from the new value.
void set_bandwidth(Rate *r, int bw, const char *why)
{
  if (r->bandwidth == bw) return;
  r->bandwidth = bw;
  if (auto *s = static_cast<GstElement *>(g_weak_ref_get(&r->session))) {
    GST_DEBUG_OBJECT(s, "RTCP at %d bit/s: %s", bw, why);
    g_object_set(s, "rtcp-rr-bandwidth", bw, "rtcp-rs-bandwidth", bw, nullptr);
    gst_object_unref(s);
  }
}

std::shared_ptr<Rate> rate_of(GstElement *rtpsession)
{
  auto *held =
      static_cast<std::shared_ptr<Rate> *>(g_object_get_data(G_OBJECT(rtpsession), kRateKey));
  return held ? *held : nullptr;
}

void trouble(Rate *r, gint64 now, const char *why)
{
  std::lock_guard lk(r->lock);
  r->fast_until = std::max(r->fast_until, now + kCleanUs);
  set_bandwidth(r, kFast, why);
}

GstPadProbeReturn on_request(GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  guint retry = 0;
  if (GST_EVENT_TYPE(ev) == GST_EVENT_CUSTOM_UPSTREAM &&
      gst_event_has_name(ev, "GstRTPRetransmissionRequest") &&
      gst_structure_get_uint(gst_event_get_structure(ev), "retry", &retry) && retry > 0)
    trouble(static_cast<Watch *>(user_data)->rate.get(), g_get_monotonic_time(),
            "a retransmission retried");
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn on_output(GstPad *pad, GstPadProbeInfo *, gpointer user_data)
{
  auto *w = static_cast<Watch *>(user_data);
  gint64 now = g_get_monotonic_time();
  if (now < w->next_check) return GST_PAD_PROBE_OK;
  w->next_check = now + kCheckUs;
  if (GstElement *jb = gst_pad_get_parent_element(pad)) {
    GstStructure *stats = nullptr;
    g_object_get(jb, "stats", &stats, nullptr);
    LinkStats ls;
    const char *why = nullptr;
    if (stats) {
      gst_structure_get_uint64(stats, "num-lost", &ls.lost);
      gst_structure_get_uint64(stats, "rtx-success-count", &ls.repaired);
      gst_structure_free(stats);
      ls.rebuilt = fec_recovered(jb);
      GST_LOG_OBJECT(pad,
                     "lost %" G_GUINT64_FORMAT " repaired %" G_GUINT64_FORMAT
                     " rebuilt %" G_GUINT64_FORMAT,
                     ls.lost, ls.repaired, ls.rebuilt);
      why = w->trouble.check(ls);
    }
    gst_object_unref(jb);
    if (why) trouble(w->rate.get(), now, why);
  }
  Rate *r = w->rate.get();
  std::lock_guard lk(r->lock);
  if (now >= r->fast_until) set_bandwidth(r, kSlow, "clean link");
  return GST_PAD_PROBE_OK;
}

// The clock rate of PT as webrtcbin negotiated it (rtpbin forwards the jitterbuffer's
// request-pt-map to it, as mediarecv's NACK check does), asked once per payload type.
int clock_rate_of(QueueWatch *w, GstPad *pad, guint pt, gint64 now)
{
  auto &p = w->pts[pt];
  if (p.clock_rate > 0 || now < p.retry) return p.clock_rate;
  p.clock_rate = -1;
  p.retry = now + GST_SECOND;
  GstElement *jb = gst_pad_get_parent_element(pad);
  if (!jb) return -1;
  GstCaps *caps = nullptr;
  g_signal_emit_by_name(jb, "request-pt-map", pt, &caps);
  gst_object_unref(jb);
  if (!caps) return -1;
  int rate = 0;
  if (!gst_caps_is_empty(caps) &&
      gst_structure_get_int(gst_caps_get_structure(caps, 0), "clock-rate", &rate) && rate > 0)
    p.clock_rate = rate;
  gst_caps_unref(caps);
  return p.clock_rate;
}

void on_packet(QueueWatch *w, GstPad *pad, GstBuffer *buf, gint64 now)
{
  guint8 h[8];
  if (gst_buffer_extract(buf, 0, h, sizeof h) != sizeof h || (h[0] >> 6) != 2) return;
  if (!w->media) {
    w->media = true;
    trouble(w->rate.get(), now / 1000 - kCleanUs + kStartUs, "a jitterbuffer's first packet");
  }
  int rate = clock_rate_of(w, pad, h[1] & 0x7f, now);
  if (rate > 0 && w->trend.packet(now, GST_READ_UINT32_BE(h + 4), rate))
    trouble(w->rate.get(), now / 1000, "a queue building on the path");
}

GstPadProbeReturn on_arrival(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  auto *w = static_cast<QueueWatch *>(user_data);
  gint64 now = g_get_monotonic_time() * 1000;
  for_each_buffer(info, [&](GstBuffer *buf) { on_packet(w, pad, buf, now); });
  return GST_PAD_PROBE_OK;
}

gboolean check_send_only(GstClock *, GstClockTime, GstClockID, gpointer user_data)
{
  if (auto r = static_cast<std::weak_ptr<Rate> *>(user_data)->lock()) {
    std::lock_guard lk(r->lock);
    if (!r->receives) set_bandwidth(r.get(), kSendOnly, "the session only sends");
  }
  return TRUE;
}
} // namespace

const char *Trouble::check(const LinkStats &now)
{
  // A counter that went back (a jitterbuffer reset) is no news either way.
  const char *why = now.lost > last_.lost ? "packets lost"
      : now.repaired > last_.repaired     ? "packets retransmitted"
      : now.rebuilt > last_.rebuilt       ? "packets rebuilt from FEC"
                                          : nullptr;
  last_ = now;
  return why;
}

void DelayTrend::restart(gint64 arrival, guint32 ts, guint clock_rate)
{
  started_ = true;
  clock_rate_ = clock_rate;
  last_ts_ = ts;
  ticks_ = 0;
  last_arrival_ = arrival;
  window_end_ = arrival + kWindowNs;
  least_ = arrival;
  closed_ = 0;
}

bool DelayTrend::packet(gint64 arrival, guint32 ts, guint clock_rate)
{
  if (!started_ || clock_rate != clock_rate_ || arrival - last_arrival_ > kGapNs) {
    restart(arrival, ts, clock_rate);
    return false;
  }
  gint64 step = gint32(ts - last_ts_);
  if (step > kJumpS * gint64(clock_rate) || -step > kJumpS * gint64(clock_rate)) {
    restart(arrival, ts, clock_rate);
    return false;
  }
  // A frame's later packets, and reordered or repaired ones: later than the first of theirs.
  if (step <= 0) return false;
  ticks_ += step;
  last_ts_ = ts;
  last_arrival_ = arrival;
  gint64 delay = arrival - gint64(gst_util_uint64_scale_int(ticks_, GST_SECOND, clock_rate));
  if (arrival < window_end_) {
    least_ = std::min(least_, delay);
    return false;
  }
  floors_[closed_++ % kWindows] = least_;
  window_end_ = arrival + kWindowNs; // windows start with a packet: none is empty
  least_ = delay;
  if (closed_ < kWindows) return false;
  gint64 before = G_MAXINT64, recent = G_MAXINT64;
  for (int i = 0; i < kWindows; i++) {
    gint64 f = floors_[(closed_ + i) % kWindows]; // oldest first
    if (i < kWindows / 2)
      before = std::min(before, f);
    else
      recent = std::min(recent, f);
  }
  return recent - before > kRiseNs;
}

void configure_session(GstElement *rtpsession)
{
  g_object_set(rtpsession, "rtcp-min-interval", guint64(20 * GST_MSECOND), "rtcp-rr-bandwidth",
               kSlow, "rtcp-rs-bandwidth", kSlow, nullptr);
  g_object_set_data_full(G_OBJECT(rtpsession), kRateKey,
                         new std::shared_ptr<Rate>(std::make_shared<Rate>(rtpsession)),
                         [](gpointer d) { delete static_cast<std::shared_ptr<Rate> *>(d); });
  GObject *internal = nullptr;
  g_object_get(rtpsession, "internal-session", &internal, nullptr);
  if (internal) {
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(internal), "twcc-feedback-interval"))
      g_object_set(internal, "twcc-feedback-interval", guint64(50 * GST_MSECOND), nullptr);
    g_object_unref(internal);
  }
}

void watch_jitterbuffer(GstElement *rtpbin, GstElement *jb, guint session)
{
  // Not by name: rtpbin's sessions are named by a process-wide count (rtpsession3 can be
  // session 0), and a name lookup found only the first webrtcbin's.
  GstElement *s = nullptr;
  g_signal_emit_by_name(rtpbin, "get-session", session, &s);
  if (!s) return;
  std::shared_ptr<Rate> rate = rate_of(s);
  gst_object_unref(s);
  GstPad *sink = gst_element_get_static_pad(jb, "sink");
  GstPad *src = gst_element_get_static_pad(jb, "src");
  if (rate && sink && src) {
    {
      std::lock_guard lk(rate->lock);
      rate->receives = true;
    }
    // Fast from its first RTP packet, not from here: rtpbin also makes a jitterbuffer for an
    // SSRC seen only in RTCP (the sender's RTX stream's reports once it has retransmitted),
    // which put every viewer of the fan-out bench at the fast rate for 5 s.
    // The two probes share W; the src pad's frees it, with the jitterbuffer.
    auto *w = new Watch{rate};
    gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, on_request, w, nullptr);
    gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_output, w,
                      [](gpointer d) { delete static_cast<Watch *>(d); });
    gst_pad_add_probe(
        sink, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
        on_arrival, new QueueWatch{rate}, [](gpointer d) { delete static_cast<QueueWatch *>(d); });
  }
  if (sink) gst_object_unref(sink);
  if (src) gst_object_unref(src);
}

void connected(GstElement *webrtc)
{
  GstElement *rtpbin = gst_bin_get_by_name(GST_BIN(webrtc), "rtpbin");
  if (!rtpbin) return;
  GstClock *clock = gst_system_clock_obtain();
  GstIterator *it = gst_bin_iterate_elements(GST_BIN(rtpbin));
  GValue v = G_VALUE_INIT;
  while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
    if (auto rate = rate_of(GST_ELEMENT(g_value_get_object(&v)))) {
      // On the clock's thread; the session may be gone by then.
      GstClockID id =
          gst_clock_new_single_shot_id(clock, gst_clock_get_time(clock) + kSendOnlyAfter);
      gst_clock_id_wait_async(id, check_send_only, new std::weak_ptr<Rate>(rate),
                              [](gpointer d) { delete static_cast<std::weak_ptr<Rate> *>(d); });
      gst_clock_id_unref(id);
    }
    g_value_reset(&v);
  }
  g_value_unset(&v);
  gst_iterator_free(it);
  gst_object_unref(clock);
  gst_object_unref(rtpbin);
}

} // namespace pointcast::rtc::rtcprate
