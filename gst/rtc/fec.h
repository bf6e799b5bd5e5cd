// SPDX-License-Identifier: LGPL-2.1-or-later
/* RED/ULPFEC for rtcpeer's video (issue 13): webrtcbin 1.22 builds the sender's rtpulpfecenc +
 * rtpredenc when a transceiver has fec-type=ulp-red, and negotiates red/ulpfec payload types
 * (in an offer always, in an answer when the offer has them). rtcpeer adds:
 * - the amount: fec-percentage per viewer from the loss its TWCC feedback reports (none on a
 *   clean link), and that share taken off the viewer's encoder budget (EncoderControl);
 * - the receive side: packets rebuilt the moment they can be (ulpfec.h), in front of the
 *   jitterbuffer, not at its deadline as webrtcbin's rtpulpfecdec does. */
#pragma once

#include "rtc/gstrtcpeer.h"

#include <gst/webrtc/webrtc.h>

#include <string>

namespace pointcast::rtc {

struct MediaSend;

// Video transceivers: RED + ULPFEC offered (or accepted), no FEC packets until loss is reported.
void enable_fec(GstWebRTCRTPTransceiver *trans);
/* ctx: PEER's feedback on the track sent out of PAD (its webrtcbin sink pad) sets the
 * transceiver's fec-percentage (FIXED instead when it is > 0: the fec-percentage property) and
 * tells M's encoder control the overhead. */
void watch_fec(GstRtcPeer *self, MediaSend *m, const std::string &peer, GstPad *pad,
               GstWebRTCRTPTransceiver *trans, int fixed);
// rtpbin's new-jitterbuffer: early ULPFEC recovery in front of it.
void recover_fec(GstElement *jitterbuffer);
// Packets rebuilt so far by recover_fec in front of JITTERBUFFER (also in its debug log).
guint64 fec_recovered(GstElement *jitterbuffer);

} // namespace pointcast::rtc
