// SPDX-License-Identifier: LGPL-2.1-or-later
/* The VP8 layer gate (gst/rtc/layergate.h): after a loss the frames that do not depend on what
 * was lost are decoded, and identical to a decode without the loss; those that do are dropped
 * until a keyframe, which is asked for at once. Through a real vp8enc set up as rtcpeer's
 * (temporal layers), rtpvp8pay, rtpvp8depay and vp8dec, and on the Gate alone. */
#include "rtc/layergate.h"
#include "rtc/holewatch.h"
#include "rtc/mediacc.h"

#include <gst/app/app.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/rtp/rtp.h>
#include <gst/video/video.h>

#include <map>
#include <set>
#include <string>
#include <vector>

using namespace pointcast;
using layergate::Gate;
using layergate::Vp8Packet;

namespace {
constexpr int kFrames = 48; // one keyframe, then 12 periods of 4 frames (layers 0 2 1 2)

struct Encoded {
  std::vector<GstBuffer *> packets;
  std::vector<int> frame_of; // frame index of each packet
  std::vector<int> tid;      // temporal layer of each frame
  ~Encoded()
  {
    for (auto *b : packets) gst_buffer_unref(b);
  }
};

// The frames as rtcpeer's sender makes them: vp8enc with its temporal layers, 15-bit ids.
void encode(Encoded &e)
{
  GstElement *pipe = gst_parse_launch(
      "videotestsrc pattern=ball num-buffers=48 ! video/x-raw,width=320,height=240,framerate=30/1"
      " ! vp8enc name=enc deadline=1 cpu-used=16 keyframe-max-dist=3000 threads=1"
      " error-resilient=default end-usage=cbr target-bitrate=600000"
      " ! rtpvp8pay picture-id-mode=15-bit mtu=600 ! appsink name=out sync=false",
      nullptr);
  fail_unless(pipe != nullptr);
  GstElement *enc = gst_bin_get_by_name(GST_BIN(pipe), "enc");
  mediacc::set_temporal_layers(enc, 600'000);
  gst_object_unref(enc);
  GstElement *out = gst_bin_get_by_name(GST_BIN(pipe), "out");
  gst_element_set_state(pipe, GST_STATE_PLAYING);
  std::map<guint32, int> frames; // RTP timestamp -> frame index
  while (GstSample *s = gst_app_sink_pull_sample(GST_APP_SINK(out))) {
    GstBuffer *b = gst_buffer_ref(gst_sample_get_buffer(s));
    gst_sample_unref(s);
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    fail_unless(gst_rtp_buffer_map(b, GST_MAP_READ, &rtp));
    guint32 ts = gst_rtp_buffer_get_timestamp(&rtp);
    Vp8Packet p;
    fail_unless(layergate::parse_vp8(static_cast<const uint8_t *>(gst_rtp_buffer_get_payload(&rtp)),
                                     gst_rtp_buffer_get_payload_len(&rtp), p));
    gst_rtp_buffer_unmap(&rtp);
    if (!frames.count(ts)) {
      int n = int(frames.size());
      frames[ts] = n;
      e.tid.push_back(p.tid);
    }
    e.frame_of.push_back(frames[ts]);
    e.packets.push_back(b);
  }
  gst_object_unref(out);
  gst_element_set_state(pipe, GST_STATE_NULL);
  gst_object_unref(pipe);
  fail_unless_equals_int(int(frames.size()), kFrames);
  fail_unless_equals_int(e.tid[0], 0);
  fail_unless_equals_int(e.tid[1], 2);
  fail_unless_equals_int(e.tid[2], 1);
}

struct Decoded {
  std::map<int, std::string> frames; // frame index -> the decoded picture's bytes
  int keyframe_requests = 0;
};

GstPadProbeReturn count_requests(GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  if (gst_video_event_is_force_key_unit(GST_PAD_PROBE_INFO_EVENT(info)))
    static_cast<Decoded *>(user_data)->keyframe_requests++;
  return GST_PAD_PROBE_OK;
}

enum class Depay { Plain, Gate, LayerGate };

/* The packets but those of the frames in LOST through rtpvp8depay and vp8dec: as rtcpeer had it
 * before (Plain: wait-for-keyframe, request-keyframe), behind the gate as rtcpeer has it now
 * (Gate: every loss waits for a keyframe), or behind the gate with layers (LayerGate). */
void decode(const Encoded &e, const std::set<int> &lost, Depay how, Decoded &d,
            const std::set<size_t> &discont = {})
{
  GstElement *pipe = gst_parse_launch(
      "appsrc name=in format=time caps=application/x-rtp,media=video,encoding-name=VP8,"
      "clock-rate=90000,payload=96 ! rtpvp8depay name=depay ! vp8dec ! video/x-raw,format=I420"
      " ! appsink name=out sync=false",
      nullptr);
  fail_unless(pipe != nullptr);
  GstElement *depay = gst_bin_get_by_name(GST_BIN(pipe), "depay");
  if (how != Depay::Plain) {
    layergate::gate_vp8_depayloader(depay, how == Depay::LayerGate);
  } else {
    g_object_set(depay, "wait-for-keyframe", TRUE, "request-keyframe", TRUE, nullptr);
  }
  gst_object_unref(depay);
  GstElement *in = gst_bin_get_by_name(GST_BIN(pipe), "in");
  GstPad *src = gst_element_get_static_pad(in, "src");
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, count_requests, &d, nullptr);
  gst_object_unref(src);
  GstElement *out = gst_bin_get_by_name(GST_BIN(pipe), "out");
  gst_element_set_state(pipe, GST_STATE_PLAYING);
  for (size_t i = 0; i < e.packets.size(); i++) {
    int f = e.frame_of[i];
    if (lost.count(f)) continue;
    GstBuffer *b = gst_buffer_copy(e.packets[i]);
    GST_BUFFER_PTS(b) = GstClockTime(f) * GST_SECOND / 30;
    GST_BUFFER_DTS(b) = GST_CLOCK_TIME_NONE;
    if (discont.count(i)) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
    gst_app_src_push_buffer(GST_APP_SRC(in), b);
  }
  gst_app_src_end_of_stream(GST_APP_SRC(in));
  while (GstSample *s = gst_app_sink_pull_sample(GST_APP_SINK(out))) {
    GstBuffer *b = gst_sample_get_buffer(s);
    int f = int(gst_util_uint64_scale_round(GST_BUFFER_PTS(b), 30, GST_SECOND));
    GstMapInfo map;
    fail_unless(gst_buffer_map(b, &map, GST_MAP_READ));
    d.frames[f] = std::string(reinterpret_cast<const char *>(map.data), map.size);
    gst_buffer_unmap(b, &map);
    gst_sample_unref(s);
  }
  gst_object_unref(in);
  gst_object_unref(out);
  gst_element_set_state(pipe, GST_STATE_NULL);
  gst_object_unref(pipe);
}

Encoded *stream;
Decoded *reference;

void setup()
{
  stream = new Encoded;
  encode(*stream);
  reference = new Decoded;
  decode(*stream, {}, Depay::LayerGate, *reference);
  fail_unless_equals_int(int(reference->frames.size()), kFrames);
  fail_unless_equals_int(reference->keyframe_requests, 0);
}

void teardown()
{
  delete reference;
  delete stream;
}
} // namespace

