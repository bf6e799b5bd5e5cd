// SPDX-License-Identifier: LGPL-2.1-or-later
/* The RTCP bandwidth rtcprate gives each rtpsession (gst/rtc/rtcprate.h), with several webrtcbins
 * in one process as a sender with many viewers (or a process of many viewers) has them: a session
 * that receives reports fast from its jitterbuffer's start, one that only sends drops to the
 * send-only rate once connected 2 s. */
#include "rtc/rtcprate.h"

#include "rtc/fec.h"

#include <gst/check/gstcheck.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

// rtcprate reads how many packets FEC rebuilt in front of a jitterbuffer; these have no FEC
// receiver in front of them (fec.cpp would bring in the whole element).
guint64 pointcast::rtc::fec_recovered(GstElement *)
{
  return 0;
}

using namespace pointcast::rtc;

namespace {
// A webrtcbin's shape as rtcprate sees it: a bin holding an rtpbin named "rtpbin" with session 0.
struct FakeWebrtc {
  GstElement *bin = nullptr, *rtpbin = nullptr, *session = nullptr, *jb = nullptr;
  FakeWebrtc(const FakeWebrtc &) = delete;
  FakeWebrtc()
  {
    bin = gst_bin_new(nullptr);
    rtpbin = gst_element_factory_make("rtpbin", "rtpbin");
    gst_bin_add(GST_BIN(bin), rtpbin);
    GstPad *pad = gst_element_request_pad_simple(rtpbin, "send_rtp_sink_0");
    fail_unless(pad != nullptr);
    gst_object_unref(pad);
    g_signal_emit_by_name(rtpbin, "get-session", 0u, &session);
    fail_unless(session != nullptr);
    rtcprate::configure_session(session); // as webrtcbin's deep-element-added does
  }
  ~FakeWebrtc()
  {
    if (jb) gst_object_unref(jb);
    gst_object_unref(session);
    gst_object_unref(bin);
  }
  void receive()
  {
    jb = gst_element_factory_make("rtpjitterbuffer", nullptr);
    gst_object_ref_sink(jb);
    rtcprate::watch_jitterbuffer(rtpbin, jb, 0);
  }
  // One RTP packet into the jitterbuffer (which drops it: no caps), through rtcprate's probe.
  void media()
  {
    GstPad *sink = gst_element_get_static_pad(jb, "sink");
    gst_pad_set_active(sink, TRUE);
    gst_pad_send_event(sink, gst_event_new_stream_start("rtcprate"));
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_TIME);
    gst_pad_send_event(sink, gst_event_new_segment(&seg));
    const guint8 header[12] = {0x80, 96, 0, 1}; // version 2, PT 96, seqnum 1
    gst_pad_chain(sink, gst_buffer_new_memdup(header, sizeof header));
    gst_pad_set_active(sink, FALSE);
    gst_object_unref(sink);
  }
  int bandwidth() const
  {
    int rr = 0, rs = 0;
    g_object_get(session, "rtcp-rr-bandwidth", &rr, "rtcp-rs-bandwidth", &rs, nullptr);
    fail_unless_equals_int(rr, rs);
    return rr;
  }
};
} // namespace

// Every session of the process follows its own link, not only the first one made (whose
// rtpsession happens to be named after its id).
GST_START_TEST(test_receiving_sessions_in_one_process)
{
  std::vector<FakeWebrtc> peers(4);
  for (auto &p : peers) fail_unless_equals_int(p.bandwidth(), 5000);
  for (auto &p : peers) p.receive();
  // A jitterbuffer without RTP (one rtpbin makes for an SSRC seen only in RTCP) is no start.
  for (auto &p : peers) fail_unless_equals_int(p.bandwidth(), 5000);
  for (auto &p : peers) p.media();
  for (size_t i = 0; i < peers.size(); i++)
    fail_unless(peers[i].bandwidth() == 40000, "session %zu: %d bit/s at its start", i,
                peers[i].bandwidth());
}
GST_END_TEST;

