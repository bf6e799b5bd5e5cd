// SPDX-License-Identifier: LGPL-2.1-or-later
/* The signaling side of rtcpeer, kept apart from the bin (as in gst-plugins-rs' webrtcsink):
 * the bin only manages pads and webrtcbin sessions; a Signaller only moves SDP and candidates.
 * Transports implementing it: the room WebSocket protocol (ws:// wss://), aiortc's
 * TcpSocketSignaling (tcp://), an HTTP offer/answer POST (http:// https://), a Janus VideoRoom
 * (janus:// januss://) and local:// for tests. */
#pragma once

#include <glib.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pointcast {

enum class Role { Auto, Offerer, Answerer };

struct SignallerConfig {
  std::string uri; // ws://host:port/ws, tcp://host:port, http://host:port/offer
  std::string room = "default";
  std::string peer_id; // empty: the signaller picks a unique one
  std::string peer_type = "gstreamer";
  std::string target; // peer to call; empty: offer to every peer that joins (or answer)
  std::string token;
  Role role = Role::Auto;
};

/* Events a signaller reports. All are invoked from the GMainContext passed to start(). */
struct SignallerEvents {
  // Registered with the server / socket connected. `present` lists peers already there (id, type).
  std::function<void(const std::vector<std::pair<std::string, std::string>> &present)> ready;
  // A remote peer appeared that this side may call (ws: peer_joined; tcp: connection accepted;
  // http: the server behind the URL).
  std::function<void(const std::string &peer, const std::string &peer_type)> peer_joined;
  std::function<void(const std::string &peer)> peer_left;
  // type is "offer" or "answer".
  std::function<void(const std::string &peer, const std::string &type, const std::string &sdp)> sdp;
  // An empty candidate string means end-of-candidates.
  std::function<void(const std::string &peer, const std::string &mid, int mline,
                     const std::string &candidate)>
      candidate;
  // Something went wrong. fatal=false: recoverable (the signaller retries, e.g. reconnecting);
  // fatal=true: it gave up (refused token, bad URI) and the element should post an error.
  std::function<void(const std::string &reason, bool fatal)> error;
  // Signaling connection lost; established peer connections are not affected.
  std::function<void(const std::string &reason)> disconnected;
};

class Signaller {
public:
  virtual ~Signaller() = default;
  Signaller(const Signaller &) = delete;
  Signaller &operator=(const Signaller &) = delete;

  // Connect (or listen) and start reporting events on ctx. Never blocks.
  virtual void start(GMainContext *ctx, SignallerEvents events) = 0;
  // Say goodbye where the protocol has a way to, and release sockets. Idempotent.
  virtual void stop() = 0;
  virtual void send_sdp(const std::string &peer, const std::string &type,
                        const std::string &sdp) = 0;
  virtual void send_candidate(const std::string &peer, const std::string &mid, int mline,
                              const std::string &candidate) = 0;
  // false: the remote cannot trickle (aiortc); send SDP only once ICE gathering is complete,
  // with every candidate inside, and never call send_candidate.
  virtual bool trickles() const = 0;
  // Whether this particular remote peer trickles. Defaults to trickles(); the room protocol
  // overrides it for offers that carry "trickle": false (the daemon's HTTP /offer bridge).
  virtual bool peer_trickles(const std::string &peer) const { return trickles(); }
  // Whether our answer to this peer must open a data channel of its own even with no data_%s
  // sink pad: a Janus subscription relays nothing until the subscriber has opened one.
  virtual bool answerer_opens_channel(const std::string &peer) const { return false; }
  // Non-empty: every data channel this peer opens comes out as data_<this> (a Janus VideoRoom
  // relays all of a publisher's channels as one, labelled with its feed id). Asked once per peer.
  virtual std::string data_label(const std::string &peer) const { return ""; }
  // The role this transport implies when the element's role is auto
  // (tcp: offerer listens, answerer connects; http: always offerer).
  virtual Role resolve_role(Role requested) const { return requested; }

protected:
  Signaller() = default;
};

/* Builds the signaller for cfg.uri's scheme; on a bad URI returns nullptr and sets *error.
 * A comma-separated list of URIs gives a failover signaller: it uses the first, and when that
 * connection drops (or cannot be reached) moves on to the next, round the list, registering
 * under the same peer id; established peer connections are not touched.
 * Dispatches to the per-transport factories below (each in its own file), and checks every
 * event they report (rtc/sigcheck.h): an SDP, candidate or peer id that is too long, not UTF-8,
 * holds NUL or control characters is refused with an error event (not fatal) instead. */
std::unique_ptr<Signaller> make_signaller(const SignallerConfig &cfg, std::string *error);

std::unique_ptr<Signaller> make_ws_signaller(const SignallerConfig &cfg, std::string *error);
std::unique_ptr<Signaller> make_tcp_signaller(const SignallerConfig &cfg, std::string *error);
std::unique_ptr<Signaller> make_http_signaller(const SignallerConfig &cfg, std::string *error);
// local://NAME: peers in one process find each other by NAME; for fast in-process tests.
std::unique_ptr<Signaller> make_local_signaller(const SignallerConfig &cfg, std::string *error);
// janus://host:port/ROOM: a Janus VideoRoom over Janus's WebSocket API (janussignaller.cpp).
std::unique_ptr<Signaller> make_janus_signaller(const SignallerConfig &cfg, std::string *error);

} // namespace pointcast
