// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's ICE servers (stun-server, turn-server, turn-tls-ca, ice-transport-policy): checked at
 * start (rtc/iceconfig.h), turns:// carried over TLS tunnels of our own (rtc/turntls.h), applied
 * to each session's webrtcbin, and a TURN server that gave no relay candidate asked why
 * (rtc/turnprobe.h). Context thread unless noted. */
#pragma once

#include "rtc/session.h"

#include <memory>
#include <string>

namespace pointcast::rtc {

// The values well formed (else an element error naming the problem), the TLS tunnels started.
// At start (READY -> PAUSED), from the streaming thread of the state change.
bool check_ice_servers(GstRtcPeer *self);
// STUN_URI / TURN_LIST (the property values read with the session's other settings) and the
// transport policy onto a new session's webrtcbin.
void apply_ice_servers(GstRtcPeer *self, GstElement *webrtc, const std::string &stun_uri,
                       const std::string &turn_list);
// Once per session, when its gathering is complete: a warning per TURN server if no relay
// candidate came, with the server's own answer (asked on a thread of its own).
void warn_if_no_relay(GstRtcPeer *self, const std::shared_ptr<Session> &s);
// Once connected, and again whenever libnice selects another pair (rtc/pathwatch.cpp): the
// candidate pair that carries the session, from libnice, as an INFO line and the element message
// `rtcpeer-ice-pair` (peer-id, local-type, local-address, remote-type, remote-address, protocol;
// types host, srflx, prflx, relay): is it direct, through a NAT's mapping, or relayed? A pair
// already posted for the session is not posted again.
void report_selected_pair(GstRtcPeer *self, const std::shared_ptr<Session> &s);

} // namespace pointcast::rtc
