// SPDX-License-Identifier: LGPL-2.1-or-later
/* The RTCP rate of a session, from what its link shows. Repairs need RTCP every ~30 ms
 * (rtcp-rr/rs-bandwidth 40000: AVPF allows one early packet per regular interval, so NACKs and
 * TWCC feedback wait for the regular packets; mediasend.h), but on a clean link those ~35 packets
 * a second each way (reports, TWCC feedback, SRTCP, a thread hop each) were a fifth of the ball
 * loop's CPU on loopback. So a session reports at 5000 (~4 packets a second) until its link shows
 * trouble, and at 40000 from then on until it has been clean for kCleanUs:
 * - a jitterbuffer's first 5 s (FEC's first seconds, the first losses of a lossy link);
 * - a retry of a retransmission request from one of its jitterbuffers (at once: the first
 *   request itself leaves as an early packet; a first request alone is also what a packet late
 *   on a busy machine draws);
 * - lost packets, a packet repaired by retransmission or rebuilt from FEC, or a jitter over 10 ms (a queue building
 *   on the path) in its stats, checked once a second.
 * A session that only sends has no jitterbuffer and is left to mediasend.cpp's tune_rtcp (2000
 * once connected 2 s): its reports carry nothing a repair waits on (the receiver's NACKs and
 * TWCC feedback are the receiver's RTCP). */
#pragma once

#include <gst/gst.h>

namespace pointcast::rtc::rtcprate {

// A new rtpsession in a webrtcbin: the slow rate.
void configure_session(GstElement *rtpsession);
// rtpbin's new-jitterbuffer for SESSION: its link's state sets that rtpsession's rate.
void watch_jitterbuffer(GstElement *rtpbin, GstElement *jitterbuffer, guint session);

} // namespace pointcast::rtc::rtcprate