GST_START_TEST(test_send_only_after_connected)
{
  FakeWebrtc sends, receives;
  receives.receive();
  receives.media();
  rtcprate::connected(sends.bin);
  rtcprate::connected(receives.bin);
  g_usleep(500 * 1000);
  fail_unless_equals_int(sends.bandwidth(), 5000); // not yet: media may still come in
  g_usleep(2000 * 1000);
  fail_unless_equals_int(sends.bandwidth(), 800);
  fail_unless_equals_int(receives.bandwidth(), 40000); // its first 5 s
}
GST_END_TEST;

// Video at 30 fps, one packet a frame (90 kHz), sent at T (ns) and arriving DELAY later.
struct Packet {
  gint64 arrival;
  guint32 ts;
};

static std::vector<Packet> stream(double seconds, const std::function<gint64(gint64)> &delay)
{
  std::vector<Packet> out;
  for (int i = 0; i < seconds * 30; i++) {
    gint64 sent = i * GST_SECOND / 30;
    // A timestamp near the wrap, so that the test goes over it.
    out.push_back({sent + delay(sent), guint32(0xffff0000u + guint32(i * 3000))});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Packet &x, const Packet &y) { return x.arrival < y.arrival; });
  return out;
}

/* A loaded host's scheduling: each packet handled 0-20 ms late, and every 0.2-0.8 s the
 * receiving thread not run for 20-100 ms (what arrives meanwhile goes on at its end). */
struct BusyHost {
  GRand *rand;
  std::vector<std::pair<gint64, gint64>> stalls;
  BusyHost(const BusyHost &) = delete;
  BusyHost(double seconds, guint32 seed) : rand(g_rand_new_with_seed(seed))
  {
    for (gint64 t = 0; t < gint64(seconds * GST_SECOND);) {
      t += g_rand_int_range(rand, 200, 800) * GST_MSECOND;
      stalls.push_back({t, t + g_rand_int_range(rand, 20, 100) * GST_MSECOND});
    }
  }
  ~BusyHost() { g_rand_free(rand); }
  gint64 handled(gint64 at) // a packet that reached the host at AT
  {
    at += g_rand_int_range(rand, 0, 20000) * GST_USECOND;
    for (auto [from, to] : stalls)
      if (at >= from && at < to) at = to + g_rand_int_range(rand, 0, 2000) * GST_USECOND;
    return at;
  }
};

static std::vector<Packet> busy_host(double seconds, guint32 seed)
{
  BusyHost host(seconds, seed);
  return stream(seconds, [&](gint64 sent) { return host.handled(sent) - sent; });
}

// The jitterbuffer's avg-jitter (RFC 3550's estimate, rtpjitterbuffer's calculate_jitter) at
// each check a second apart: what the old rule read (over 10 ms at two checks in a row).
static int old_rule_firings(const std::vector<Packet> &packets)
{
  double jitter = 0;
  bool jittery = false;
  int fired = 0;
  gint64 next = GST_SECOND;
  for (size_t i = 1; i < packets.size(); i++) {
    double d = double(packets[i].arrival - packets[i - 1].arrival) -
        double(gint32(packets[i].ts - packets[i - 1].ts)) * GST_SECOND / 90000;
    jitter += (std::abs(d) - jitter) / 16;
    if (packets[i].arrival < next) continue;
    next += GST_SECOND;
    bool over = jitter > 10 * GST_MSECOND;
    fired += jitter > 30 * GST_MSECOND || (over && jittery);
    jittery = over;
  }
  return fired;
}

// What DelayTrend says: the arrival of its first "a queue" (-1: none) and how often.
static gint64 first_queue(const std::vector<Packet> &packets, int *count = nullptr)
{
  rtcprate::DelayTrend trend;
  gint64 first = -1;
  int n = 0;
  for (auto &p : packets)
    if (trend.packet(p.arrival, p.ts, 90000)) {
      if (first < 0) first = p.arrival;
      n++;
    }
  if (count) *count = n;
  return first;
}

/* A loaded host's scheduling is no queue: RTCP stays slow. The old rule (the jitterbuffer's
 * jitter) read these as trouble: the fan-out bench's viewers at the fast rate for most of it. */
