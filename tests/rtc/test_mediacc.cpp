// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's webrtcbin glue for loss recovery and congestion control (gst/rtc/mediacc.h): the caps
 * that negotiate NACK/RTX and TWCC, the answer caps taken from a browser's offer, the TWCC
 * feedback event as rtpsession 1.22 sends it, and the keyframe rate limit. */
#include "rtc/mediacc.h"

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/rtp/rtp.h>

#include <algorithm>
#include <memory>
#include <random>
#include <set>
#include <vector>

using namespace pointcast;

static const char *kChromeOffer =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 45 98\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=sendrecv\r\na=rtcp-mux\r\n"
    "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 transport-cc\r\n"
    "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
    "a=rtpmap:45 AV1/90000\r\n"
    "a=rtpmap:98 VP9/90000\r\na=rtcp-fb:98 nack\r\n";

GST_START_TEST(test_feedback_caps)
{
  GstCaps *caps = gst_caps_from_string(
      "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000");
  fail_unless_equals_int(mediacc::twcc_id(caps), 0);
  mediacc::add_feedback(caps, 5);
  fail_unless_equals_int(mediacc::twcc_id(caps), 5);
  const GstStructure *s = gst_caps_get_structure(caps, 0);
  gboolean nack = FALSE, tcc = FALSE;
  fail_unless(gst_structure_get_boolean(s, "rtcp-fb-nack", &nack) && nack);
  fail_unless(gst_structure_get_boolean(s, "rtcp-fb-transport-cc", &tcc) && tcc);
  gst_caps_unref(caps);
}
GST_END_TEST;

// The answer to a browser keeps its payload types, its TWCC id and NACK; RTX is webrtcbin's
// (do-nack), codecs we cannot decode are left out.
GST_START_TEST(test_caps_from_offer)
{
  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new_from_text(kChromeOffer, &sdp);
  fail_unless(sdp != nullptr);
  GstCaps *caps = mediacc::caps_from_offer(gst_sdp_message_get_media(sdp, 0));
  fail_unless(caps != nullptr);
  fail_unless_equals_int(gst_caps_get_size(caps), 2); // VP8 and VP9, not rtx nor AV1
  const GstStructure *vp8 = gst_caps_get_structure(caps, 0);
  fail_unless(gst_structure_has_name(vp8, "application/x-rtp"));
  fail_unless_equals_string(gst_structure_get_string(vp8, "encoding-name"), "VP8");
  int pt = 0;
  fail_unless(gst_structure_get_int(vp8, "payload", &pt));
  fail_unless_equals_int(pt, 96);
  fail_unless_equals_int(mediacc::twcc_id(caps), 3);
  gboolean nack = FALSE;
  fail_unless(gst_structure_get_boolean(vp8, "rtcp-fb-nack", &nack) && nack);
  fail_unless(!gst_structure_has_field(vp8, "a-mid"));
  gst_caps_unref(caps);
  gst_sdp_message_free(sdp);
}
GST_END_TEST;

static GstStructure *packet(guint seq, guint64 local, guint64 remote, guint size, gboolean lost)
{
  return gst_structure_new("RTPTWCCPacket", "seqnum", G_TYPE_UINT, seq, "local-ts", G_TYPE_UINT64,
                           local, "remote-ts", G_TYPE_UINT64, remote, "payload-type", G_TYPE_UCHAR,
                           96, "size", G_TYPE_UINT, size, "lost", G_TYPE_BOOLEAN, lost, nullptr);
}

