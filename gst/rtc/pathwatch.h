// SPDX-License-Identifier: LGPL-2.1-or-later
/* Recovery from a dead ICE path (the interface of the selected pair went away: Wi-Fi or VPN down;
 * or a NAT on the way forgot the connection's UDP mappings). libnice 0.1.21 has no consent
 * freshness (RFC 7675) and keeps sending on such a pair, so rtcpeer watches each connected
 * session's transport itself: DTLS packets (SCTP data, heartbeats) always draw a reply (SACK,
 * heartbeat ack) within one RTT plus the 200 ms delayed SACK; when something we sent more than
 * kArmAfter after the last inbound packet gets no inbound packet for kSilence while the local
 * address is gone, or for kConsent whatever the addresses, the path is dead. The session is
 * then rebuilt while the peer is in the room: a fresh webrtcbin and a new offer (a new DTLS
 * fingerprint: the remote's perfect negotiation takes it as a restarted peer). Context thread
 * unless noted. */
#pragma once

#include "rtc/gstrtcpeer.h"

#include <gst/gst.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

namespace pointcast::rtc {

struct Session;

// Shared by a session's transport probes (streaming threads) and its channels' send path.
struct PathWatch {
  std::atomic<gint64> last_in_us{0}; // monotonic time of the last inbound packet
  std::atomic<gint64> armed_us{0};   // first packet sent unanswered since then, 0: none
  // Under lock, from libnice's thread: the foundation of the selected pair's local candidate.
  std::mutex lock;
  std::string selected_local;
  // Context thread: the pair last posted as rtcpeer-ice-pair (rtc/iceservers.h), "" before.
  std::string reported_pair;
};

// At session creation: probes on its ICE transport.
void watch_path(GstRtcPeer *self, const std::shared_ptr<Session> &s);
// Once connected: checks the path every 0.5 s until the session is removed.
void start_path_checks(GstRtcPeer *self, const std::shared_ptr<Session> &s);
/* The path of a connected session is gone (why: for the warning): rebuild it if we may offer
 * (else remove it and wait for the remote's offer). False, doing nothing, if the session was not
 * connected or its peer's signaling left (session.cpp's grace period removes it). */
bool lose_path(GstRtcPeer *self, const std::shared_ptr<Session> &s, const char *why);
/* The remote replaced the connected session s with a new connection (its offer with a new
 * identity: it found the silence first, or restarted). If what we sent on s had drawn nothing
 * for kSilence, that is one more of the peer's connections that went silent (check_path's
 * bound); any other end breaks the row. True when it was one too many: the peer was removed
 * with a warning and its offer must not be answered. */
bool replaced_while_silent(GstRtcPeer *self, const std::shared_ptr<Session> &s);
/* The peer registered again (peer_joined, or present when we registered again) while its
 * session is connected: a signaling hiccup, or its process restarted under the same id (SIGKILL,
 * a container or pod restart), which left our connection dead and the new process waiting for an
 * offer (as a newcomer it answers). Heard from on the connection within 0.3 s: the same one.
 * Else we offer on it: an answer with the old identity is the same connection, one with a new
 * identity (or none in 5 s while still silent) means the peer restarted, and the session is
 * rebuilt as for a lost path; so is one answered with the old identity whose sends still draw
 * nothing 5 s after the registration (a rebooted NAT: new mappings). An answerer waits for the remote's offer (a new identity: a new
 * connection, session.cpp's Recreate). */
void check_rejoined(GstRtcPeer *self, const std::shared_ptr<Session> &s);

} // namespace pointcast::rtc