// A frame above the base lost whole: every other frame decoded, each the same picture as without
// the loss. (rtpvp8depay's wait-for-keyframe alone: no frame after it until the next keyframe.)
GST_START_TEST(test_upper_frame_lost)
{
  for (int lost : {5, 10, 23}) { // layer 2, layer 1, layer 2
    fail_unless(stream->tid[lost] > 0);
    Decoded d;
    decode(*stream, {lost}, Depay::LayerGate, d);
    fail_unless_equals_int(int(d.frames.size()), kFrames - 1);
    for (auto &[f, picture] : d.frames)
      fail_unless(picture == reference->frames[f], "frame %d differs after frame %d was lost", f,
                  lost);
    fail_unless_equals_int(d.keyframe_requests, 0);
  }
}
GST_END_TEST;

// Part of a frame above the base lost (its first packet, or its last): the same.
GST_START_TEST(test_upper_frame_part_lost)
{
  for (bool first : {true, false}) {
    int frame = 14; // layer 1
    fail_unless_equals_int(stream->tid[frame], 1);
    Encoded part;
    bool dropped = false;
    for (size_t i = 0; i < stream->packets.size(); i++) {
      bool last_of_frame = stream->frame_of[i] == frame &&
          (i + 1 == stream->packets.size() || stream->frame_of[i + 1] != frame);
      bool first_of_frame =
          stream->frame_of[i] == frame && (!i || stream->frame_of[i - 1] != frame);
      if (!dropped && (first ? first_of_frame : last_of_frame)) {
        dropped = true;
        continue;
      }
      part.packets.push_back(gst_buffer_ref(stream->packets[i]));
      part.frame_of.push_back(stream->frame_of[i]);
    }
    part.tid = stream->tid;
    Decoded d;
    decode(part, {}, Depay::LayerGate, d);
    fail_unless_equals_int(int(d.frames.size()), kFrames - 1);
    fail_if(d.frames.count(frame));
    for (auto &[f, picture] : d.frames) fail_unless(picture == reference->frames[f]);
  }
}
GST_END_TEST;

