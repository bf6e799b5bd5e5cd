// SPDX-License-Identifier: LGPL-2.1-or-later
/* The VP8 layer gate, in front of rtpvp8depay in place of its wait-for-keyframe and
 * request-keyframe: drops what cannot be decoded after a loss and asks for a keyframe.
 *
 * What rtcpeer uses (layers off): every lost frame stops the decoder until a keyframe, as
 * before, but the sender is asked at the loss and again only every 100 ms, where
 * rtpvp8depay asked once per frame it dropped (36 requests for one loss in rtc-layergate), and
 * nothing of a
 * frame with a hole in it reaches the depayloader (it does not rely on the depayloader's own
 * seqnum check).
 *
 * With layers (USE_LAYERS): rtcpeer's VP8 has three temporal layers (cc::Layering,
 * mediacc::set_temporal_layers): a base frame every 4th, referencing and updating only the last
 * base frame; the others reference only that and update no reference and no entropy context.
 * So after a loss the frames that do not depend on the lost one could go on: a base frame
 * (TID 0) when the base frame before it (TL0PICIDX - 1) was decoded, a frame above it with Y
 * (layer sync) when its base frame was, one without Y also only when no frame of its layer or
 * below was lost since that layer's last sync, and a stream without TID/TL0PICIDX only when no
 * frame at all was lost (RFC 7741's descriptor, so other senders' VP8 is safe too). Through
 * vp8enc, rtpvp8pay, rtpvp8depay and vp8dec (rtc-layergate) every frame after a lost upper one
 * decodes to exactly the picture it has without the loss (by hand also with snow, four bitrate
 * changes and two forced keyframes). The misdecoded frames once seen with the gate on the live
 * path (net-adapt-noisy-rate1m: the ball 6-40 px off for a few frames, in 3 of 6 runs) came from
 * a buffer flagged DISCONT in the middle of a frame without a seqnum gap (rtpjitterbuffer flags
 * the buffer after a lost event): rtpvp8depay drops the frame it was building, and the gate,
 * which counted only seqnum gaps, let the frames that need it through. It now counts the flag
 * as a gap (rtc-layergate test_discont_mid_frame). Pure C++: Gate sees the
 * packets' seqnums, markers and descriptors. */
#pragma once

#include <gst/gst.h>

#include <array>
#include <cstddef>
#include <cstdint>

namespace pointcast::layergate {

// What the VP8 payload descriptor (RFC 7741 4.2) and header say about one packet.
struct Vp8Packet {
  bool start = false;    // S set and partition 0: the frame's first packet
  bool keyframe = false; // on a start packet: the VP8 header's P bit clear
  int picture_id = -1;   // 7 or 15 bits; -1: none
  bool long_id = false;  // 15-bit PictureID
  int tl0 = -1;          // TL0PICIDX; -1: none
  int tid = -1;          // temporal layer; -1: none
  bool sync = false;     // Y: depends only on the base layer
};
// False when PAYLOAD is too short for its descriptor.
bool parse_vp8(const uint8_t *payload, size_t len, Vp8Packet &out);

class Gate {
public:
  static constexpr int kLayers = 4; // TID has 2 bits
  // Again while still waiting: the sender's own keyframe gate (mediacc::KeyframeGate).
  static constexpr int64_t kAskUs = 100'000;
  // USE_LAYERS false: every lost frame waits for a keyframe, as rtpvp8depay's own did.
  explicit Gate(bool use_layers = true) : use_layers_(use_layers) {}
  struct Verdict {
    bool pass = true;
    bool ask_keyframe = false; // request one now (rate-limited here)
  };
  // One RTP packet, in the order the depayloader gets it. DISCONT: the buffer's flag (the
  // jitterbuffer sets it after a lost event): rtpvp8depay then drops the frame it was building,
  // as after a seqnum gap.
  Verdict packet(uint16_t seq, bool marker, const Vp8Packet &p, int64_t now_us,
                 bool discont = false);
  // A keyframe is on its way (the hole watch gave up a hole because one arrived whole behind
  // it): a break within the next kAskUs asks nothing; one after that asks as usual.
  void keyframe_follows(int64_t now_us) { keyframe_due_us_ = now_us; }
  // A flush or a new stream: nothing decodes until a keyframe.
  void reset();
  bool synced() const { return synced_; }
  uint64_t frames_passed() const { return passed_; }
  uint64_t frames_dropped() const { return dropped_; }

private:
  void finish_frame(bool complete);
  void broken();
  bool ask(bool dropping, int64_t now_us);

  bool use_layers_;
  bool have_seq_ = false;
  uint16_t next_seq_ = 0;
  // The frame being received.
  bool in_frame_ = false, cur_ok_ = false, cur_pass_ = false;
  Vp8Packet cur_;
  int last_picture_id_ = -1; // of the last frame seen (complete or not)
  int lost_picture_id_ = -1; // a frame whose start never came, already accounted for
  // What the decoder has: a base chain since a keyframe, its last base frame, and per layer
  // whether a frame was lost since that layer's last sync frame.
  bool synced_ = false;
  int base_tl0_ = -1;
  std::array<bool, kLayers> layer_lost_{};
  int64_t asked_us_ = -1;
  bool ask_pending_ = false;
  int64_t keyframe_due_us_ = -1;
  uint64_t passed_ = 0, dropped_ = 0;
};

/* Puts a Gate in front of RTPVP8DEPAY (on its sink pad) in place of its own wait-for-keyframe
 * and request-keyframe: the gate drops what cannot be decoded and asks for keyframes upstream
 * (GstForceKeyUnit, which rtpsession sends as a PLI). */
void gate_vp8_depayloader(GstElement *rtpvp8depay, bool use_layers);

} // namespace pointcast::layergate
