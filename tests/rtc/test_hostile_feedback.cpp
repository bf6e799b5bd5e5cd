// SPDX-License-Identifier: LGPL-2.1-or-later
/* TWCC feedback comes from the remote peer, a stranger: its arrival times, its loss flags and how
 * much of it there is are the remote's to choose. Fed nonsense, cc::Controller (and
 * EncoderControl's path from webrtcbin's "RTPTWCCPackets" event to the encoder) must keep the
 * target within video-bitrate-min/max, not crash, keep its memory bounded, and converge again on
 * honest feedback afterwards. */
#include "rtc/congestion.h"
#include "rtc/mediacc.h"

#include <gst/check/gstcheck.h>

#include <cmath>
#include <limits>
#include <random>

using namespace pointcast;

namespace {

constexpr uint32_t kMin = 150'000, kMax = 3'000'000;

cc::Config config()
{
  cc::Config c;
  c.min_bps = kMin;
  c.max_bps = kMax;
  c.start_bps = 1'000'000;
  return c;
}

bool in_bounds(const cc::Controller &c)
{
  return c.target_bps() >= kMin && c.target_bps() <= kMax && c.acked_bps() <= UINT32_MAX &&
      std::isfinite(c.loss_fraction()) && std::isfinite(c.queuing_delay_ms()) &&
      std::isfinite(c.standing_queue_ms());
}

/* An honest 20 Mbit/s link with 10 ms of delay, a sender of 30 fps at the target, feedback every
 * 50 ms: SECONDS of it from NOW (us), on our clock and the remote's (REMOTE_OFFSET us apart). */
void honest(cc::Controller &c, int64_t &now, double seconds, int64_t remote_offset = 0)
{
  int64_t end = now + int64_t(seconds * 1e6);
  std::vector<cc::PacketResult> batch;
  for (; now < end; now += 33'333) {
    uint32_t bytes = c.target_bps() / 8 / 30;
    int64_t t = now;
    for (; bytes > 0; t += 500) {
      uint32_t size = std::min<uint32_t>(bytes, 1200);
      bytes -= size;
      batch.push_back({t, t + 10'000 + remote_offset, size, false});
    }
    if (batch.size() >= 8) {
      c.on_feedback(now + 10'000, batch);
      batch.clear();
    }
  }
}

} // namespace

// Arrival times going backwards, jumping by hours either way, at the ends of the integer range.
GST_START_TEST(test_absurd_arrival_times)
{
  cc::Controller c(config());
  int64_t now = 1'000'000;
  honest(c, now, 2);
  std::mt19937_64 rng(1);
  const int64_t hour = 3'600'000'000;
  const int64_t extremes[] = {0,         -1,         INT64_MAX, INT64_MIN, INT64_MAX / 2,
                              -hour * 5, hour * 100, 1,         -now};
  for (int round = 0; round < 200; round++) {
    std::vector<cc::PacketResult> fb;
    for (int i = 0; i < 50; i++) {
      cc::PacketResult p;
      p.send_us = now - 100'000 + i * 1000;
      p.recv_us = round % 3 == 0 ? extremes[rng() % G_N_ELEMENTS(extremes)]
                                 : p.send_us + int64_t(rng() % uint64_t(2 * hour)) - hour;
      p.size = 1200;
      fb.push_back(p);
    }
    now += 50'000;
    c.on_feedback(now, fb);
    fail_unless(in_bounds(c), "target %u out of bounds", c.target_bps());
  }
  // Honest feedback again, with the remote's clock somewhere else entirely: the queue estimate
  // forgets the nonsense and the target climbs back towards the maximum.
  honest(c, now, 45, 7 * hour);
  fail_unless(in_bounds(c));
  fail_unless(c.queuing_delay_ms() < 5, "queue %.1f ms", c.queuing_delay_ms());
  fail_unless(c.target_bps() >= 2'500'000, "target %u after honest feedback", c.target_bps());
}
GST_END_TEST;

// Every packet lost, then every packet "received" with sizes at the type's limit, then send times
// in the far past and future: the target moves, within its bounds, and comes back.
GST_START_TEST(test_all_lost_and_huge_sizes)
{
  cc::Controller c(config());
  int64_t now = 1'000'000;
  honest(c, now, 2);
  for (int round = 0; round < 100; round++) {
    std::vector<cc::PacketResult> fb;
    for (int i = 0; i < 20; i++) fb.push_back({now - 40'000 + i * 2000, 0, 1200, true});
    now += 50'000;
    c.on_feedback(now, fb);
    fail_unless(in_bounds(c));
  }
  for (int round = 0; round < 100; round++) {
    std::vector<cc::PacketResult> fb;
    for (int i = 0; i < 20; i++)
      fb.push_back({now - 40'000 + i * 2000, now + i, std::numeric_limits<uint32_t>::max(), false});
    now += 50'000;
    c.on_feedback(now, fb);
    fail_unless(in_bounds(c));
  }
  for (int64_t send : {INT64_MIN, INT64_MAX, int64_t(0), -now}) {
    c.on_feedback(now, {{send, send, 1200, false}, {send, 0, 0, true}});
    fail_unless(in_bounds(c));
  }
  honest(c, now, 45); // from the minimum at the controller's 8 %/s: 45 s reach 2.5 Mbit/s
  fail_unless(c.target_bps() >= 2'500'000, "target %u after honest feedback", c.target_bps());
}
GST_END_TEST;

// Zero intervals everywhere (NaN bait: rates over no time, slopes over one point), one feedback of
// two million entries, and receiver reports with NaN and infinities: memory stays bounded (the
// controller keeps a window, not the history) and the figures stay finite.
GST_START_TEST(test_zero_intervals_and_floods)
{
  cc::Controller c(config());
  int64_t now = 1'000'000;
  for (int round = 0; round < 50; round++) {
    std::vector<cc::PacketResult> fb(64, cc::PacketResult{now, now, 1200, false});
    c.on_feedback(now, fb); // the same instant, again and again
    fail_unless(in_bounds(c));
  }
  std::vector<cc::PacketResult> flood;
  flood.reserve(2'000'000);
  for (int i = 0; i < 2'000'000; i++)
    flood.push_back({now + i / 1000, now + 5'000 + (i % 7) * 100'000, 1200, i % 3 == 0});
  for (int i = 0; i < 3; i++) {
    c.on_feedback(now, flood);
    fail_unless(in_bounds(c));
  }
  fail_unless(c.memory_entries() <= 100'000, "%zu entries kept", c.memory_entries());
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  for (double f : {nan, inf, -inf, -1.0, 2.0, 1e300})
    for (double rtt : {nan, inf, -inf, -5.0, 1e300, 0.0}) {
      now += 2'100'000;
      c.on_receiver_report(now, f, rtt);
      fail_unless(in_bounds(c));
      fail_unless(std::isfinite(c.rtt_ms()));
    }
  c.on_feedback(now, {});
  honest(c, now, 45);
  fail_unless(in_bounds(c));
  fail_unless(c.target_bps() >= 2'500'000, "target %u after honest feedback", c.target_bps());
}
GST_END_TEST;

// What rtpsession hands EncoderControl, made up by a hostile peer: fields missing or of the wrong
// type, packets we never sent (no local-ts), remote times absurd. Through the real path (an
// upstream event on the pad EncoderControl watches), into a real vp8enc's target-bitrate.
static GstEvent *twcc_event(const std::vector<GstStructure *> &packets, bool as_array = true)
{
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  GValueArray *array = g_value_array_new(guint(packets.size()));
  for (GstStructure *p : packets) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, GST_TYPE_STRUCTURE);
    g_value_take_boxed(&v, p);
    g_value_array_append(array, &v);
    g_value_unset(&v);
  }
  GstStructure *s = gst_structure_new_empty("RTPTWCCPackets");
  if (as_array) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, g_value_array_get_type());
    g_value_take_boxed(&v, array);
    gst_structure_take_value(s, "packets", &v);
  } else {
    g_value_array_free(array);
    gst_structure_set(s, "packets", G_TYPE_STRING, "nonsense", nullptr);
  }
  G_GNUC_END_IGNORE_DEPRECATIONS
  return gst_event_new_custom(GST_EVENT_CUSTOM_UPSTREAM, s);
}

static GstStructure *packet(guint64 local, guint64 remote, guint size, bool lost)
{
  GstStructure *p = gst_structure_new("RTPTWCCPacket", "seqnum", G_TYPE_UINT, 1u, "local-ts",
                                      G_TYPE_UINT64, local, "size", G_TYPE_UINT, size, "lost",
                                      G_TYPE_BOOLEAN, gboolean(lost), nullptr);
  if (remote != GST_CLOCK_TIME_NONE)
    gst_structure_set(p, "remote-ts", G_TYPE_UINT64, remote, nullptr);
  return p;
}

// Packets we never sent (no local-ts, or one of another type) are not counted.
GST_START_TEST(test_parse_unknown_packets)
{
  GstEvent *ev =
      twcc_event({packet(GST_CLOCK_TIME_NONE, GST_SECOND, 1200, false),
                  gst_structure_new("RTPTWCCPacket", "local-ts", G_TYPE_STRING, "x", "remote-ts",
                                    G_TYPE_UINT64, GST_SECOND, "size", G_TYPE_UINT, 1200u, nullptr),
                  packet(2 * GST_SECOND, GST_CLOCK_TIME_NONE, 1000, false)});
  std::vector<cc::PacketResult> out;
  fail_unless(mediacc::parse_twcc_event(ev, out));
  fail_unless_equals_int(out.size(), 1);
  fail_unless(out[0].lost && out[0].send_us == 2'000'000 && out[0].size == 1000);
  gst_event_unref(ev);
  GstEvent *other = twcc_event({packet(GST_SECOND, GST_SECOND, 1, false)}, false);
  out.clear();
  fail_unless(!mediacc::parse_twcc_event(other, out) && out.empty());
  gst_event_unref(other);
}
GST_END_TEST;

GST_START_TEST(test_encoder_control_path)
{
  GstElement *enc = gst_element_factory_make("vp8enc", nullptr);
  if (!enc) {
    g_print("SKIP: no vp8enc\n");
    return;
  }
  gst_object_ref_sink(enc);
  GstPad *src = gst_pad_new("src", GST_PAD_SRC), *sink = gst_pad_new("sink", GST_PAD_SINK);
  gst_pad_set_active(src, TRUE);
  gst_pad_set_active(sink, TRUE);
  fail_unless(gst_pad_link(src, sink) == GST_PAD_LINK_OK);
  {
    mediacc::EncoderControl control(enc, config(), 150'000);
    control.watch("stranger", sink);
    auto target = [&] {
      gint bps = 0;
      g_object_get(enc, "target-bitrate", &bps, nullptr);
      return bps;
    };
    std::mt19937_64 rng(7);
    guint64 t = 10 * GST_SECOND;
    for (int round = 0; round < 300; round++) {
      std::vector<GstStructure *> ps;
      for (int i = 0; i < 40; i++) {
        guint64 local = t + guint64(i) * GST_MSECOND;
        switch (rng() % 6) {
        case 0: ps.push_back(packet(GST_CLOCK_TIME_NONE, local, 1200, false)); break; // never sent
        case 1: ps.push_back(packet(local, G_MAXUINT64 - 1, G_MAXUINT, false)); break;
        case 2: ps.push_back(packet(local, 0, 0, false)); break;
        case 3: ps.push_back(packet(local, GST_CLOCK_TIME_NONE, 1200, true)); break;
        case 4:
          ps.push_back(gst_structure_new("RTPTWCCPacket", "local-ts", G_TYPE_STRING, "x", "size",
                                         G_TYPE_DOUBLE, -1.0, nullptr));
          break;
        default: ps.push_back(packet(local, rng(), guint(rng()), bool(rng() & 1))); break;
        }
      }
      gst_pad_push_event(sink, twcc_event(ps, round % 10 != 9));
      t += 50 * GST_MSECOND;
      gint bps = target();
      fail_unless(bps == 0 || (bps >= gint(kMin) && bps <= gint(kMax)), "target-bitrate %d", bps);
    }
    // Empty and field-less events.
    gst_pad_push_event(sink, twcc_event({}));
    gst_pad_push_event(
        sink,
        gst_event_new_custom(GST_EVENT_CUSTOM_UPSTREAM, gst_structure_new_empty("RTPTWCCPackets")));
    fail_unless(control.bitrate_bps() >= kMin && control.bitrate_bps() <= kMax);
    control.forget("stranger");
  }
  gst_object_unref(src);
  gst_object_unref(sink);
  gst_object_unref(enc);
}
GST_END_TEST;

static Suite *hostile_feedback_suite()
{
  Suite *s = suite_create("hostile-feedback");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_absurd_arrival_times);
  tcase_add_test(tc, test_all_lost_and_huge_sizes);
  tcase_add_test(tc, test_zero_intervals_and_floods);
  tcase_add_test(tc, test_parse_unknown_packets);
  tcase_add_test(tc, test_encoder_control_path);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(hostile_feedback)