// A base frame lost: what depends on it is not decoded (no broken picture), the frames before
// are, and a keyframe is asked for at once.
GST_START_TEST(test_base_frame_lost)
{
  int lost = 20;
  fail_unless_equals_int(stream->tid[lost], 0);
  Decoded d;
  decode(*stream, {lost}, Depay::LayerGate, d);
  fail_unless_equals_int(int(d.frames.size()), lost);
  for (auto &[f, picture] : d.frames) {
    fail_unless(f < lost);
    fail_unless(picture == reference->frames[f]);
  }
  // Asked once at the break; the 27 frames after it are pushed within the 200 ms re-ask period.
  fail_unless(d.keyframe_requests >= 1);
}
GST_END_TEST;

/* As rtcpeer has it (layers not used, see layergate.h): a lost frame, whatever its layer, stops
 * the decoder until a keyframe, with no broken picture, and the sender is asked once, not once
 * per frame dropped as rtpvp8depay's request-keyframe did (36 requests here). */
GST_START_TEST(test_lost_frame_one_request)
{
  int lost = 13; // layer 2
  Decoded d;
  decode(*stream, {lost}, Depay::Gate, d);
  fail_unless_equals_int(int(d.frames.size()), lost);
  for (auto &[f, picture] : d.frames) {
    fail_unless(f < lost);
    fail_unless(picture == reference->frames[f]);
  }
  // Once at the loss; again only every 100 ms without a keyframe (the 35 frames after the loss
  // are pushed within a few ms here).
  fail_unless(d.keyframe_requests >= 1 && d.keyframe_requests <= 6, "%d keyframe requests",
              d.keyframe_requests);
}
GST_END_TEST;

/* Every packet there, seqnums without a gap, but one in the middle of a frame flagged DISCONT, as
 * rtpjitterbuffer flags the buffer it pushes after a lost event (seen live on the noisy 1 Mbit/s
 * link): rtpvp8depay drops the frame it was building. The gate must count that frame as lost;
 * before, it let the next frames through and vp8dec decoded them without their reference (the
 * ball 6-40 px off in net-adapt-noisy-rate1m, healing over a few frames). */
GST_START_TEST(test_discont_mid_frame)
{
  size_t at = 0;
  int frame = -1;
  for (size_t i = 1; i < stream->packets.size(); i++) {
    int f = stream->frame_of[i];
    if (f >= 4 && stream->tid[f] == 0 && stream->frame_of[i - 1] == f) {
      at = i;
      frame = f;
      break;
    }
  }
  fail_unless(frame > 0, "no base frame of two packets or more");
  for (Depay how : {Depay::Gate, Depay::LayerGate, Depay::Plain}) {
    Decoded d;
    decode(*stream, {}, how, d, {at});
    fail_if(d.frames.count(frame), "frame %d decoded without its first packets", frame);
    for (auto &[f, picture] : d.frames)
      fail_unless(picture == reference->frames[f], "frame %d differs after frame %d was dropped", f,
                  frame);
    // A base frame: nothing after it decodes until a keyframe (none in the stream).
    fail_unless_equals_int(int(d.frames.size()), frame);
    fail_unless(d.keyframe_requests >= 1);
  }
}
GST_END_TEST;

/* ---- the Gate alone ---- */

