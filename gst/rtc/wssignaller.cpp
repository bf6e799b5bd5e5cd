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

#include "protocol.h"

#include <gst/gst.h>
#include <libsoup/soup.h>

#include <deque>
#include <map>
#include <variant>

GST_DEBUG_CATEGORY_STATIC(pc_ws_debug);
#define GST_CAT_DEFAULT pc_ws_debug

namespace pointcast {
namespace {

constexpr guint kFirstRetryMs = 250;
constexpr guint kMaxRetryMs = 4000;
constexpr size_t kMaxQueued = 1000;
constexpr gint64 kStableMs = 5000;

class WsSignaller final : public Signaller {
public:
  explicit WsSignaller(const SignallerConfig &cfg) : cfg_(cfg) {}
  ~WsSignaller() override { stop(); }

  void start(GMainContext *ctx, SignallerEvents events) override
  {
    ctx_ = ctx;
    events_ = std::move(events);
    stopped_ = false;
    session_ = soup_session_new();
    connect();
  }

  void stop() override
  {
    if (stopped_) return;
    stopped_ = true;
    mainctx::clear_source(ctx_, &retry_);
    if (cancel_) {
      g_cancellable_cancel(cancel_);
      g_clear_object(&cancel_);
    }
    drop_connection(true);
    g_clear_object(&session_);
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
  void connect()
  {
    if (stopped_) return;
    SoupMessage *msg = soup_message_new("GET", uri_with_token().c_str());
    if (!msg) {
      report_error("invalid signaling URI '" + cfg_.uri + "'", true);
      return;
    }
    if (!cfg_.token.empty())
      soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
                                   ("Bearer " + cfg_.token).c_str());
    msg_ = msg;
    cancel_ = g_cancellable_new();
    GST_DEBUG("connecting to %s", cfg_.uri.c_str());
    soup_session_websocket_connect_async(session_, msg, nullptr, nullptr, G_PRIORITY_DEFAULT,
                                         cancel_, on_connected, this);
  }

  // The token goes only in the Authorization header: URLs end up in logs, and the daemon
  // refuses a ?token= on /ws unless a valid header comes with it. A URL that already carries
  // one (the daemon's child credential, pipelines.cpp) is passed through as given.
  std::string uri_with_token() const { return cfg_.uri; }

  static void on_connected(GObject *source, GAsyncResult *res, gpointer data)
  {
    bool cancelled = false;
    std::string reason;
    SoupWebsocketConnection *conn = sigutil::finish_ws_connect(source, res, &cancelled, &reason);
    if (cancelled) return; // stopped; `this` may be gone
    auto *self = static_cast<WsSignaller *>(data);
    SoupMessage *msg = self->msg_;
    self->msg_ = nullptr;
    g_clear_object(&self->cancel_);
    if (!conn) {
      guint status = msg ? soup_message_get_status(msg) : 0;
      if (msg) g_object_unref(msg);
      if (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN) {
        self->report_error(
            "the signaling server refused the token (HTTP " + std::to_string(status) + ")", true);
        return;
      }
      if (!self->unreachable_reported_) {
        self->unreachable_reported_ = true;
        self->report_error("cannot reach signaling server " + self->cfg_.uri + ": " + reason +
                               " (retrying)",
                           false);
      }
      self->schedule_retry();
      return;
    }
    if (msg) g_object_unref(msg);
    self->unreachable_reported_ = false;
    self->conn_ = conn;
    // The reply to register may be large (a big room's list); later messages are held lower.
    sigutil::watch_ws(conn, sigcheck::kMaxRegisteredBytes, self, G_CALLBACK(on_message),
                      G_CALLBACK(on_closed), G_CALLBACK(on_error));
    self->send_register();
  }

  void send_register()
  {
    protocol::Register m;
    m.client_id = cfg_.peer_id;
    m.room_id = cfg_.room;
    m.client_type = cfg_.peer_type;
    soup_websocket_connection_send_text(conn_, protocol::serialize(m).c_str());
  }

  // Protocol errors, e.g. a message over the size limit: libsoup closes with 1009 after this.
  static void on_error(SoupWebsocketConnection *, GError *error, gpointer data)
  {
    static_cast<WsSignaller *>(data)->report_error(
        std::string("signaling connection error: ") + (error ? error->message : "unknown"), false);
  }