// The event as rtpsession 1.22 pushes it upstream (probed: a GValueArray of structures).
GST_START_TEST(test_parse_twcc_event)
{
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  GValueArray *array = g_value_array_new(2);
  GValue v = G_VALUE_INIT;
  g_value_init(&v, GST_TYPE_STRUCTURE);
  g_value_take_boxed(&v, packet(0, 1'000'000, 5'000'000, 1200, FALSE));
  g_value_array_append(array, &v);
  g_value_unset(&v);
  g_value_init(&v, GST_TYPE_STRUCTURE);
  g_value_take_boxed(&v, packet(1, 2'000'000, GST_CLOCK_TIME_NONE, 900, TRUE));
  g_value_array_append(array, &v);
  g_value_unset(&v);
  GstStructure *s =
      gst_structure_new("RTPTWCCPackets", "packets", g_value_array_get_type(), array, nullptr);
  g_value_array_free(array);
  G_GNUC_END_IGNORE_DEPRECATIONS
  GstEvent *ev = gst_event_new_custom(GST_EVENT_CUSTOM_UPSTREAM, s);
  std::vector<cc::PacketResult> out;
  fail_unless(mediacc::parse_twcc_event(ev, out));
  fail_unless_equals_int(out.size(), 2);
  fail_unless(out[0].send_us == 1000 && out[0].recv_us == 5000 && out[0].size == 1200);
  fail_unless(!out[0].lost && out[1].lost && out[1].send_us == 2000);
  gst_event_unref(ev);
  GstEvent *other =
      gst_event_new_custom(GST_EVENT_CUSTOM_UPSTREAM, gst_structure_new_empty("GstForceKeyUnit"));
  fail_unless(!mediacc::parse_twcc_event(other, out));
  gst_event_unref(other);
}
GST_END_TEST;

