// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's receive-side ULPFEC (gst/rtc/ulpfec.h) against the FEC packets GStreamer's own
 * rtpulpfecenc makes, as webrtcbin sends them: a lost media packet is rebuilt byte for byte as
 * soon as its FEC packet is in; a lost FEC packet is filled with a placeholder (so it holds no
 * frame back in the jitterbuffer), but a lost whole frame never is (its FEC packet is, once the
 * frame's packet is retransmitted); and the FEC level follows
 * the reported loss (none on a clean link). */
#include "rtc/ulpfec.h"

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/rtp/rtp.h>

#include <algorithm>
#include <vector>

using namespace pointcast;
using ulpfec::Packet;

namespace {
constexpr guint8 kMediaPt = 96, kFecPt = 122;

// One RTP packet of a frame, with a one-byte header extension like rtcpeer's TWCC one.
GstBuffer *media_packet(guint16 seq, guint32 ts, bool marker, size_t payload, bool start = false,
                        int picture = -1)
{
  GstBuffer *b = gst_rtp_buffer_new_allocate(guint(payload), 0, 0);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  gst_rtp_buffer_map(b, GST_MAP_READWRITE, &rtp);
  gst_rtp_buffer_set_payload_type(&rtp, kMediaPt);
  gst_rtp_buffer_set_seq(&rtp, seq);
  gst_rtp_buffer_set_timestamp(&rtp, ts);
  gst_rtp_buffer_set_ssrc(&rtp, 0x1234abcd);
  gst_rtp_buffer_set_marker(&rtp, marker);
  guint16 twcc = seq;
  gst_rtp_buffer_add_extension_onebyte_header(&rtp, 1, &twcc, 2);
  guint8 *p = static_cast<guint8 *>(gst_rtp_buffer_get_payload(&rtp));
  for (size_t i = 0; i < payload; i++) p[i] = guint8(seq * 7 + i * 13);
  p[0] = start ? 0x10 : 0x00; // a VP8 payload descriptor: S on a frame's first packet, PID 0
  if (picture >= 0) {         // X, I, a 7-bit PictureID
    p[0] |= 0x80;
    p[1] = 0x80;
    p[2] = guint8(picture & 0x7f);
  }
  gst_rtp_buffer_unmap(&rtp);
  return b;
}

Packet bytes(GstBuffer *b)
{
  GstMapInfo m;
  gst_buffer_map(b, &m, GST_MAP_READ);
  Packet p(m.data, m.data + m.size);
  gst_buffer_unmap(b, &m);
  return p;
}

/* Frames of 1, 3 and 1 packets ... through rtpulpfecenc percentage=100: what it sends out, in
 * order (media packets renumbered by it, FEC packets in between). */
std::vector<Packet> encode(int frames, bool pictures = false, int skip_after = -1)
{
  GstHarness *h = gst_harness_new_parse("rtpulpfecenc pt=122 percentage=100 multipacket=true");
  gst_harness_set_src_caps_str(h,
                               "application/x-rtp,media=video,clock-rate=90000,"
                               "encoding-name=VP8,payload=96,ssrc=(uint)305441741");
  guint16 seq = 1000;
  for (int f = 0; f < frames; f++) {
    int n = f % 3 == 1 ? 3 : 1;
    // SKIP_AFTER: the encoder skipped a frame there (two intervals in RTP time).
    guint32 ts = guint32((f + (skip_after >= 0 && f > skip_after ? 1 : 0)) * 3000);
    for (int k = 0; k < n; k++)
      gst_harness_push(
          h, media_packet(seq++, ts, k == n - 1, 300 + 97 * k + f, k == 0, pictures ? f : -1));
  }
  std::vector<Packet> out;
  while (GstBuffer *b = gst_harness_try_pull(h)) {
    out.push_back(bytes(b));
    gst_buffer_unref(b);
  }
  gst_harness_teardown(h);
  return out;
}

bool is_fec(const Packet &p)
{
  return (p[1] & 0x7f) == kFecPt;
}

uint16_t seq_of(const Packet &p)
{
  return uint16_t(p[2] << 8 | p[3]);
}

struct Result {
  std::vector<Packet> rebuilt, fills;
};

Result feed(const std::vector<Packet> &stream, const std::vector<size_t> &drop,
            const std::vector<size_t> &late = {}, bool vp8 = false)
{
  ulpfec::Recovery r;
  r.set_vp8(vp8);
  Result res;
  std::vector<size_t> order;
  for (size_t i = 0; i < stream.size(); i++) order.push_back(i);
  for (size_t i : late) order.push_back(i); // a retransmission, after everything else
  for (size_t n = 0; n < order.size(); n++) {
    size_t i = order[n];
    if (n < stream.size() && std::find(drop.begin(), drop.end(), i) != drop.end()) continue;
    auto &p = stream[i];
    auto got =
        is_fec(p) ? r.fec(p.data(), p.size(), &res.fills) : r.media(p.data(), p.size(), &res.fills);
    for (auto &g : got) res.rebuilt.push_back(g);
  }
  return res;
}
} // namespace

GST_START_TEST(test_rebuilds_each_lost_media_packet)
{
  auto stream = encode(12);
  int media = 0, fec = 0;
  for (auto &p : stream) (is_fec(p) ? fec : media)++;
  fail_unless_equals_int(media, 4 * 5); // 12 frames: 8 of one packet, 4 of three
  fail_unless(fec >= 12, "one FEC packet per frame at least, got %d", fec);
  // Told apart by their shape alone (rtcpeer does not ask for the payload type's caps).
  for (auto &p : stream)
    fail_unless_equals_int(ulpfec::Recovery::looks_like_fec(p.data(), p.size()), is_fec(p));
  // Every media packet, lost alone, comes back exactly as it was sent.
  for (size_t i = 0; i < stream.size(); i++) {
    if (is_fec(stream[i])) continue;
    auto res = feed(stream, {i});
    fail_unless_equals_int(res.rebuilt.size(), 1);
    fail_unless(res.rebuilt[0] == stream[i], "packet %zu (seqnum %u) rebuilt wrong", i,
                seq_of(stream[i]));
    fail_unless(res.fills.empty());
  }
}
GST_END_TEST;

GST_START_TEST(test_two_losses_in_one_frame)
{
  auto stream = encode(6);
  // Frame 1 (three packets) is stream[2..4] (after frame 0 and its FEC): two of them lost.
  fail_unless(!is_fec(stream[2]) && !is_fec(stream[3]) && !is_fec(stream[4]));
  auto res = feed(stream, {2, 3});
  // Its three FEC packets protect different subsets: whatever is rebuilt is exactly what was sent.
  fail_unless(!res.rebuilt.empty());
  for (auto &p : res.rebuilt) {
    auto orig = std::find_if(stream.begin(), stream.end(),
                             [&](const Packet &o) { return seq_of(o) == seq_of(p); });
    fail_unless(orig != stream.end() && *orig == p);
  }
}
GST_END_TEST;

/* check(i) at each packet index i from the fifth frame on (the frame interval is known by then)
 * with `tail` packets after it where match(i) holds; returns how many there were (a test asks for
 * a few, so that it tests what it says). */
template <typename Match, typename Check>
static int for_each_match(const std::vector<Packet> &stream, size_t tail, Match match, Check check)
{
  int cases = 0;
  for (size_t i = 10; i + tail < stream.size(); i++) {
    if (!match(i)) continue;
    check(i);
    cases++;
  }
  return cases;
}

GST_START_TEST(test_lost_fec_packet_is_filled)
{
  auto stream = encode(12);
  // Each FEC packet of a frame.
  int cases = for_each_match(
      stream, 3, [&](size_t i) { return is_fec(stream[i]); },
      [&](size_t i) {
        auto res = feed(stream, {i});
        fail_unless_equals_int(res.rebuilt.size(), 0);
        fail_unless_equals_int(res.fills.size(), 1);
        fail_unless_equals_int(seq_of(res.fills[0]), seq_of(stream[i]));
        fail_unless_equals_int(res.fills[0][1] & 0x7f, kFecPt);
      });
  fail_unless(cases >= 6);
}
GST_END_TEST;

GST_START_TEST(test_lost_frame_is_not_filled)
{
  auto stream = encode(12);
  // A one-packet frame and its FEC packet both lost: two seqnums that were a frame, not FEC.
  auto one_packet_frame = [&](size_t i) {
    return !is_fec(stream[i]) && (stream[i][1] & 0x80) && is_fec(stream[i + 1]) &&
        is_fec(stream[i - 1]);
  };
  int cases = for_each_match(stream, 3, one_packet_frame, [&](size_t i) {
    auto res = feed(stream, {i, i + 1});
    fail_unless(res.fills.empty(), "a lost frame (seqnum %u) was taken for FEC", seq_of(stream[i]));
    fail_unless(feed(stream, {i, i + 1}, {}, true).fills.empty(), "VP8: a lost frame was filled");
    // Its media packet retransmitted: now the seqnum after it can only have been its FEC.
    auto late = feed(stream, {i, i + 1}, {i});
    fail_unless_equals_int(late.fills.size(), 1);
    fail_unless_equals_int(seq_of(late.fills[0]), seq_of(stream[i + 1]));
  });
  fail_unless(cases >= 2);
}
GST_END_TEST;

/* rtpulpfecenc gives a frame of k packets k FEC packets (percentage=100), each protecting a slice
 * of it: only the first one's SN base is the frame's first packet. A lost start of a frame, with
 * the FEC packet of that slice lost too, was filled as "FEC" from the next slice's base: no
 * retransmission was asked for, and the frame (here the 3-packet ones; in a run, a keyframe)
 * never decoded. */
GST_START_TEST(test_lost_frame_start_is_not_filled)
{
  auto stream = encode(12);
  // A 3-packet frame: three media packets, then its three FEC packets.
  auto frame3 = [&](size_t i) {
    return !is_fec(stream[i]) && !is_fec(stream[i + 1]) && !is_fec(stream[i + 2]) &&
        (stream[i + 2][1] & 0x80) && is_fec(stream[i - 1]) && is_fec(stream[i + 3]) &&
        is_fec(stream[i + 4]) && is_fec(stream[i + 5]);
  };
  int cases = for_each_match(stream, 6, frame3, [&](size_t i) {
    // Its first packet and the FEC packet of the first slice lost.
    for (auto &f : feed(stream, {i, i + 3}, {}, true).fills)
      fail_unless(seq_of(f) != seq_of(stream[i]), "VP8: the frame's first packet was filled");
    auto res = feed(stream, {i, i + 3});
    for (auto &f : res.fills)
      fail_unless(seq_of(f) != seq_of(stream[i]), "the frame's first packet (seqnum %u) was filled",
                  seq_of(stream[i]));
    // The lost FEC packet is filled all the same (it lies between the frame's last packet and
    // the next frame's first).
    bool filled = false;
    for (auto &f : res.fills) filled |= seq_of(f) == seq_of(stream[i + 3]);
    fail_unless(filled, "the lost FEC packet %u was not filled", seq_of(stream[i + 3]));
  });
  fail_unless(cases >= 2);
}
GST_END_TEST;

/* The FEC packets of two frames in a row lost: the first one has nothing that names the next
 * frame's first packet (the FEC packet that would, is the other one lost), so without the codec
 * it holds the next frame back until its retransmission. With VP8's start-of-frame bit both are
 * filled; a lost frame (its packet and its FEC packet) still is not. */
GST_START_TEST(test_vp8_frame_start_fills)
{
  auto stream = encode(12);
  // One-packet frame, its FEC, a one-packet frame, its FEC, and a third frame.
  auto pattern = [&](size_t i) {
    return !is_fec(stream[i]) && is_fec(stream[i + 1]) && !is_fec(stream[i + 2]) &&
        is_fec(stream[i + 3]) && !is_fec(stream[i + 4]);
  };
  int cases = for_each_match(stream, 5, pattern, [&](size_t i) {
    auto plain = feed(stream, {i + 1, i + 3});
    auto vp8 = feed(stream, {i + 1, i + 3}, {}, true);
    auto has = [](const Result &r, uint16_t seq) {
      return std::any_of(r.fills.begin(), r.fills.end(),
                         [&](const Packet &f) { return seq_of(f) == seq; });
    };
    fail_unless(!has(plain, seq_of(stream[i + 1])));
    fail_unless(has(vp8, seq_of(stream[i + 1])), "FEC packet %u not filled", seq_of(stream[i + 1]));
    fail_unless(has(vp8, seq_of(stream[i + 3])));
    // The middle frame lost (packet and FEC): never filled.
    auto lost = feed(stream, {i + 2, i + 3}, {}, true);
    fail_unless(!has(lost, seq_of(stream[i + 2])), "a lost frame (seqnum %u) was filled",
                seq_of(stream[i + 2]));
  });
  fail_unless(cases >= 2);
}
GST_END_TEST;

/* With VP8 PictureIDs the fill needs no frame interval: a frame the encoder skipped (two
 * intervals in RTP time) still has its lost FEC packet filled, and a lost frame (a gap in the
 * PictureIDs) still is not. */
GST_START_TEST(test_vp8_picture_ids)
{
  // Frame 6 (one packet) is followed by the skip: find its FEC packet.
  auto stream = encode(12, true, 6);
  size_t i = 0;
  int frames = 0;
  for (; i < stream.size(); i++)
    if (!is_fec(stream[i]) && (stream[i][1] & 0x80) && frames++ == 6) break;
  fail_unless(i + 2 < stream.size() && is_fec(stream[i + 1]) && !is_fec(stream[i + 2]));
  auto has = [](const Result &r, uint16_t seq) {
    return std::any_of(r.fills.begin(), r.fills.end(),
                       [&](const Packet &f) { return seq_of(f) == seq; });
  };
  fail_unless(!has(feed(stream, {i + 1}), seq_of(stream[i + 1]))); // by the interval: unsure
  fail_unless(has(feed(stream, {i + 1}, {}, true), seq_of(stream[i + 1])));
  // Frame 7 (three packets, then its three FEC packets) lost whole: a gap in the PictureIDs.
  fail_unless(i + 8 < stream.size() && !is_fec(stream[i + 2]) && is_fec(stream[i + 7]) &&
              !is_fec(stream[i + 8]));
  std::vector<size_t> drop = {i + 2, i + 3, i + 4, i + 5, i + 6, i + 7};
  auto lost = feed(stream, drop, {}, true);
  for (size_t k : drop)
    fail_unless(!has(lost, seq_of(stream[k])), "VP8: seqnum %u of a lost frame was filled",
                seq_of(stream[k]));
}
GST_END_TEST;

GST_START_TEST(test_level_follows_loss)
{
  fail_unless_equals_int(ulpfec::percentage_for_loss(0), 0);
  fail_unless_equals_int(ulpfec::percentage_for_loss(0.002), 0);
  fail_unless_equals_int(ulpfec::percentage_for_loss(0.005), 100); // one-packet frames
  fail_unless_equals_int(ulpfec::percentage_for_loss(0.02), 100);
  fail_unless_equals_int(ulpfec::percentage_for_loss(0.02, 20), 11); // 2 FEC packets per frame
  fail_unless_equals_int(ulpfec::percentage_for_loss(0.005, 20), 6); // 1
  fail_unless_equals_int(ulpfec::percentage_for_loss(0.3, 20), 91);  // 18 of 20
  ulpfec::LossMeter m;
  int64_t t = 0;
  m.add(t, 3, 0);
  fail_unless_equals_int(m.percentage(), 100); // before the loss is known: one FEC a frame
  for (int i = 0; i < 30; i++, t += 50'000) m.add(t, 3, 0);
  fail_unless_equals_int(m.percentage(), 100);               // still, 1.5 s in
  for (int i = 0; i < 200; i++, t += 50'000) m.add(t, 3, 0); // 10 s clean
  fail_unless_equals_int(m.percentage(), 0);
  m.add(t, 10, 1); // one loss: protection within this feedback
  fail_unless(m.percentage() >= 50, "got %u", m.percentage());
  for (int i = 0; i < 40; i++, t += 50'000) m.add(t, 3, 0); // 2 s clean: held
  fail_unless(m.percentage() > 0);
  for (int i = 0; i < 200; i++, t += 50'000) m.add(t, 3, 0); // 10 s clean: off again
  fail_unless_equals_int(m.percentage(), 0);
}
GST_END_TEST;

static Suite *ulpfec_suite()
{
  Suite *s = suite_create("ulpfec");
  TCase *tc = tcase_create("general");
  tcase_add_test(tc, test_rebuilds_each_lost_media_packet);
  tcase_add_test(tc, test_two_losses_in_one_frame);
  tcase_add_test(tc, test_lost_fec_packet_is_filled);
  tcase_add_test(tc, test_lost_frame_is_not_filled);
  tcase_add_test(tc, test_lost_frame_start_is_not_filled);
  tcase_add_test(tc, test_vp8_frame_start_fills);
  tcase_add_test(tc, test_vp8_picture_ids);
  tcase_add_test(tc, test_level_follows_loss);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(ulpfec);