  static void on_closed(SoupWebsocketConnection *conn, gpointer data)
  {
    auto *self = static_cast<WsSignaller *>(data);
    gushort code = soup_websocket_connection_get_close_code(conn);
    const char *why = soup_websocket_connection_get_close_data(conn);
    std::string reason = "connection closed";
    if (code)
      reason +=
          " (code " + std::to_string(code) + (why && *why ? std::string(": ") + why : "") + ")";
    self->drop_connection(false);
    bool was_registered = self->registered_;
    self->registered_ = false;
    if (was_registered && g_get_monotonic_time() - self->registered_at_ >= kStableMs * 1000)
      self->backoff_ms_ = kFirstRetryMs;
    if (self->stopped_) return;
    if (was_registered && self->events_.disconnected) self->events_.disconnected(reason);
    self->schedule_retry();
  }

  void drop_connection(bool close) { sigutil::drop_ws(&conn_, this, close); }

  void schedule_retry()
  {
    if (stopped_ || retry_) return;
    guint delay = sigutil::next_backoff(&backoff_ms_, kMaxRetryMs);
    GST_DEBUG("reconnecting in %u ms", delay);
    retry_ = mainctx::timeout_id(ctx_, delay, [this] {
      retry_ = 0;
      connect();
    });
  }

  void send(std::string text)
  {
    if (conn_ && registered_ &&
        soup_websocket_connection_get_state(conn_) == SOUP_WEBSOCKET_STATE_OPEN) {
      soup_websocket_connection_send_text(conn_, text.c_str());
      return;
    }
    if (queue_.size() >= kMaxQueued) queue_.pop_front();
    queue_.push_back(std::move(text));
  }

  void report_error(const std::string &reason, bool fatal)
  {
    GST_WARNING("%s", reason.c_str());
    if (events_.error) events_.error(reason, fatal);
  }

  void warn_malformed(const std::string &why, const char *text)
  {
    std::string excerpt = text ? sigcheck::printable(text, 120) : "";
    report_error("ignored a malformed signaling message (" + why + "): " + excerpt, false);
  }

  static void on_message(SoupWebsocketConnection *, gint type, GBytes *message, gpointer data)
  {
    auto *self = static_cast<WsSignaller *>(data);
    gsize size = 0;
    const char *text = static_cast<const char *>(g_bytes_get_data(message, &size));
    std::string_view view(text ? text : "", size);
    if (type != SOUP_WEBSOCKET_DATA_TEXT) {
      self->warn_malformed("binary frame", "");
      return;
    }
    // json-glib would cut such a string short (an SDP silently truncated)
    if (sigcheck::has_escaped_nul(view)) {
      self->warn_malformed("escaped NUL (\\u0000) in the message", std::string(view).c_str());
      return;
    }
    protocol::ParseResult r = protocol::parse(view);
    if (!r.ok()) {
      self->warn_malformed(r.error.code + ": " + r.error.message, std::string(view).c_str());
      return;
    }
    std::visit([self](auto &m) { self->handle(m); }, *r.message);
  }

  void handle(const protocol::Registered &m)
  {
    // Every later message is one relayed from a member, within the daemon's own limit.
    if (conn_)
      soup_websocket_connection_set_max_incoming_payload_size(conn_,
                                                              sigcheck::kMaxMessageBytes + 1024);
    registered_ = true;
    registered_at_ = g_get_monotonic_time();
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
      warn_malformed(m.sdp.type + " without from_id", "");
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
      warn_malformed("ice_candidate without from_id", "");
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
    if (m.code == protocol::code::kDuplicateId && !registered_) {
      // Our previous connection may still be registered; try again shortly.
      report_error(reason + " (retrying)", false);
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
  GMainContext *ctx_ = nullptr;
  SignallerEvents events_;
  SoupSession *session_ = nullptr;
  SoupMessage *msg_ = nullptr;
  GCancellable *cancel_ = nullptr;
  SoupWebsocketConnection *conn_ = nullptr;
  bool stopped_ = true;
  bool registered_ = false;
  bool unreachable_reported_ = false;
  gint64 registered_at_ = 0;
  guint retry_ = 0;
  guint backoff_ms_ = kFirstRetryMs;
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