GST_START_TEST(test_busy_host_is_no_queue)
{
  for (guint32 seed = 1; seed <= 5; seed++) {
    auto packets = busy_host(60, seed);
    int old = old_rule_firings(packets);
    fail_unless(old >= 5, "seed %u: the old rule fired at %d checks of 60", seed, old);
    int n = 0;
    gint64 at = first_queue(packets, &n);
    fail_unless(at < 0, "seed %u: a queue at %.2f s (%d times)", seed, double(at) / GST_SECOND, n);
  }
}
GST_END_TEST;

/* A queue building (the sender above the link's rate: 2 Mbit/s into 1 Mbit/s adds 1 s of delay a
 * second, a 10 % excess 0.1 s) on the same busy host: found within half a second or so. */
GST_START_TEST(test_queue_building)
{
  for (double growth : {0.1, 1.0}) {
    for (guint32 seed = 1; seed <= 3; seed++) {
      BusyHost host(20, seed);
      // From 10 s on each packet waits GROWTH s longer for every second since.
      auto packets = stream(20, [&](gint64 sent) {
        gint64 queued = gint64(std::max<gint64>(0, sent - 10 * GST_SECOND) * growth);
        return host.handled(sent + queued) - sent;
      });
      gint64 at = first_queue(packets);
      fail_unless(at >= 10 * GST_SECOND, "growth %.1f seed %u: a queue before it (%.2f s)", growth,
                  seed, double(at) / GST_SECOND);
      fail_unless(at <= 11 * GST_SECOND, "growth %.1f seed %u: found at %.2f s", growth, seed,
                  double(at) / GST_SECOND);
    }
  }
}
GST_END_TEST;

// A new stream (timestamps jump) and a pause: no queue, found again after.
GST_START_TEST(test_delay_trend_restarts)
{
  rtcprate::DelayTrend trend;
  gint64 t = 0;
  guint32 ts = 1000;
  for (int i = 0; i < 60; i++, t += GST_SECOND / 30, ts += 3000)
    fail_if(trend.packet(t, ts, 90000));
  ts += 90000 * 100; // 100 s on: a new stream
  for (int i = 0; i < 60; i++, t += GST_SECOND / 30, ts += 3000)
    fail_if(trend.packet(t, ts, 90000));
  t += 5 * GST_SECOND; // a 5 s pause, the timestamps going on as if it had not been
  for (int i = 0; i < 60; i++, t += GST_SECOND / 30, ts += 3000)
    fail_if(trend.packet(t, ts, 90000));
  bool found = false; // then 20 ms more delay with every frame
  for (int i = 0; i < 30 && !found; i++, t += GST_SECOND / 30 + 20 * GST_MSECOND, ts += 3000)
    found = trend.packet(t, ts, 90000);
  fail_unless(found);
}
GST_END_TEST;

// A loss, a repair: fast at the first check.
GST_START_TEST(test_trouble_at_once)
{
  rtcprate::Trouble t;
  rtcprate::LinkStats s;
  fail_unless(t.check(s) == nullptr);
  s.lost = 1;
  fail_unless(t.check(s) != nullptr, "a lost packet");
  fail_unless(t.check(s) == nullptr, "no news: the same count");
  s.repaired = 1;
  fail_unless(t.check(s) != nullptr, "a retransmitted packet");
  s.rebuilt = 3;
  fail_unless(t.check(s) != nullptr, "packets rebuilt from FEC");
  fail_unless(t.check(s) == nullptr);
}
GST_END_TEST;

static Suite *rtcprate_suite()
{
  Suite *s = suite_create("rtcprate");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 20);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_receiving_sessions_in_one_process);
  tcase_add_test(tc, test_send_only_after_connected);
  tcase_add_test(tc, test_busy_host_is_no_queue);
  tcase_add_test(tc, test_queue_building);
  tcase_add_test(tc, test_delay_trend_restarts);
  tcase_add_test(tc, test_trouble_at_once);
  return s;
}

GST_CHECK_MAIN(rtcprate)