namespace {
struct Sim {
  Gate gate;
  uint16_t seq = 1000;
  int picture_id = 0x7ff0, tl0 = 250; // both wrap within the test
  int64_t now = 0;
  int asked = 0;
  // One frame of N packets; LOSE: indices of its packets not delivered. Returns whether it
  // passed (its first delivered packet's verdict).
  bool frame(int tid, bool key, int n = 2, std::set<int> lose = {}, int fec_after = 0)
  {
    if (tid == 0) tl0 = (tl0 + 1) & 0xff;
    bool pass = false, first = true;
    for (int i = 0; i < n; i++) {
      Vp8Packet p;
      p.start = i == 0;
      p.keyframe = key && i == 0;
      p.picture_id = picture_id;
      p.long_id = true;
      p.tl0 = tl0;
      p.tid = tid;
      p.sync = tid > 0;
      uint16_t s = seq++;
      if (lose.count(i)) continue;
      auto v = gate.packet(s, i == n - 1, p, now);
      asked += v.ask_keyframe;
      if (first) pass = v.pass;
      first = false;
    }
    seq = uint16_t(seq + fec_after); // FEC packets, dropped after the jitterbuffer
    picture_id = (picture_id + 1) & 0x7fff;
    now += 33'333;
    return pass;
  }
  // A period of the layer pattern; returns how many of its frames passed.
  int period()
  {
    int n = 0;
    for (int tid : {0, 2, 1, 2}) n += frame(tid, false);
    return n;
  }
};
} // namespace

GST_START_TEST(test_gate_upper_loss)
{
  Sim s;
  fail_unless(s.frame(0, true));
  for (int i = 0; i < 3; i++) fail_unless(s.frame(i == 1 ? 1 : 2, false));
  fail_unless_equals_int(s.period(), 4);
  // Frames 2 (layer 1) and 3 (layer 2) of a period lost whole, and a packet of the last one.
  fail_unless(s.frame(0, false));
  s.frame(2, false, 2, {0, 1});
  s.frame(1, false, 2, {0, 1});
  s.frame(2, false, 3, {1});
  fail_unless_equals_int(s.period(), 4);
  fail_unless_equals_int(s.period(), 4);
  fail_unless(s.gate.synced());
  fail_unless_equals_int(s.asked, 0);
  // Lost FEC packets between frames (seqnum gaps, PictureIDs consecutive) lose nothing.
  fail_unless(s.frame(0, false, 2, {}, 1));
  fail_unless(s.frame(2, false, 2, {}, 2));
  fail_unless_equals_int(s.period(), 4);
  fail_unless_equals_int(s.asked, 0);
}
GST_END_TEST;

GST_START_TEST(test_gate_base_loss)
{
  for (bool whole : {true, false}) {
    Sim s;
    fail_unless(s.frame(0, true));
    fail_unless_equals_int(s.period(), 4);
    s.frame(0, false, 3, whole ? std::set<int>{0, 1, 2} : std::set<int>{2});
    fail_unless_equals_int(s.asked, 0); // known at the next frame's first packet
    for (int tid : {2, 1, 2}) fail_if(s.frame(tid, false));
    fail_unless(!s.gate.synced());
    fail_unless_equals_int(s.asked, 1); // at once
    fail_unless_equals_int(s.period(), 0);
    fail_unless_equals_int(s.asked, 2); // 133 ms on: again
    fail_unless_equals_int(s.period(), 0);
    fail_unless_equals_int(s.asked, 3); // 233 ms on, and not again at 333
    fail_unless(s.frame(0, true));
    fail_unless(s.gate.synced());
    fail_unless_equals_int(s.period(), 4);
    fail_unless_equals_int(s.asked, 3);
  }
}
GST_END_TEST;

/* The hole watch gave up a hole because a keyframe arrived whole behind it: the frames after the
 * hole are dropped, but no keyframe is asked for (one is coming); if none comes within 100 ms,
 * the gate asks as usual. */
