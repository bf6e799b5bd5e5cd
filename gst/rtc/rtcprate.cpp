// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/rtcprate.h"

#include "rtc/fec.h"

#include <atomic>
#include <memory>
#include <string>

namespace pointcast::rtc::rtcprate {

namespace {
constexpr int kSlowBandwidth = 5000, kFastBandwidth = 40000; // bit/s of RTCP
constexpr gint64 kStartUs = 5'000'000;                       // fast from the first packet on
constexpr gint64 kCleanUs = 10'000'000;                      // fast until clean this long
constexpr gint64 kCheckUs = 1'000'000;
constexpr guint64 kJitterNs = 10 * GST_MSECOND;

// One per rtpsession (all its jitterbuffers share it).
struct Rate {
  GWeakRef session;
  std::atomic<gint64> fast_until{0};
  std::atomic<bool> fast{false};
  Rate(GstElement *s) { g_weak_ref_init(&session, s); }
  ~Rate() { g_weak_ref_clear(&session); }
};

// Per jitterbuffer: what its stats said at the last check.
struct Watch {
  std::shared_ptr<Rate> rate; // with the rtpsession's
  gint64 next_check = 0;
  guint64 lost = 0, repaired = 0, rebuilt = 0;
};

void set_fast(Rate *r, bool fast)
{
  if (r->fast.exchange(fast) == fast) return;
  if (auto *s = static_cast<GstElement *>(g_weak_ref_get(&r->session))) {
    int bw = fast ? kFastBandwidth : kSlowBandwidth;
    GST_DEBUG_OBJECT(s, "RTCP at %d bit/s: %s", bw, fast ? "repairs may be needed" : "clean link");
    g_object_set(s, "rtcp-rr-bandwidth", bw, "rtcp-rs-bandwidth", bw, nullptr);
    gst_object_unref(s);
  }
}

void trouble(Rate *r, gint64 now)
{
  gint64 until = now + kCleanUs, cur = r->fast_until.load();
  while (cur < until && !r->fast_until.compare_exchange_weak(cur, until)) {}
  set_fast(r, true);
}

GstPadProbeReturn on_request(GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  guint retry = 0;
  if (GST_EVENT_TYPE(ev) == GST_EVENT_CUSTOM_UPSTREAM &&
      gst_event_has_name(ev, "GstRTPRetransmissionRequest") &&
      gst_structure_get_uint(gst_event_get_structure(ev), "retry", &retry) && retry > 0)
    trouble(static_cast<Watch *>(user_data)->rate.get(), g_get_monotonic_time());
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
    guint64 lost = w->lost, repaired = w->repaired, jitter = 0;
    if (stats) {
      gst_structure_get_uint64(stats, "num-lost", &lost);
      gst_structure_get_uint64(stats, "rtx-success-count", &repaired);
      gst_structure_get_uint64(stats, "avg-jitter", &jitter);
      gst_structure_free(stats);
    }
    guint64 rebuilt = fec_recovered(jb);
    gst_object_unref(jb);
    bool bad =
        lost > w->lost || repaired > w->repaired || rebuilt > w->rebuilt || jitter > kJitterNs;
    w->rebuilt = rebuilt;
    w->lost = lost;
    w->repaired = repaired;
    if (bad) trouble(w->rate.get(), now);
  }
  if (now >= w->rate->fast_until.load()) set_fast(w->rate.get(), false);
  return GST_PAD_PROBE_OK;
}
} // namespace

void configure_session(GstElement *rtpsession)
{
  g_object_set(rtpsession, "rtcp-rr-bandwidth", kSlowBandwidth, "rtcp-rs-bandwidth", kSlowBandwidth,
               nullptr);
  g_object_set_data_full(G_OBJECT(rtpsession), "pointcast-rtcp-rate",
                         new std::shared_ptr<Rate>(std::make_shared<Rate>(rtpsession)),
                         [](gpointer d) { delete static_cast<std::shared_ptr<Rate> *>(d); });
}

void watch_jitterbuffer(GstElement *rtpbin, GstElement *jb, guint session)
{
  // rtpbin names its sessions after their ids.
  std::string name = "rtpsession" + std::to_string(session);
  GstElement *s = gst_bin_get_by_name(GST_BIN(rtpbin), name.c_str());
  if (!s) return;
  auto *held =
      static_cast<std::shared_ptr<Rate> *>(g_object_get_data(G_OBJECT(s), "pointcast-rtcp-rate"));
  std::shared_ptr<Rate> rate = held ? *held : nullptr;
  gst_object_unref(s);
  GstPad *sink = gst_element_get_static_pad(jb, "sink");
  GstPad *src = gst_element_get_static_pad(jb, "src");
  if (rate && sink && src) {
    trouble(rate.get(), g_get_monotonic_time() - kCleanUs + kStartUs);
    // The two probes share W; the src pad's frees it, with the jitterbuffer.
    auto *w = new Watch{rate};
    gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, on_request, w, nullptr);
    gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_output, w,
                      [](gpointer d) { delete static_cast<Watch *>(d); });
  }
  if (sink) gst_object_unref(sink);
  if (src) gst_object_unref(src);
}

} // namespace pointcast::rtc::rtcprate
