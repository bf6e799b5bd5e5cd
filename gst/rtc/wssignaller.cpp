/* ws:// and wss:// — the room protocol of pointcast-signaling (README "Signaling daemon"):
 * register / registered / peer_joined / peer_left / offer / answer / ice_candidate / error, over a
 * libsoup 3 WebSocket. Reconnects with backoff after the connection drops and registers again
 * under the same id; what is sent meanwhile is queued and flushed after registering. */
#include "rtc/signaller.h"

#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <deque>
#include <map>

GST_DEBUG_CATEGORY_STATIC(pc_ws_debug);
#define GST_CAT_DEFAULT pc_ws_debug

namespace pointcast {
namespace {

constexpr guint kFirstRetryMs = 250;
constexpr guint kMaxRetryMs = 4000;
constexpr size_t kMaxQueued = 1000;

std::string to_json(JsonBuilder *b)
{
  JsonNode *root = json_builder_get_root(b);
  JsonGenerator *gen = json_generator_new();
  json_generator_set_root(gen, root);
  gchar *text = json_generator_to_data(gen, nullptr);
  std::string out = text;
  g_free(text);
  g_object_unref(gen);
  json_node_unref(root);
  return out;
}

const char *member_string(JsonObject *o, const char *name)
{
  if (!o || !json_object_has_member(o, name))
    return nullptr;
  JsonNode *n = json_object_get_member(o, name);
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return nullptr;
  return json_node_get_string(n);
}

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
    if (stopped_)
      return;
    stopped_ = true;
    if (retry_) {
      GSource *src = g_main_context_find_source_by_id(ctx_, retry_);
      if (src)
        g_source_destroy(src);
      retry_ = 0;
    }
    if (cancel_) {
      g_cancellable_cancel(cancel_);
      g_clear_object(&cancel_);
    }
    drop_connection(true);
    g_clear_object(&session_);
  }

