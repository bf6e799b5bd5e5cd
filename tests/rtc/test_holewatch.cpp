// SPDX-License-Identifier: LGPL-2.1-or-later
/* A keyframe behind a hole ends the jitterbuffer's wait for it (gst/rtc/holewatch.h): on the
 * HoleWatch alone, and on a real rtpjitterbuffer on a stopped test clock, where without the
 * watch nothing behind the hole comes out before the hole's deadline. */
#include "rtc/holewatch.h"

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/rtp/rtp.h>

#include <cstring>
#include <random>
#include <vector>

using pointcast::holewatch::HoleWatch;
using pointcast::holewatch::watch_holes;

namespace {
constexpr int64_t kWindow = 200'000, kAsk = 130'000;

HoleWatch::Packet pkt(uint16_t seq, uint32_t ts, bool marker, bool key = false)
{
  HoleWatch::Packet p;
  p.seq = seq;
  p.ts = ts;
  p.marker = marker;
  p.key_start = key;
  return p;
}

// A VP8 packet as rtpvp8pay makes it: descriptor with a 15-bit PictureID, then the frame's
// first byte (P bit clear on a keyframe).
GstBuffer *vp8(uint16_t seq, uint32_t ts, bool start, bool key, bool marker, int pid,
               GstClockTime dts)
{
  guint8 pl[8] = {guint8(0x80 | (start ? 0x10 : 0)),
                  0x80,
                  guint8(0x80 | (pid >> 8)),
                  guint8(pid & 0xff),
                  guint8(key ? 0x00 : 0x01),
                  0,
                  0,
                  0};
  GstBuffer *b = gst_rtp_buffer_new_allocate(sizeof pl, 0, 0);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  gst_rtp_buffer_map(b, GST_MAP_WRITE, &rtp);
  gst_rtp_buffer_set_payload_type(&rtp, 96);
  gst_rtp_buffer_set_seq(&rtp, seq);
  gst_rtp_buffer_set_timestamp(&rtp, ts);
  gst_rtp_buffer_set_ssrc(&rtp, 0x1234);
  gst_rtp_buffer_set_marker(&rtp, marker);
  memcpy(gst_rtp_buffer_get_payload(&rtp), pl, sizeof pl);
  gst_rtp_buffer_unmap(&rtp);
  GST_BUFFER_DTS(b) = dts;
  return b;
}

guint seq_of(GstBuffer *b)
{
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  gst_rtp_buffer_map(b, GST_MAP_READ, &rtp);
  guint s = gst_rtp_buffer_get_seq(&rtp);
  gst_rtp_buffer_unmap(&rtp);
  return s;
}

struct Out {
  std::vector<guint> seqs;
  std::vector<bool> discont;
  std::vector<guint> lost;  // seqnums of GstRTPPacketLost events
  int keyframe_follows = 0; // of those, marked as the watch's (the gate asks nothing then)
};

// What comes out of H within WAIT_MS of wall time (the test clock does not move).
Out collect(GstHarness *h, int wait_ms)
{
  Out o;
  gint64 end = g_get_monotonic_time() + wait_ms * 1000;
  while (g_get_monotonic_time() < end) {
    while (GstEvent *ev = gst_harness_try_pull_event(h)) {
      const GstStructure *s = gst_event_get_structure(ev);
      guint seq;
      if (s && gst_structure_has_name(s, "GstRTPPacketLost") &&
          gst_structure_get_uint(s, "seqnum", &seq))
        o.lost.push_back(seq);
      o.keyframe_follows += pointcast::holewatch::keyframe_follows(ev);
      gst_event_unref(ev);
    }
    if (GstBuffer *b = gst_harness_try_pull(h)) {
      o.seqs.push_back(seq_of(b));
      o.discont.push_back(GST_BUFFER_IS_DISCONT(b));
      gst_buffer_unref(b);
      continue;
    }
    g_usleep(5000);
  }
  return o;
}

// Frame 1 (seq 100), frame 2 (101-102), frame 3 (103) lost, keyframe 4 (104-106).
Out run_jitterbuffer(bool watched)
{
  GstHarness *h = gst_harness_new("rtpjitterbuffer");
  // Without retransmission the watch gives a hole up once it is 30 ms old (holewatch.cpp).
  g_object_set(h->element, "latency", 200u, "do-lost", TRUE, nullptr);
  if (watched) watch_holes(h->element);
  gst_harness_set_src_caps_str(
      h, "application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,payload=96");
  const GstClockTime ms = GST_MSECOND;
  fail_unless_equals_int(gst_harness_push(h, vp8(100, 0, true, true, true, 1, 0)), GST_FLOW_OK);
  // The first packet waits for the jitterbuffer's deadline: the only time the clock moves.
  fail_unless(gst_harness_crank_single_clock_wait(h));
  GstBuffer *head = gst_harness_pull(h);
  fail_unless_equals_int(seq_of(head), 100);
  gst_buffer_unref(head);
  gst_harness_push(h, vp8(101, 3000, true, false, false, 2, 233 * ms));
  gst_harness_push(h, vp8(102, 3000, false, false, true, 2, 234 * ms));
  gst_harness_push(h, vp8(104, 9000, true, true, false, 4, 300 * ms));
  gst_harness_push(h, vp8(105, 9000, false, false, false, 4, 301 * ms));
  g_usleep(60'000); // wall time: the hole's age is the watch's
  gst_harness_push(h, vp8(106, 9000, false, false, true, 4, 302 * ms));
  Out o = collect(h, 400);
  gst_harness_teardown(h);
  return o;
}
} // namespace

GST_START_TEST(test_keyframe_ends_the_wait)
{
  Out o = run_jitterbuffer(true);
  std::vector<guint> want{101, 102, 104, 105, 106};
  fail_unless(o.seqs == want, "got %zu packets out, want 101 102 104 105 106", o.seqs.size());
  // The packet after the hole says so, as after the jitterbuffer's own lost event.
  fail_unless(!o.discont[1] && o.discont[2] && !o.discont[3]);
  fail_unless_equals_int(o.lost.size(), 1);
  fail_unless_equals_int(o.lost[0], 103);
  fail_unless_equals_int(o.keyframe_follows, 1);
}
GST_END_TEST;

GST_START_TEST(test_unwatched_waits_for_the_deadline)
{
  // The control: the same packets without the watch stop at the hole while the clock stands.
  Out o = run_jitterbuffer(false);
  std::vector<guint> want{101, 102};
  fail_unless(o.seqs == want, "got %zu packets out, want 101 102", o.seqs.size());
}
GST_END_TEST;

GST_START_TEST(test_fill_when_keyframe_whole)
{
  HoleWatch w;
  int64_t t = 1'000'000;
  fail_unless(w.packet(pkt(10, 0, true), t, kWindow, kAsk).fill.empty());
  w.packet(pkt(12, 3000, true), t + 33'000, kWindow, kAsk); // 11 lost
  fail_unless_equals_int(w.holes(), 1);
  // A keyframe with a hole of its own (14) gives up nothing yet.
  fail_unless(w.packet(pkt(13, 6000, false, true), t + 66'000, kWindow, kAsk).fill.empty());
  fail_unless(w.packet(pkt(15, 6000, true), t + 67'000, kWindow, kAsk).fill.empty());
  fail_unless_equals_int(w.holes(), 2);
  // Its retransmission: the keyframe is whole, but 11's retransmission is not overdue yet.
  auto a = w.packet(pkt(14, 6000, false), t + 80'000, kWindow, kAsk);
  fail_unless(a.fill.empty());
  a = w.packet(pkt(16, 9000, true), t + 170'000, kWindow, kAsk); // 11 is 137 ms old
  fail_unless_equals_int(a.fill.size(), 1);
  fail_unless_equals_int(a.fill[0].seq, 11);
  fail_unless_equals_int(a.fill[0].ts, 0); // of the packet before it
  fail_unless_equals_int(w.holes(), 0);
  fail_unless_equals_int(w.filled(), 1);
  // A hole just before a keyframe of the same burst is left to its retransmission.
  HoleWatch y;
  y.packet(pkt(10, 0, true), t, kWindow, kAsk);
  fail_unless(y.packet(pkt(12, 3000, true, true), t + 1000, kWindow, kAsk).fill.empty());
  fail_unless(y.packet(pkt(11, 0, true), t + 2000, kWindow, kAsk).fill.empty());
  fail_unless_equals_int(y.filled(), 0);
}
GST_END_TEST;

GST_START_TEST(test_repaired_hole_is_left_alone)
{
  HoleWatch w;
  int64_t t = 0;
  w.packet(pkt(65534, 0, true), t, kWindow, kAsk);
  w.packet(pkt(0, 3000, true), t + 30'000, kWindow, kAsk); // 65535 lost, across the wrap
  fail_unless_equals_int(w.holes(), 1);
  auto a = w.packet(pkt(65535, 0, true), t + 60'000, kWindow, kAsk); // retransmitted in time
  fail_unless(a.fill.empty() && !a.ask_keyframe);
  fail_unless_equals_int(w.holes(), 0);
  a = w.packet(pkt(1, 6000, true, true), t + 66'000, kWindow, kAsk);
  fail_unless(a.fill.empty() && !a.ask_keyframe && w.filled() == 0);
}
GST_END_TEST;

GST_START_TEST(test_ask_once_when_retransmission_overdue)
{
  HoleWatch w;
  int64_t t = 0;
  w.packet(pkt(1, 0, true), t, kWindow, kAsk);
  w.packet(pkt(3, 3000, true), t + 33'000, kWindow, kAsk); // 2 lost at +33 ms
  fail_unless(!w.packet(pkt(4, 6000, true), t + 66'000, kWindow, kAsk).ask_keyframe);
  fail_unless(!w.packet(pkt(5, 9000, true), t + 160'000, kWindow, kAsk).ask_keyframe);
  fail_unless(w.packet(pkt(6, 12000, true), t + 170'000, kWindow, kAsk).ask_keyframe); // 137 ms
  fail_unless(!w.packet(pkt(7, 15000, true), t + 180'000, kWindow, kAsk).ask_keyframe);
  fail_unless_equals_int(w.asked(), 1);
  // Past the window the jitterbuffer has given the hole up itself.
  w.packet(pkt(8, 18000, true), t + 240'000, kWindow, kAsk);
  fail_unless_equals_int(w.holes(), 0);
  // No asking when the ask would come after the jitterbuffer's deadline anyway.
  HoleWatch late;
  late.packet(pkt(1, 0, true), t, kWindow, kWindow);
  late.packet(pkt(3, 3000, true), t + 1000, kWindow, kWindow);
  fail_unless(!late.packet(pkt(4, 6000, true), t + 199'000, kWindow, kWindow).ask_keyframe);
}
GST_END_TEST;

GST_START_TEST(test_no_ask_when_keyframe_on_its_way)
{
  HoleWatch w;
  w.packet(pkt(1, 0, true), 0, kWindow, kAsk);
  w.packet(pkt(3, 3000, true), 10'000, kWindow, kAsk);        // 2 lost
  w.packet(pkt(4, 6000, false, true), 20'000, kWindow, kAsk); // a keyframe begins
  fail_unless(!w.packet(pkt(5, 6000, false), 150'000, kWindow, kAsk).ask_keyframe);
  auto a = w.packet(pkt(6, 6000, true), 151'000, kWindow, kAsk);
  fail_unless(a.fill.size() == 1 && a.fill[0].seq == 2);
}
GST_END_TEST;

GST_START_TEST(test_hostile_seqnums_bounded)
{
  // Any seqnums from the peer: the holes stay within kMaxHoles, nothing crashes.
  std::mt19937 rng(7);
  HoleWatch w;
  int64_t t = 0;
  size_t most = 0;
  for (int i = 0; i < 200'000; i++) {
    uint16_t seq = uint16_t(rng());
    if (i % 3) seq = uint16_t(i / 3 + (rng() % 700));
    auto a = w.packet(pkt(seq, rng(), rng() & 1, (rng() & 7) == 0), t, kWindow, kAsk);
    t += rng() % 2000;
    most = std::max(most, w.holes());
    fail_unless(a.fill.size() <= HoleWatch::kMaxHoles);
  }
  fail_unless(most <= HoleWatch::kMaxHoles, "%zu holes", most);
  // A jump of 30,000 seqnums (a restarted sender) tracks no holes.
  HoleWatch j;
  j.packet(pkt(100, 0, true), 0, kWindow, kAsk);
  j.packet(pkt(30100, 0, true), 1000, kWindow, kAsk);
  fail_unless_equals_int(j.holes(), 0);
}
GST_END_TEST;

static Suite *holewatch_suite()
{
  Suite *s = suite_create("holewatch");
  TCase *tc = tcase_create("watch");
  tcase_add_test(tc, test_fill_when_keyframe_whole);
  tcase_add_test(tc, test_repaired_hole_is_left_alone);
  tcase_add_test(tc, test_ask_once_when_retransmission_overdue);
  tcase_add_test(tc, test_no_ask_when_keyframe_on_its_way);
  tcase_add_test(tc, test_hostile_seqnums_bounded);
  tcase_add_test(tc, test_keyframe_ends_the_wait);
  tcase_add_test(tc, test_unwatched_waits_for_the_deadline);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(holewatch);