GST_START_TEST(test_keyframe_gate)
{
  mediacc::KeyframeGate gate(500'000);
  fail_unless(gate.allow(0));
  fail_unless(!gate.allow(100'000));
  fail_unless(!gate.allow(499'999));
  fail_unless(gate.allow(500'000));
}
GST_END_TEST;

/* The retransmission budget answers the first losses of a stream: a packet lost among the first
 * few sent (the first keyframe's) is retransmitted. With the budget starting empty it was
 * dropped: two packets sent had saved up half a packet. Within the budget afterwards. */
GST_START_TEST(test_first_retransmission)
{
  GstHarness *h = gst_harness_new("rtprtxsend");
  GstStructure *map =
      gst_structure_new("application/x-rtp-pt-map", "96", G_TYPE_UINT, 97u, nullptr);
  g_object_set(h->element, "payload-type-map", map, nullptr);
  gst_structure_free(map);
  mediacc::limit_retransmissions(h->element);
  gst_harness_set_src_caps_str(h,
                               "application/x-rtp,media=video,payload=96,clock-rate=90000,"
                               "encoding-name=VP8,ssrc=(uint)1234");
  auto packet = [](guint16 seq) {
    GstBuffer *b = gst_rtp_buffer_new_allocate(1000, 0, 0);
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    gst_rtp_buffer_map(b, GST_MAP_WRITE, &rtp);
    gst_rtp_buffer_set_payload_type(&rtp, 96);
    gst_rtp_buffer_set_seq(&rtp, seq);
    gst_rtp_buffer_set_ssrc(&rtp, 1234);
    gst_rtp_buffer_unmap(&rtp);
    GST_BUFFER_PTS(b) = seq * GST_MSECOND;
    return b;
  };
  for (guint16 seq = 1; seq <= 2; seq++) {
    fail_unless_equals_int(gst_harness_push(h, packet(seq)), GST_FLOW_OK);
    gst_buffer_unref(gst_harness_pull(h));
  }
  // Asked for both: the first 16 KiB of retransmissions need no packets sent before them.
  int resent = 0;
  for (guint seq : {1u, 2u}) {
    gst_harness_push_upstream_event(
        h,
        gst_event_new_custom(GST_EVENT_CUSTOM_UPSTREAM,
                             gst_structure_new("GstRTPRetransmissionRequest", "seqnum", G_TYPE_UINT,
                                               seq, "ssrc", G_TYPE_UINT, 1234u, nullptr)));
    // rtprtxsend sends retransmissions from its own task.
    for (int i = 0; i < 100; i++) {
      if (GstBuffer *b = gst_harness_try_pull(h)) {
        GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
        fail_unless(gst_rtp_buffer_map(b, GST_MAP_READ, &rtp));
        fail_unless_equals_int(gst_rtp_buffer_get_payload_type(&rtp), 97);
        gst_rtp_buffer_unmap(&rtp);
        gst_buffer_unref(b);
        resent++;
        break;
      }
      g_usleep(10'000);
    }
  }
  fail_unless_equals_int(resent, 2);
  gst_harness_teardown(h);
}
GST_END_TEST;

/* EncoderControl shows the encoder an even clock (cc::FrameClock) and puts the real timestamps
 * back: through a real vp8enc, raw frames with a gap of dropped frames come out with exactly the
 * timestamps they went in with, and the frame after the gap is not the 18-40x of an average
 * frame that libvpx made of it with the real timestamps. */
GST_START_TEST(test_encoder_clock)
{
  GstHarness *h = gst_harness_new("vp8enc");
  if (!h->element) return;
  GstElement *enc = h->element;
  g_object_set(enc, "deadline", gint64(1), "lag-in-frames", 0, "cpu-used", 16, "target-bitrate",
               300'000, "threads", 1, "buffer-initial-size", 200, "buffer-optimal-size", 300,
               "buffer-size", 400, nullptr);
  gst_util_set_object_arg(G_OBJECT(enc), "end-usage", "cbr");
  gst_util_set_object_arg(G_OBJECT(enc), "timebase", "1/90000");
  cc::Config cfg;
  cfg.start_bps = cfg.min_bps = cfg.max_bps = 300'000;
  auto control = std::make_unique<mediacc::EncoderControl>(enc, cfg, 150'000);
  gst_harness_set_src_caps_str(h, "video/x-raw,format=I420,width=320,height=240,framerate=30/1");
  std::mt19937 rng(3);
  const GstClockTime frame = GST_SECOND / 30;
  std::set<GstClockTime> in;
  for (int i = 0; i < 150; i++) {
    if (i >= 60 && i < 63) continue; // three frames dropped upstream
    GstBuffer *b = gst_buffer_new_allocate(nullptr, 320 * 240 * 3 / 2, nullptr);
    GstMapInfo map;
    gst_buffer_map(b, &map, GST_MAP_WRITE);
    for (gsize k = 0; k < map.size; k++) map.data[k] = guint8(rng() & 0x3f) + 96; // noise
    gst_buffer_unmap(b, &map);
    GST_BUFFER_PTS(b) = GstClockTime(i) * frame;
    GST_BUFFER_DURATION(b) = frame;
    in.insert(GST_BUFFER_PTS(b));
    fail_unless_equals_int(gst_harness_push(h, b), GST_FLOW_OK);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  std::set<GstClockTime> out;
  std::vector<gsize> sizes;
  gsize after_gap = 0;
  while (GstBuffer *b = gst_harness_try_pull(h)) {
    out.insert(GST_BUFFER_PTS(b));
    sizes.push_back(gst_buffer_get_size(b));
    if (GST_BUFFER_PTS(b) == 63 * frame) after_gap = gst_buffer_get_size(b);
    gst_buffer_unref(b);
  }
  fail_unless(in == out, "%zu timestamps in, %zu out, not the same", in.size(), out.size());
  std::vector<gsize> sorted(sizes.begin() + 10, sizes.end());
  std::sort(sorted.begin(), sorted.end());
  gsize median = sorted[sorted.size() / 2];
  fail_unless(after_gap > 0 && after_gap < 4 * median, "frame after the gap %zu bytes, median %zu",
              after_gap, median);
  control.reset();
  gst_harness_teardown(h);
}
GST_END_TEST;

static Suite *mediacc_suite()
{
  Suite *s = suite_create("mediacc");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_feedback_caps);
  tcase_add_test(tc, test_caps_from_offer);
  tcase_add_test(tc, test_parse_twcc_event);
  tcase_add_test(tc, test_keyframe_gate);
  tcase_add_test(tc, test_first_retransmission);
  tcase_add_test(tc, test_encoder_clock);
  return s;
}

GST_CHECK_MAIN(mediacc)