  void send_sdp(const std::string &peer, const std::string &type, const std::string &sdp) override
  {
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, type.c_str());
    json_builder_set_member_name(b, "target_id");
    json_builder_add_string_value(b, peer.c_str());
    json_builder_set_member_name(b, "sdp");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, type.c_str());
    json_builder_set_member_name(b, "sdp");
    json_builder_add_string_value(b, sdp.c_str());
    json_builder_end_object(b);
    json_builder_end_object(b);
    send(to_json(b));
    g_object_unref(b);
  }

  void send_candidate(const std::string &peer, const std::string &mid, int mline,
                      const std::string &candidate) override
  {
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "ice_candidate");
    json_builder_set_member_name(b, "target_id");
    json_builder_add_string_value(b, peer.c_str());
    json_builder_set_member_name(b, "candidate");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "candidate");
    json_builder_add_string_value(b, candidate.c_str());
    json_builder_set_member_name(b, "sdpMid");
    json_builder_add_string_value(b, mid.c_str());
    json_builder_set_member_name(b, "sdpMLineIndex");
    json_builder_add_int_value(b, mline);
    json_builder_end_object(b);
    json_builder_end_object(b);
    send(to_json(b));
    g_object_unref(b);
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
    if (stopped_)
      return;
    SoupMessage *msg = soup_message_new("GET", uri_with_token().c_str());
    if (!msg) {
      report_error("invalid signaling URI '" + cfg_.uri + "'", true);
      return;
    }
    msg_ = msg;
    cancel_ = g_cancellable_new();
    GST_DEBUG("connecting to %s", cfg_.uri.c_str());
    soup_session_websocket_connect_async(session_, msg, nullptr, nullptr, G_PRIORITY_DEFAULT,
                                         cancel_, on_connected, this);
  }

  std::string uri_with_token() const
  {
    if (cfg_.token.empty())
      return cfg_.uri;
    gchar *esc = g_uri_escape_string(cfg_.token.c_str(), nullptr, FALSE);
    std::string uri = cfg_.uri + (cfg_.uri.find('?') == std::string::npos ? "?" : "&") +
                      "token=" + esc;
    g_free(esc);
    return uri;
  }

  static void on_connected(GObject *source, GAsyncResult *res, gpointer data)
  {
    GError *err = nullptr;
    SoupWebsocketConnection *conn =
        soup_session_websocket_connect_finish(SOUP_SESSION(source), res, &err);
    if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      g_error_free(err);
      return; // stopped; `this` may be gone
    }
    auto *self = static_cast<WsSignaller *>(data);
    SoupMessage *msg = self->msg_;
    self->msg_ = nullptr;
    g_clear_object(&self->cancel_);
    if (!conn) {
      guint status = msg ? soup_message_get_status(msg) : 0;
      std::string reason = err ? err->message : "unknown error";
      g_clear_error(&err);
      if (msg)
        g_object_unref(msg);
      if (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN) {
        self->report_error("the signaling server refused the token (HTTP " +
                           std::to_string(status) + ")", true);
        return;
      }
      if (!self->unreachable_reported_) {
        self->unreachable_reported_ = true;
        self->report_error("cannot reach signaling server " + self->cfg_.uri + ": " + reason +
                           " (retrying)", false);
      }
      self->schedule_retry();
      return;
    }
    if (msg)
      g_object_unref(msg);
    self->unreachable_reported_ = false;
    self->conn_ = conn;
    // Notice a silently dead server (pings answered by the server's pongs).
    soup_websocket_connection_set_keepalive_interval(conn, 5);
    soup_websocket_connection_set_max_incoming_payload_size(conn, 16 << 20);
    g_signal_connect(conn, "message", G_CALLBACK(on_message), self);
    g_signal_connect(conn, "closed", G_CALLBACK(on_closed), self);
    self->send_register();
  }

  void send_register()
  {
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "register");
    json_builder_set_member_name(b, "client_id");
    json_builder_add_string_value(b, cfg_.peer_id.c_str());
    json_builder_set_member_name(b, "room_id");
    json_builder_add_string_value(b, cfg_.room.c_str());
    json_builder_set_member_name(b, "client_type");
    json_builder_add_string_value(b, cfg_.peer_type.c_str());
    if (!cfg_.token.empty()) {
      json_builder_set_member_name(b, "token");
      json_builder_add_string_value(b, cfg_.token.c_str());
    }
    json_builder_end_object(b);
    soup_websocket_connection_send_text(conn_, to_json(b).c_str());
    g_object_unref(b);
  }

  static void on_closed(SoupWebsocketConnection *conn, gpointer data)
  {
    auto *self = static_cast<WsSignaller *>(data);
    gushort code = soup_websocket_connection_get_close_code(conn);
    const char *why = soup_websocket_connection_get_close_data(conn);
    std::string reason = "connection closed";
    if (code)
      reason += " (code " + std::to_string(code) + (why && *why ? std::string(": ") + why : "") +
                ")";
    self->drop_connection(false);
    bool was_registered = self->registered_;
    self->registered_ = false;
    if (self->stopped_)
      return;
    if (was_registered && self->events_.disconnected)
      self->events_.disconnected(reason);
    self->schedule_retry();
  }

  void drop_connection(bool close)
  {
    if (!conn_)
      return;
    g_signal_handlers_disconnect_by_data(conn_, this);
    if (close && soup_websocket_connection_get_state(conn_) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close(conn_, SOUP_WEBSOCKET_CLOSE_NORMAL, "bye");
    g_clear_object(&conn_);
  }

  void schedule_retry()
  {
    if (stopped_ || retry_)
      return;
    guint delay = backoff_ms_;
    backoff_ms_ = std::min(backoff_ms_ * 2, kMaxRetryMs);
    GST_DEBUG("reconnecting in %u ms", delay);
    GSource *src = g_timeout_source_new(delay);
    g_source_set_callback(src, [](gpointer d) -> gboolean {
      auto *self = static_cast<WsSignaller *>(d);
      self->retry_ = 0;
      self->connect();
      return G_SOURCE_REMOVE;
    }, this, nullptr);
    retry_ = g_source_attach(src, ctx_);
    g_source_unref(src);
  }

  void send(std::string text)
  {
    if (conn_ && registered_ &&
        soup_websocket_connection_get_state(conn_) == SOUP_WEBSOCKET_STATE_OPEN) {
      soup_websocket_connection_send_text(conn_, text.c_str());
      return;
    }
    if (queue_.size() >= kMaxQueued)
      queue_.pop_front();
    queue_.push_back(std::move(text));
  }

  void report_error(const std::string &reason, bool fatal)
  {
    GST_WARNING("%s", reason.c_str());
    if (events_.error)
      events_.error(reason, fatal);
  }

  void warn_malformed(const std::string &why, const char *text)
  {
    std::string excerpt = text ? std::string(text).substr(0, 120) : "";
    report_error("ignored a malformed signaling message (" + why + "): " + excerpt, false);
  }

  static void on_message(SoupWebsocketConnection *, gint type, GBytes *message, gpointer data)
  {
    auto *self = static_cast<WsSignaller *>(data);
    gsize size = 0;
    const char *text = static_cast<const char *>(g_bytes_get_data(message, &size));
    std::string copy(text ? text : "", size);
    if (type != SOUP_WEBSOCKET_DATA_TEXT) {
      self->warn_malformed("binary frame", "");
      return;
    }
    JsonParser *parser = json_parser_new();
    GError *err = nullptr;
    if (!json_parser_load_from_data(parser, copy.c_str(), gssize(copy.size()), &err)) {
      self->warn_malformed(std::string("bad JSON: ") + err->message, copy.c_str());
      g_error_free(err);
      g_object_unref(parser);
      return;
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
      self->warn_malformed("not a JSON object", copy.c_str());
    } else {
      self->handle(json_node_get_object(root), copy.c_str());
    }
    g_object_unref(parser);
  }

  void handle(JsonObject *o, const char *text)
  {
    const char *type = member_string(o, "type");
    if (!type) {
      warn_malformed("no type", text);
      return;
    }
    std::string t = type;
    const char *from = member_string(o, "from_id");
    if (t == "registered") {
      registered_ = true;
      backoff_ms_ = kFirstRetryMs;
      std::vector<std::pair<std::string, std::string>> present;
      if (json_object_has_member(o, "peers") &&
          JSON_NODE_HOLDS_ARRAY(json_object_get_member(o, "peers"))) {
        JsonArray *peers = json_object_get_array_member(o, "peers");
        JsonObject *types = nullptr;
        if (json_object_has_member(o, "peer_types") &&
            JSON_NODE_HOLDS_OBJECT(json_object_get_member(o, "peer_types")))
          types = json_object_get_object_member(o, "peer_types");
        for (guint i = 0; i < json_array_get_length(peers); i++) {
          JsonNode *n = json_array_get_element(peers, i);
          if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
            const char *id = json_node_get_string(n);
            const char *pt = member_string(types, id);
            present.emplace_back(id, pt ? pt : "");
          } else if (JSON_NODE_HOLDS_OBJECT(n)) {
            JsonObject *po = json_node_get_object(n);
            const char *id = member_string(po, "client_id");
            const char *pt = member_string(po, "client_type");
            if (id)
              present.emplace_back(id, pt ? pt : "");
          }
        }
      }
      // What was sent while the connection was down goes out now.
      std::deque<std::string> queued;
      queued.swap(queue_);
      if (events_.ready)
        events_.ready(present);
      for (auto &m : queued)
        send(std::move(m));
    } else if (t == "peer_joined") {
      const char *id = member_string(o, "client_id");
      const char *pt = member_string(o, "client_type");
      if (!id) {
        warn_malformed("peer_joined without client_id", text);
        return;
      }
      no_trickle_.erase(id);
      if (events_.peer_joined)
        events_.peer_joined(id, pt ? pt : "");
    } else if (t == "peer_left") {
      const char *id = member_string(o, "client_id");
      if (!id) {
        warn_malformed("peer_left without client_id", text);
        return;
      }
      if (events_.peer_left)
        events_.peer_left(id);
      no_trickle_.erase(id);
    } else if (t == "offer" || t == "answer") {
      JsonObject *sdp = nullptr;
      const char *sdp_text = nullptr;
      if (json_object_has_member(o, "sdp")) {
        JsonNode *n = json_object_get_member(o, "sdp");
        if (JSON_NODE_HOLDS_OBJECT(n)) {
          sdp = json_node_get_object(n);
          sdp_text = member_string(sdp, "sdp");
        } else {
          sdp_text = member_string(o, "sdp"); // {"type":"offer","sdp":"v=0..."} as aiortc writes
        }
      }
      if (!from || !sdp_text) {
        warn_malformed(t + " without from_id or sdp", text);
        return;
      }
      if (t == "offer") {
        bool trickle = true;
        for (JsonObject *obj : {o, sdp}) {
          if (obj && json_object_has_member(obj, "trickle")) {
            JsonNode *n = json_object_get_member(obj, "trickle");
            if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_BOOLEAN)
              trickle = json_node_get_boolean(n);
          }
        }
        if (trickle)
          no_trickle_.erase(from);
        else
          no_trickle_[from] = true;
      }
      if (events_.sdp)
        events_.sdp(from, t, sdp_text);
    } else if (t == "ice_candidate" || t == "candidate") {
      if (!from) {
        warn_malformed("ice_candidate without from_id", text);
        return;
      }
      JsonObject *c = nullptr;
      if (json_object_has_member(o, "candidate") &&
          JSON_NODE_HOLDS_OBJECT(json_object_get_member(o, "candidate")))
        c = json_object_get_object_member(o, "candidate");
      const char *cand = c ? member_string(c, "candidate") : member_string(o, "candidate");
      const char *mid = member_string(c ? c : o, "sdpMid");
      int mline = -1;
      JsonObject *src = c ? c : o;
      if (json_object_has_member(src, "sdpMLineIndex")) {
        JsonNode *n = json_object_get_member(src, "sdpMLineIndex");
        if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64)
          mline = int(json_node_get_int(n));
      }
      if (events_.candidate)
        events_.candidate(from, mid ? mid : "", mline, cand ? cand : "");
    } else if (t == "error") {
      const char *code = member_string(o, "code");
      const char *message = member_string(o, "message");
      std::string c = code ? code : "";
      std::string m = message ? message : "";
      std::string lc = c + " " + m;
      for (auto &ch : lc)
        ch = char(g_ascii_tolower(ch));
      std::string reason = "signaling server error" + (c.empty() ? "" : " " + c) +
                           (m.empty() ? "" : ": " + m);
      if (lc.find("token") != std::string::npos || lc.find("auth") != std::string::npos ||
          lc.find("forbidden") != std::string::npos) {
        stopped_reason_fatal(reason);
      } else if (!registered_ && lc.find("duplicate") != std::string::npos) {
        // Our previous connection may still be registered; try again shortly.
        report_error(reason + " (retrying)", false);
        drop_connection(true);
        schedule_retry();
      } else {
        report_error(reason, false);
      }
    } else {
      GST_DEBUG("ignoring message type '%s'", type);
    }
  }

  void stopped_reason_fatal(const std::string &reason)
  {
    report_error(reason, true);
    stopped_ = true; // a refused token will not be accepted on retry
    drop_connection(true);
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
  guint retry_ = 0;
  guint backoff_ms_ = kFirstRetryMs;
  std::deque<std::string> queue_;
  std::map<std::string, bool> no_trickle_;
};

} // namespace

std::unique_ptr<Signaller> make_ws_signaller(const SignallerConfig &cfg, std::string *error)
{
  static gsize once = 0;
  if (g_once_init_enter(&once)) {
    GST_DEBUG_CATEGORY_INIT(pc_ws_debug, "rtcpeer-ws", 0, "rtcpeer room-protocol signaller");
    g_once_init_leave(&once, 1);
  }
  GUri *uri = g_uri_parse(cfg.uri.c_str(), G_URI_FLAGS_NONE, nullptr);
  if (!uri || !g_uri_get_host(uri) || !*g_uri_get_host(uri)) {
    if (uri)
      g_uri_unref(uri);
    *error = "'" + cfg.uri + "' is not a valid ws:// URI (expected ws://host:port/ws)";
    return nullptr;
  }
  g_uri_unref(uri);
  return std::make_unique<WsSignaller>(cfg);
}

} // namespace pointcast