GST_START_TEST(test_gate_keyframe_follows)
{
  for (bool comes : {true, false}) {
    Sim s;
    s.gate = Gate(false);
    fail_unless(s.frame(0, true));
    fail_unless_equals_int(s.period(), 4);
    s.gate.keyframe_follows(s.now);
    s.frame(0, false, 3, {1});
    fail_if(s.frame(2, false));
    fail_unless(!s.gate.synced());
    fail_unless_equals_int(s.asked, 0);
    if (comes) {
      fail_unless(s.frame(0, true));
      fail_unless_equals_int(s.period(), 4);
      fail_unless_equals_int(s.asked, 0);
      // The next break, long after: asked at once again.
      s.frame(0, false, 3, {1});
      fail_if(s.frame(2, false));
      fail_unless_equals_int(s.asked, 1);
    } else {
      fail_if(s.frame(1, false)); // 67 ms after the event
      fail_unless_equals_int(s.asked, 0);
      fail_if(s.frame(2, false)); // 100 ms less 1 us
      fail_unless_equals_int(s.asked, 0);
      fail_if(s.frame(0, false)); // 133 ms: the keyframe is late, ask
      fail_unless_equals_int(s.asked, 1);
    }
  }
}
GST_END_TEST;

// Layers not used (rtcpeer now): a lost frame above the base stops everything until a keyframe.
GST_START_TEST(test_gate_layers_off)
{
  Sim s;
  s.gate = Gate(false);
  fail_unless(s.frame(0, true));
  fail_unless(s.frame(2, false));
  s.frame(1, false, 2, {0, 1});
  fail_if(s.frame(2, false));
  fail_if(s.frame(0, false));
  fail_unless_equals_int(s.asked, 1);
  fail_unless(s.frame(0, true));
  fail_unless_equals_int(s.period(), 4);
}
GST_END_TEST;

// A stream without layers (another sender's VP8): any lost frame waits for a keyframe, as
// rtpvp8depay did; its lost start packet too.
GST_START_TEST(test_gate_no_layers)
{
  Sim s;
  auto plain = [&](bool key, std::set<int> lose = {}) {
    bool pass = false, first = true;
    for (int i = 0; i < 2; i++) {
      Vp8Packet p;
      p.start = i == 0;
      p.keyframe = key && i == 0;
      p.picture_id = s.picture_id;
      p.long_id = true;
      uint16_t sq = s.seq++;
      if (lose.count(i)) continue;
      auto v = s.gate.packet(sq, i == 1, p, s.now);
      s.asked += v.ask_keyframe;
      if (first) pass = v.pass;
      first = false;
    }
    s.picture_id = (s.picture_id + 1) & 0x7fff;
    s.now += 33'333;
    return pass;
  };
  fail_unless(plain(true));
  fail_unless(plain(false));
  plain(false, {0});
  fail_if(plain(false));
  fail_unless(s.asked >= 1);
  fail_unless(plain(true));
  fail_unless(plain(false));
}
GST_END_TEST;

GST_START_TEST(test_parse_vp8)
{
  // X, I (15-bit 0x1234), L (TL0PICIDX 7), T (TID 2, Y); S, partition 0; a keyframe header.
  const uint8_t key[] = {0x90, 0xe0, 0x92, 0x34, 0x07, 0xa0, 0x00};
  Vp8Packet p;
  fail_unless(layergate::parse_vp8(key, sizeof key, p));
  fail_unless(p.start && p.keyframe && p.long_id && p.sync);
  fail_unless_equals_int(p.picture_id, 0x1234);
  fail_unless_equals_int(p.tl0, 7);
  fail_unless_equals_int(p.tid, 2);
  const uint8_t inter[] = {0x90, 0x80, 0x05, 0x01}; // 7-bit id, an inter frame
  fail_unless(layergate::parse_vp8(inter, sizeof inter, p));
  fail_unless(p.start && !p.keyframe && !p.long_id);
  fail_unless_equals_int(p.picture_id, 5);
  fail_unless_equals_int(p.tid, -1);
  fail_if(layergate::parse_vp8(key, 4, p)); // cut inside the descriptor
}
GST_END_TEST;

/* The gate in front of a real rtpvp8depay reads the hole watch's lost event: packets of the
 * first frames, a hole (the first packet of a frame missing, the next flagged DISCONT as the jitterbuffer
 * flags it), then a keyframe. With the watch's event before the DISCONT packet no keyframe is
 * asked for; with the jitterbuffer's own lost event (no mark) one is. */
