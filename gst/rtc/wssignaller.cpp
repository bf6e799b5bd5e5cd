// SPDX-License-Identifier: LGPL-2.1-or-later
/* ws:// and wss:// — the room protocol of pointcast-signaling (README "Signaling daemon"):
 * register / registered / peer_joined / peer_left / offer / answer / ice_candidate / error, over a
 * libsoup 3 WebSocket. Reconnects with backoff after the connection drops and registers again
 * under the same id; what is sent meanwhile is queued and flushed after registering.
 *
 * The server may be malicious: a message over sigcheck::kMaxMessageBytes (+1 KiB for the from_id
 * the daemon appends; sigcheck::kMaxRegisteredBytes until the reply to register, which lists the
 * room) closes the connection (1009) before any JSON is parsed, everything else
 * goes through protocol::parse, and a server that keeps accepting and dropping us is retried
 * with growing backoff: it resets only after a registration that lasted kStableMs. */
#include "rtc/signaller.h"
#include "rtc/sigcheck.h"
#include "rtc/sigutil.h"
#include "rtc/wsclient.h"

#include "protocol.h"

#include <gst/gst.h>
#include <libsoup/soup.h>

#include <cstdio>
#include <deque>
#include <map>
#include <variant>

GST_DEBUG_CATEGORY_STATIC(pc_ws_debug);
#define GST_CAT_DEFAULT pc_ws_debug

namespace pointcast {
namespace {

constexpr size_t kMaxQueued = 1000;
constexpr gint64 kStableMs = 5000;

class WsSignaller final : public WsClient {
public:
  explicit WsSignaller(const SignallerConfig &cfg)
      // The token goes only in the Authorization header: URLs end up in logs, and the daemon
      // refuses a ?token= on /ws unless a valid header comes with it. A URL that already carries
      // one (the daemon's child credential, pipelines.cpp) is passed through as given.
      : WsClient(
            pc_ws_debug,
            {"signaling", "signaling server " + cfg.uri, "connection closed", "signaling message"},
            // The reply to register may be large (a big room's list); later messages are
            // held lower (handle(Registered)).
            {cfg.uri, nullptr, cfg.token, sigcheck::kMaxRegisteredBytes, kStableMs}),
        cfg_(cfg)
  {
  }

  void send_sdp(const std::string &peer, const std::string &type, const std::string &sdp) override
  {
    protocol::Sdp m;
    m.target_id = peer;
    m.sdp = {type, sdp};
    send(protocol::serialize(m));
  }

  void send_candidate(const std::string &peer, const std::string &mid, int mline,
                      const std::string &candidate) override
  {
    protocol::Candidate m;
    m.target_id = peer;
    m.candidate.candidate = candidate;
    m.candidate.sdp_mid = mid;
    m.candidate.sdp_mline_index = mline;
    send(protocol::serialize(m));
  }

  bool trickles() const override { return true; }

  bool peer_trickles(const std::string &peer) const override
  {
    auto it = no_trickle_.find(peer);
    return it == no_trickle_.end();
  }

private:
  bool on_refused(guint status) override
  {
    if (status != SOUP_STATUS_UNAUTHORIZED && status != SOUP_STATUS_FORBIDDEN) return false;
    report_error("the signaling server refused the token (HTTP " + std::to_string(status) + ")",
                 true);
    return true;
  }

  void on_open() override
  {
    protocol::Register m;
    m.client_id = cfg_.peer_id;
    m.room_id = cfg_.room;
    m.client_type = cfg_.peer_type;
    send_text(protocol::serialize(m));
  }

  void send(std::string text)
  {
    if (ready() && send_text(text)) return;
    if (queue_.size() >= kMaxQueued) queue_.pop_front();
    queue_.push_back(std::move(text));
  }

  void on_text(std::string_view view) override
  {
    protocol::ParseResult r = protocol::parse(view);
    if (!r.ok()) return malformed(r.error.code + ": " + r.error.message, view);
    std::visit([this](auto &m) { handle(m); }, *r.message);
  }

  void handle(const protocol::Registered &m)
  {
    // Every later message is one relayed from a member, within the daemon's own limit.
    if (conn_)
      soup_websocket_connection_set_max_incoming_payload_size(conn_,
                                                              sigcheck::kMaxMessageBytes + 1024);
    set_ready();
    std::vector<std::pair<std::string, std::string>> present;
    for (auto &p : m.peers) present.emplace_back(p.client_id, p.client_type);
    // What was sent while the connection was down goes out now.
    std::deque<std::string> queued;
    queued.swap(queue_);
    if (events_.ready) events_.ready(present);
    for (auto &q : queued) send(std::move(q));
  }

  void handle(const protocol::PeerJoined &m)
  {
    no_trickle_.erase(m.client_id);
    if (events_.peer_joined) events_.peer_joined(m.client_id, m.client_type);
  }

  void handle(const protocol::PeerLeft &m)
  {
    if (events_.peer_left) events_.peer_left(m.client_id);
    no_trickle_.erase(m.client_id);
  }

  void handle(const protocol::Sdp &m)
  {
    if (!m.from_id) {
      malformed(m.sdp.type + " without from_id", "");
      return;
    }
    if (m.sdp.type == "offer") {
      // The daemon's HTTP /offer bridge marks offers from peers that cannot trickle.
      if (m.trickle.value_or(true))
        no_trickle_.erase(*m.from_id);
      else
        no_trickle_[*m.from_id] = true;
    }
    if (events_.sdp) events_.sdp(*m.from_id, m.sdp.type, m.sdp.sdp);
  }

  void handle(const protocol::Candidate &m)
  {
    if (!m.from_id) {
      malformed("ice_candidate without from_id", "");
      return;
    }
    if (events_.candidate)
      events_.candidate(*m.from_id, m.candidate.sdp_mid.value_or(""),
                        m.candidate.sdp_mline_index.value_or(-1), m.candidate.candidate);
  }

  void handle(const protocol::Error &m)
  {
    std::string reason =
        "signaling server error " + m.code + (m.message.empty() ? "" : ": " + m.message);
    if (m.code == protocol::code::kDuplicateId && !ready()) {
      /* The id's holder answered the daemon's ping (another process with our peer id, or our
       * previous connection not given up yet, or a daemon of a cluster that has not expired
       * it): never give up, register again after the bounded backoff. */
      char when[64];
      std::snprintf(when, sizeof when, " (registering again in %.2f s)", retry_delay_ms() / 1000.0);
      report_error(reason + when, false);
      drop_connection(true);
      schedule_retry();
    } else if (m.code == protocol::code::kUnknownTarget) {
      report_error("unknown target peer: " + m.message, false);
    } else {
      report_error(reason, false);
    }
  }

  template <typename T>
  void handle(const T &)
  {
    GST_DEBUG("ignoring a message not meant for clients");
  }

  SignallerConfig cfg_;
  std::deque<std::string> queue_;
  std::map<std::string, bool> no_trickle_;
};

} // namespace

std::unique_ptr<Signaller> make_ws_signaller(const SignallerConfig &cfg, std::string *error)
{
  sigutil::debug_category_once(&pc_ws_debug, "rtcpeer-ws", "rtcpeer room-protocol signaller");
  auto uri = sigutil::parse_signaling_uri(cfg.uri, G_URI_FLAGS_NONE, nullptr);
  if (!uri || uri->host.empty()) {
    *error = "'" + cfg.uri + "' is not a valid ws:// URI (expected ws://host:port/ws)";
    return nullptr;
  }
  return std::make_unique<WsSignaller>(cfg);
}

} // namespace pointcast
