// SPDX-License-Identifier: LGPL-2.1-or-later
/* The VP8 layer gate: after a loss, frames that do not depend on what was lost go on to the
 * decoder, and only those that do are dropped (until a keyframe).
 *
 * Why: rtpvp8depay's wait-for-keyframe drops every frame after a loss until the next keyframe,
 * and a packet (and its retransmission) lost for good cost 8-25 frames, a second under load.
 * rtcpeer's VP8 has three temporal layers (cc::Layering, mediacc::set_temporal_layers): a base
 * frame every 4th, referencing and updating only the last base frame; the others reference only
 * that base frame and update no reference and no entropy context, so nothing depends on them.
 * Three losses in five are such frames (60 % of the bits): each now costs itself alone. A lost
 * base frame still breaks the chain until a keyframe, which the gate then asks for.
 *
 * The rules follow RFC 7741's payload descriptor, so other senders' VP8 is safe too: a base
 * frame (TID 0) decodes when the base frame before it (TL0PICIDX - 1) did; a frame above it
 * with Y (layer sync) when its base frame did; one without Y also only when no frame of its
 * layer or below was lost since that layer's last sync; a stream without TID/TL0PICIDX, as
 * before, only when no frame at all was lost (a gap with no PictureID to tell FEC from a frame
 * counts as a lost frame). Pure C++: Gate sees the packets' seqnums, markers and descriptors. */
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
  static constexpr int kLayers = 4;          // TID has 2 bits
  static constexpr int64_t kAskUs = 200'000; // again while still waiting: ~RTT + a keyframe
  struct Verdict {
    bool pass = true;
    bool ask_keyframe = false; // request one now (rate-limited here)
  };
  // One RTP packet, in the order the depayloader gets it.
  Verdict packet(uint16_t seq, bool marker, const Vp8Packet &p, int64_t now_us);
  // A flush or a new stream: nothing decodes until a keyframe.
  void reset();
  bool synced() const { return synced_; }
  uint64_t frames_passed() const { return passed_; }
  uint64_t frames_dropped() const { return dropped_; }

private:
  void finish_frame(bool complete);
  void broken();
  bool ask(bool dropping, int64_t now_us);

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
  uint64_t passed_ = 0, dropped_ = 0;
};

/* Puts a Gate in front of RTPVP8DEPAY (on its sink pad) in place of its own wait-for-keyframe
 * and request-keyframe: the gate drops what cannot be decoded and asks for keyframes upstream
 * (GstForceKeyUnit, which rtpsession sends as a PLI). */
void gate_vp8_depayloader(GstElement *rtpvp8depay);

} // namespace pointcast::layergate
