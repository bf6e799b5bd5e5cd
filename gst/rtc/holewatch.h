// SPDX-License-Identifier: LGPL-2.1-or-later
/* A keyframe behind a hole ends the jitterbuffer's wait for the hole (issue 13: "video again
 * within one RTT-plus-keyframe").
 *
 * rtpjitterbuffer (1.22) holds every packet behind a missing one until the hole's deadline (its
 * latency, 200 ms) even after its retries are used up, and rtcpeer's VP8 gate only learns of the
 * loss then and asks for a keyframe: a packet lost together with its retransmission froze the
 * video for the deadline plus a round trip plus the keyframe (~9 frames at 50 ms RTT). Here, in
 * front of the jitterbuffer:
 * - a hole older than its retransmission should take (twice the jitterbuffer's rtx-rtt + 30 ms)
 *   asks the sender for a keyframe at once (once per hole);
 * - when a keyframe has arrived whole behind holes whose retransmission is overdue (as old as
 *   the ask), those holes are given up: a header-only packet
 *   with each missing seqnum goes into the jitterbuffer, which releases everything at once; after
 *   it the fills are dropped and the next packet flagged DISCONT with a GstRTPPacketLost event, as
 *   the jitterbuffer does for a hole it gives up (marked: the gate need not ask for a keyframe
 *   of its own). The gate drops the frames that needed the hole and passes the keyframe.
 * HoleWatch is the pure part: seqnums, markers and keyframe starts in, fills and asks out. */
#pragma once

#include <gst/gst.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace pointcast::holewatch {

class HoleWatch {
public:
  // Holes tracked at most; a larger jump restarts the watch (the jitterbuffer resets then too).
  static constexpr size_t kMaxHoles = 512;
  struct Packet {
    uint16_t seq = 0;
    uint32_t ts = 0;
    bool marker = false;
    bool key_start = false; // a VP8 keyframe's first packet
  };
  struct Fill {
    uint16_t seq;
    uint32_t ts; // of the packet before the hole
  };
  struct Action {
    std::vector<Fill> fill; // give these up now, oldest first
    bool ask_keyframe = false;
  };
  /* One packet into the jitterbuffer, in arrival order (any payload type of the SSRC: FEC
   * packets hold seqnums too). WINDOW_US: how long the jitterbuffer waits for a hole (older ones
   * are its own again); ASK_US: a hole this old asks for a keyframe (none when >= WINDOW_US). */
  Action packet(const Packet &p, int64_t now_us, int64_t window_us, int64_t ask_us);
  void reset();
  size_t holes() const { return holes_.size(); }
  uint64_t filled() const { return filled_; }
  uint64_t asked() const { return asked_; }

private:
  struct Hole {
    int64_t since_us;
    uint32_t ts;
    bool asked;
  };
  std::map<int64_t, Hole> holes_; // by extended seqnum
  int64_t highest_ = -1;          // extended seqnum of the highest packet seen
  uint32_t highest_ts_ = 0;
  int64_t key_start_ = -1, key_end_ = -1; // the newest keyframe's packets, extended
  uint32_t key_ts_ = 0;
  uint64_t filled_ = 0, asked_ = 0;
};

/* Whether EV is the GstRTPPacketLost event the watch pushes for a hole it gave up: a whole
 * keyframe follows it, so whoever would ask for one after the loss need not. */
bool keyframe_follows(GstEvent *ev);

// rtpbin's new-jitterbuffer: a HoleWatch on JITTERBUFFER's VP8 (its sink and src pads).
void watch_holes(GstElement *jitterbuffer);

} // namespace pointcast::holewatch
