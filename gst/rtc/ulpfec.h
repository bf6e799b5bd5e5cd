// SPDX-License-Identifier: LGPL-2.1-or-later
/* ULPFEC (RFC 5109) on the receive side, as soon as a packet can be rebuilt, and the sender's
 * protection level from the loss it is told about. Pure C++ over RTP packet bytes.
 *
 * Why not webrtcbin's own rtpulpfecdec: rtpbin puts it after the jitterbuffer, and it rebuilds
 * a packet only when the jitterbuffer declares it lost, which with retransmissions on is at the
 * jitterbuffer's deadline (its latency, 200 ms), long after a retransmission would have come.
 * Recovery rebuilds a packet the moment the FEC packet and all the other packets it protects
 * are in, and rtcpeer hands it to the jitterbuffer before its retransmission request is due. */
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <vector>

namespace pointcast::ulpfec {

using Packet = std::vector<uint8_t>;

class Recovery {
public:
  // A media packet (whole RTP packet) of the protected stream. Returns the packets it let
  // Recovery rebuild (whole RTP packets, each with the stream's SSRC). FILLS: as for fec(), the
  // FEC packets lost after a frame whose last packet this is (it came late: a retransmission).
  std::vector<Packet> media(const uint8_t *data, size_t size, std::vector<Packet> *fills = nullptr);
  // An FEC packet (RTP packet whose payload is RFC 5109 FEC, RED already removed). FILLS, when
  // given, gets a placeholder (an empty packet of the FEC payload type) for each seqnum missing
  // just before this packet's protected set that can only have been an FEC packet of the frame
  // before: see fill_lost_fec().
  std::vector<Packet> fec(const uint8_t *data, size_t size, std::vector<Packet> *fills = nullptr);

  /* Whether a packet whose payload type is not the stream's media one is an RFC 5109 FEC
   * packet: E clear, a protection length that is exactly the rest of the payload, a mask, and
   * a protected set just before the packet's own seqnum. (Not by asking rtpbin
   * for the payload type's caps: that runs webrtcbin's request-pt-map handler, which takes its
   * lock, from the streaming thread.) */
  static bool looks_like_fec(const uint8_t *data, size_t size);

  uint64_t recovered() const { return recovered_; }
  uint64_t fec_packets() const { return fec_in_; }
  uint64_t filled() const { return filled_; }
  /* The media is VP8 (RFC 7741): a packet whose payload descriptor has S set and partition 0
   * starts a frame, so the seqnums between a frame's last packet and the next frame's first
   * (one frame interval apart) were FEC packets even when no FEC packet names that first
   * packet as its SN base (it was lost as well). */
  void set_vp8(bool vp8) { vp8_ = vp8; }

private:
  struct Fec {
    uint16_t base = 0;
    std::vector<uint16_t> protects;
    Packet body; // the FEC payload (headers + level 0 payload)
    size_t headers = 0;
    uint32_t ssrc = 0;
  };
  void store(uint16_t seq, const uint8_t *data, size_t size);
  std::vector<Packet> resolve();
  bool rebuild(const Fec &f, uint16_t missing, Packet &out) const;
  void fill_lost_fec(uint16_t base, std::vector<Packet> &fills);
  void fill_between(uint16_t marker, uint16_t base, std::vector<Packet> &fills);
  void note_frame(const Packet &p);

  std::map<uint16_t, Packet> media_; // by seqnum, the last kWindow seqnums
  std::deque<Fec> fecs_;
  std::deque<uint16_t> fec_seen_; // seqnums of FEC packets received or filled
  struct Seen {                   // an FEC packet received
    uint16_t seq, base;           // its own seqnum, its SN base
    uint16_t last;                // the last packet it protects
  };
  std::deque<Seen> seen_;
  bool frame_start(const Seen &f) const;
  bool vp8_start(const Packet &p) const;
  int vp8_picture_id(const Packet &p) const;
  bool vp8_ = false;
  uint8_t fec_pt_ = 0;
  uint32_t ssrc_ = 0;
  std::deque<uint32_t> intervals_; // RTP timestamp steps between recent frames
  uint32_t last_frame_ts_ = 0;
  bool have_frame_ = false;
  uint16_t newest_ = 0;
  bool any_ = false;
  uint64_t recovered_ = 0, fec_in_ = 0, filled_ = 0;
};

/* The FEC percentage (rtpulpfecenc's `percentage`: FEC packets per 100 media packets) for a
 * loss fraction the receiver reports and the frames' size in packets. None on a clean link.
 * rtpulpfecenc protects a frame's packets with FEC packets sent right after that frame, so the
 * unit is FEC packets per frame: at least one (a frame without one waits a retransmission round
 * trip for any lost packet), more as a frame's expected losses grow. For one-packet frames (the
 * ball loop) that is 100 %, for 20-packet frames at 2 % loss 1-2 FEC packets, 6-11 %. */
unsigned percentage_for_loss(double loss, double packets_per_frame = 1.0);

/* Loss over recent feedback (packets reported received / lost), smoothed over about a second;
 * percentage() holds a raised level for a few seconds so that one clean second does not switch
 * the protection off between random losses. For the first 3 s, before the loss is known, it
 * protects as for 1 % loss (one FEC packet a frame): the first loss of a lossy link otherwise
 * always waited a retransmission (the late frame of every run at 2 % loss), and a lost
 * keyframe at the start costs the most. On a clean link that ends 8 s in. (FEC was held off for
 * the first second for a while: FEC packets in flight while rtcpeer renegotiated got a payload
 * type the receiver's webrtcbin still called RTX. fec.cpp keeps FEC packets from rtpptdemux now,
 * see on_jitterbuffer_out.)
 */
class LossMeter {
public:
  void add(int64_t now_us, unsigned received, unsigned lost);
  // Packets per frame of the stream sent (the FEC amount depends on it).
  void set_frame_packets(double n) { frame_packets_ = n; }
  double loss() const { return loss_; }
  unsigned percentage() const { return held_; }

private:
  double loss_ = 0;
  bool measured_ = false;
  int64_t start_ = -1;
  double frame_packets_ = 1.0;
  int64_t window_start_ = -1;
  unsigned got_ = 0, lost_ = 0;
  unsigned held_ = 0;
  int64_t held_since_ = -1;
  void close_window(int64_t now_us);
};

} // namespace pointcast::ulpfec
