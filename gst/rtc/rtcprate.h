// SPDX-License-Identifier: LGPL-2.1-or-later
/* The RTCP timing of every rtpsession in rtcpeer's webrtcbins: the one place that sets its RTCP
 * bandwidth (rtcp-rr/rs-bandwidth), which sets its regular interval.
 *
 * rtpsession's regular interval is at least rtcp-min-interval (5 s by default), and AVPF allows
 * one early packet (NACK, TWCC feedback) per regular interval: the TWCC feedback of one frame took
 * the slot and NACKs waited for the next regular packet, up to 4.5 s (rtpsession's log through the
 * harness). With AVPF and a 20 ms rtcp-min-interval the interval is the RTCP bandwidth's: at 8000
 * it was 295 ms (repairs 67-396 ms after the gap showed); 40000 gives ~30 ms (repairs 31-40 ms
 * after it, rtx-rtt 53 ms at 50 ms RTT). TWCC feedback goes every 50 ms with the regular packets.
 *
 * But on a clean link those ~35 packets a second each way (reports, TWCC feedback, SRTCP, a thread
 * hop each) were a fifth of the ball loop's CPU on loopback, and a third of a sender's with 8
 * viewers. So the bandwidth follows what the session does and what its link shows:
 * - kSlow (5000, ~4 packets a second) from its creation;
 * - a session that receives media (it has a jitterbuffer): kFast (40000) while its link may need
 *   repairs, kSlow once it has been clean for 10 s. Trouble is
 *   - a jitterbuffer's first 5 s of RTP (FEC's first seconds, the first losses of a lossy link;
 *     not from its creation: one made for an SSRC seen only in RTCP gets none);
 *   - a retry of a retransmission request from one of its jitterbuffers (at once: the first
 *     request itself leaves as an early packet; a first request alone is also what a packet late
 *     on a busy machine draws);
 *   - lost packets, a packet repaired by retransmission or rebuilt from FEC in its stats, checked
 *     once a second (Trouble below);
 *   - a queue building on the path (DelayTrend below, at once): its delay's floor rising. Not
 *     the jitterbuffer's jitter, as before: a loaded host's own scheduling showed 10-17 ms of it
 *     (the fan-out bench's viewers on loopback), over 10 ms at two checks in a row for most of
 *     them, and every viewer at the fast rate sent the sender as many RTCP packets as it got
 *     RTP, the larger half of its CPU with 8 viewers;
 * - a session connected for 2 s without a jitterbuffer only sends: kSendOnly (800, a sender
 *   report every ~1 s, as libwebrtc sends them for video). Its reports carry nothing a repair
 *   waits on: the viewer's NACKs and TWCC feedback go by the viewer's own interval, and its
 *   reports echo our latest one for the RTT. At 2000 (~2.6 a second) the RTCP threads were
 *   0.4-0.7 % of a core with 8 viewers, under 0.05 % at 800 (bench/fanout --threads). Whether media comes
 *   in is known from rtpbin's jitterbuffers, not the transceiver's direction (webrtcbin answers
 *   sendrecv without a track to send); its first jitterbuffer puts it on the rule above. */
#pragma once

#include <gst/gst.h>

namespace pointcast::rtc::rtcprate {

// What a jitterbuffer's stats say at one check (counters since its start).
struct LinkStats {
  guint64 lost = 0, repaired = 0, rebuilt = 0;
};

// The checks of one jitterbuffer, one a second: why its link needs repairs now, or null.
class Trouble {
public:
  const char *check(const LinkStats &now);

private:
  LinkStats last_;
};

/* Whether a queue builds on a stream's path, from its packets' arrival against their RTP time:
 * per 100 ms of arrival the least (arrival - RTP time), the delay's floor up to a constant;
 * a queue when the floor of the last 500 ms is over 10 ms above that of the 500 ms before.
 * Scheduling delays and stalls on a busy host make some packets late, not all of them: a
 * window's least stays where it was (the packet that arrives after a stall is the one sent last,
 * on time), where the jitter estimate (RFC 3550) adds up every late one. Takes the first
 * packet of each RTP timestamp (a frame's later packets only follow it). */
class DelayTrend {
public:
  // ARRIVAL in ns on any monotonic clock; CLOCK_RATE of TS's payload type. True: a queue.
  bool packet(gint64 arrival, guint32 ts, guint clock_rate);

private:
  void restart(gint64 arrival, guint32 ts, guint clock_rate);
  static constexpr int kWindows = 10; // two halves of 5
  bool started_ = false;
  guint clock_rate_ = 0;
  guint32 last_ts_ = 0;
  gint64 ticks_ = 0; // RTP time since the first packet, unwrapped
  gint64 last_arrival_ = 0;
  gint64 window_end_ = 0; // arrival where the current window closes
  gint64 least_ = 0;      // the current window's least delay
  gint64 floors_[kWindows] = {};
  int closed_ = 0; // windows closed since the start (floors_ is a ring)
};

// webrtcbin's new rtpsession: its RTCP timing (kSlow until more is known).
void configure_session(GstElement *rtpsession);
// rtpbin's new-jitterbuffer for SESSION: that rtpsession receives; its link sets its rate.
void watch_jitterbuffer(GstElement *rtpbin, GstElement *jitterbuffer, guint session);
// WEBRTC (a webrtcbin) is connected: its rtpsessions with no jitterbuffer 2 s later only send.
void connected(GstElement *webrtc);

} // namespace pointcast::rtc::rtcprate