GST_START_TEST(test_watch_event_no_request)
{
  for (bool marked : {true, false}) {
    GstHarness *h = gst_harness_new("rtpvp8depay");
    layergate::gate_vp8_depayloader(h->element, false);
    gst_harness_set_src_caps_str(
        h, "application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96");
    guint16 seq = 500;
    auto push = [&](size_t i, bool discont, int as_frame) {
      GstBuffer *b = gst_buffer_copy_deep(stream->packets[i]);
      GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
      fail_unless(gst_rtp_buffer_map(b, GST_MAP_WRITE, &rtp));
      gst_rtp_buffer_set_seq(&rtp, seq++);
      gst_rtp_buffer_set_timestamp(&rtp, guint32(as_frame * 3000));
      gst_rtp_buffer_unmap(&rtp);
      GST_BUFFER_PTS(b) = GstClockTime(as_frame) * GST_SECOND / 30;
      if (discont) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
      gst_harness_push(h, b);
    };
    // The first frame from 4 on of two packets or more: the hole's frame.
    int hole = 4;
    auto packets_of = [&](int f) {
      std::vector<size_t> v;
      for (size_t i = 0; i < stream->packets.size(); i++)
        if (stream->frame_of[i] == f) v.push_back(i);
      return v;
    };
    while (hole < kFrames && packets_of(hole).size() < 2) hole++;
    fail_unless(hole < kFrames, "no frame of two packets");
    std::vector<size_t> lost_in = packets_of(hole);
    for (size_t i = 0; i < stream->packets.size() && stream->frame_of[i] < hole; i++)
      push(i, false, stream->frame_of[i]);
    seq++; // lost_in[0] lost
    gst_harness_push_event(
        h,
        gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM,
                             gst_structure_new("GstRTPPacketLost", "seqnum", G_TYPE_UINT,
                                               guint(seq - 1), "timestamp", G_TYPE_UINT64,
                                               GstClockTime(hole) * GST_SECOND / 30, "duration",
                                               G_TYPE_UINT64, guint64(0), "retry", G_TYPE_UINT, 0u,
                                               marked ? "pointcast-keyframe-follows" : nullptr,
                                               G_TYPE_BOOLEAN, TRUE, nullptr)));
    GstEvent *eos = gst_event_new_eos();
    fail_if(holewatch::keyframe_follows(eos));
    gst_event_unref(eos);
    for (size_t k = 1; k < lost_in.size(); k++) push(lost_in[k], k == 1, hole);
    for (size_t i = 0; i < stream->packets.size() && stream->frame_of[i] == 0; i++)
      push(i, false, hole + 1);
    int asked = 0;
    while (GstEvent *ev = gst_harness_try_pull_upstream_event(h)) {
      asked += gst_video_event_is_force_key_unit(ev);
      gst_event_unref(ev);
    }
    if (marked) {
      fail_unless_equals_int(asked, 0);
    } else {
      fail_unless(asked >= 1, "the jitterbuffer's own lost event asked nothing");
    }
    // The frames before the hole and the keyframe out; the hole's frame dropped.
    int out = 0;
    while (GstBuffer *b = gst_harness_try_pull(h)) {
      out++;
      gst_buffer_unref(b);
    }
    fail_unless_equals_int(out, hole + 1);
    gst_harness_teardown(h);
  }
}
GST_END_TEST;

static Suite *layergate_suite()
{
  Suite *s = suite_create("layergate");
  TCase *tc = tcase_create("gate");
  tcase_add_test(tc, test_parse_vp8);
  tcase_add_test(tc, test_gate_upper_loss);
  tcase_add_test(tc, test_gate_base_loss);
  tcase_add_test(tc, test_gate_no_layers);
  tcase_add_test(tc, test_gate_layers_off);
  tcase_add_test(tc, test_gate_keyframe_follows);
  suite_add_tcase(s, tc);
  TCase *e2e = tcase_create("vp8");
  tcase_set_timeout(e2e, 60);
  tcase_add_checked_fixture(e2e, setup, teardown); // GStreamer threads do not survive a fork
  tcase_add_test(e2e, test_upper_frame_lost);
  tcase_add_test(e2e, test_upper_frame_part_lost);
  tcase_add_test(e2e, test_base_frame_lost);
  tcase_add_test(e2e, test_lost_frame_one_request);
  tcase_add_test(e2e, test_discont_mid_frame);
  tcase_add_test(e2e, test_watch_event_no_request);
  suite_add_tcase(s, e2e);
  return s;
}

GST_CHECK_MAIN(layergate);
