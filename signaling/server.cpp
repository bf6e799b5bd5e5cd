#include "server.h"

#include "log.h"

#include <json-glib/json-glib.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace pointcast::signaling {

namespace {
const char *kModule = "server";
constexpr gsize kMaxHttpBody = 1 << 20; // /offer bodies and other POSTs

std::vector<std::function<void(Server &)>> &installers() {
  static std::vector<std::function<void(Server &)>> list;
  return list;
}

std::string remote_of(SoupServerMessage *msg) {
  const char *host = soup_server_message_get_remote_host(msg);
  GSocketAddress *addr = soup_server_message_get_remote_address(msg);
  std::string s = host ? host : "?";
  if (addr && G_IS_INET_SOCKET_ADDRESS(addr))
    s += ":" + std::to_string(g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(addr)));
  return s;
}

const char *mime_for(const std::string &path) {
  static const std::pair<const char *, const char *> table[] = {
      {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"}, {".json", "application/json"},
      {".svg", "image/svg+xml"}, {".png", "image/png"}, {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"}, {".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"}, {".map", "application/json"}};
  for (auto &[ext, type] : table) {
    std::size_t n = std::strlen(ext);
    if (path.size() >= n && g_ascii_strcasecmp(path.c_str() + path.size() - n, ext) == 0)
      return type;
  }
  return "application/octet-stream";
}
} // namespace

RouteInstaller::RouteInstaller(std::function<void(Server &)> install) {
  installers().push_back(std::move(install));
}

void respond_text(SoupServerMessage *msg, guint status, const std::string &body, const char *content_type) {
  soup_server_message_set_status(msg, status, nullptr);
  soup_server_message_set_response(msg, content_type, SOUP_MEMORY_COPY, body.data(), body.size());
}

void respond_json_error(SoupServerMessage *msg, guint status, const std::string &reason) {
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "error");
  json_builder_add_string_value(b, reason.c_str());
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *text = json_to_string(root, FALSE);
  respond_text(msg, status, std::string(text) + "\n", "application/json");
}

struct Conn {
  SoupWebsocketConnection *ws = nullptr;
  gulong handlers[3] = {0, 0, 0};
};

struct PendingOffer {
  SoupServerMessage *msg = nullptr;
  bool whip = false;
  std::string peer_id;
  gulong finished_handler = 0;
};

struct Server::Impl {
  Server *self = nullptr;
  std::unordered_map<Handle, Conn> conns;
  std::unordered_map<std::uint64_t, PendingOffer> offers;
  std::vector<std::pair<std::string, bool>> token_paths; // path prefix, needs token
  Handle next_handle = 1;
  Actions spare; // swapped with the state machine's queue so buffers are reused
  bool applying = false;
  guint tick_source = 0;
  std::uint64_t http_requests = 0;
  std::uint64_t http_unauthorized = 0;

  void apply();
  void on_ws(SoupServerMessage *msg, SoupWebsocketConnection *ws);
  void on_offer(SoupServerMessage *msg, const char *path, GHashTable *query);
  void on_static(SoupServerMessage *msg, const char *path);
  void finish_offer(const OfferResult &r);
  void early(SoupServerMessage *msg, const char *path);
  void add_early(const char *path);
};

Server::Server(ServerConfig config) : config_(std::move(config)), rooms_(config_.limits) {
  impl_ = std::make_unique<Impl>();
  impl_->self = this;
}

Server::~Server() {
  shutdown();
  if (impl_->tick_source)
    g_source_remove(impl_->tick_source);
  g_clear_object(&soup_);
}

std::vector<std::string> Server::uris() const {
  std::vector<std::string> out;
  if (!soup_)
    return out;
  GSList *list = soup_server_get_uris(soup_);
  for (GSList *l = list; l; l = l->next) {
    g_autofree char *s = g_uri_to_string(static_cast<GUri *>(l->data));
    out.emplace_back(s);
  }
  g_slist_free_full(list, reinterpret_cast<GDestroyNotify>(g_uri_unref));
  return out;
}

bool Server::authorized(SoupServerMessage *msg) const {
  if (config_.token.empty())
    return true;
  const char *auth = soup_message_headers_get_one(soup_server_message_get_request_headers(msg),
                                                  "Authorization");
  if (auth && g_ascii_strncasecmp(auth, "Bearer ", 7) == 0) {
    const char *t = auth + 7;
    while (*t == ' ')
      t++;
    if (config_.token == t)
      return true;
  }
  GUri *uri = soup_server_message_get_uri(msg);
  if (const char *q = g_uri_get_query(uri)) {
    g_autoptr(GHashTable) params = g_uri_parse_params(q, -1, "&", G_URI_PARAMS_NONE, nullptr);
    if (params) {
      auto *tok = static_cast<const char *>(g_hash_table_lookup(params, "token"));
      if (tok && config_.token == tok)
        return true;
    }
  }
  return false;
}

void Server::add_route(const std::string &path, RouteHandler handler, bool needs_token) {
  impl_->token_paths.emplace_back(path, needs_token);
  impl_->add_early(path.c_str());
  auto *h = new RouteHandler(std::move(handler));
  soup_server_add_handler(
      soup_, path.c_str(),
      [](SoupServer *, SoupServerMessage *msg, const char *p, GHashTable *query, gpointer data) {
        (*static_cast<RouteHandler *>(data))(msg, p, query);
      },
      h, [](gpointer data) { delete static_cast<RouteHandler *>(data); });
}

// Token and body-size checks, run once the headers are in, before the body is read and before a
// WebSocket upgrade. libsoup matches early handlers per path, so each route path gets one.
void Server::Impl::early(SoupServerMessage *msg, const char *path) {
  http_requests++;
  bool needs = g_str_has_prefix(path, "/ws") || g_str_has_prefix(path, "/offer");
  for (auto &[p, t] : token_paths)
    if (t && g_str_has_prefix(path, p.c_str()))
      needs = true;
  if (needs && !self->authorized(msg)) {
    http_unauthorized++;
    PC_LOG(Warning, kModule, "%s %s from %s refused: missing or wrong token",
           soup_server_message_get_method(msg), path, remote_of(msg).c_str());
    // Close after the refusal: a WebSocket client that failed its handshake waits for that.
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection", "close");
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "WWW-Authenticate",
                                 "Bearer realm=\"pointcast\"");
    respond_json_error(msg, SOUP_STATUS_UNAUTHORIZED,
                       "a token is required (?token=... or Authorization: Bearer ...)");
    return;
  }
  goffset len = soup_message_headers_get_content_length(soup_server_message_get_request_headers(msg));
  if (len > (goffset)kMaxHttpBody) {
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection", "close");
    respond_json_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                       "request body over " + std::to_string(kMaxHttpBody) + " bytes");
  }
}

void Server::Impl::add_early(const char *path) {
  soup_server_add_early_handler(
      self->soup(), path,
      [](SoupServer *, SoupServerMessage *msg, const char *p, GHashTable *, gpointer data) {
        static_cast<Impl *>(data)->early(msg, p);
      },
      this, nullptr);
}

bool Server::start(std::string *error) {
  if (config_.tls_cert.empty() != config_.tls_key.empty()) {
    *error = "--tls-cert and --tls-key go together";
    return false;
  }
  GError *err = nullptr;
  g_autoptr(GTlsCertificate) cert = nullptr;
  if (!config_.tls_cert.empty()) {
    cert = g_tls_certificate_new_from_files(config_.tls_cert.c_str(), config_.tls_key.c_str(), &err);
    if (!cert) {
      *error = std::string("cannot load TLS certificate/key: ") + err->message;
      g_error_free(err);
      return false;
    }
  }
  soup_ = soup_server_new("server-header", "pointcast-signaling", nullptr);
  if (cert)
    soup_server_set_tls_certificate(soup_, cert);

  soup_server_add_websocket_handler(
      soup_, "/ws", nullptr, nullptr,
      [](SoupServer *, SoupServerMessage *msg, const char *, SoupWebsocketConnection *ws, gpointer data) {
        static_cast<Impl *>(data)->on_ws(msg, ws);
      },
      impl_.get(), nullptr);

  soup_server_add_handler(
      soup_, "/healthz",
      [](SoupServer *, SoupServerMessage *msg, const char *, GHashTable *, gpointer) {
        respond_text(msg, SOUP_STATUS_OK, "ok\n");
      },
      nullptr, nullptr);
  soup_server_add_handler(
      soup_, "/metrics",
      [](SoupServer *, SoupServerMessage *msg, const char *, GHashTable *, gpointer data) {
        auto *impl = static_cast<Impl *>(data);
        std::string body = impl->self->rooms().prometheus();
        body += "# HELP pointcast_signaling_http_requests_total HTTP requests received.\n"
                "# TYPE pointcast_signaling_http_requests_total counter\n"
                "pointcast_signaling_http_requests_total " + std::to_string(impl->http_requests) + "\n"
                "# HELP pointcast_signaling_http_unauthorized_total Requests refused for a missing or wrong token.\n"
                "# TYPE pointcast_signaling_http_unauthorized_total counter\n"
                "pointcast_signaling_http_unauthorized_total " + std::to_string(impl->http_unauthorized) + "\n";
        respond_text(msg, SOUP_STATUS_OK, body, "text/plain; version=0.0.4; charset=utf-8");
      },
      impl_.get(), nullptr);
  soup_server_add_handler(
      soup_, "/offer",
      [](SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data) {
        static_cast<Impl *>(data)->on_offer(msg, path, query);
      },
      impl_.get(), nullptr);
  soup_server_add_handler(
      soup_, nullptr,
      [](SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *, gpointer data) {
        static_cast<Impl *>(data)->on_static(msg, path);
      },
      impl_.get(), nullptr);

  for (const char *p : {"/ws", "/healthz", "/metrics", "/offer", "/"})
    impl_->add_early(p);
  for (auto &install : installers())
    install(*this);

  g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(config_.host.c_str());
  if (!addr) {
    // A name such as "localhost": resolve it.
    g_autoptr(GResolver) resolver = g_resolver_get_default();
    GList *addrs = g_resolver_lookup_by_name(resolver, config_.host.c_str(), nullptr, &err);
    if (!addrs) {
      *error = "cannot resolve --host " + config_.host + ": " + (err ? err->message : "?");
      g_clear_error(&err);
      return false;
    }
    addr = G_INET_ADDRESS(g_object_ref(addrs->data));
    g_resolver_free_addresses(addrs);
  }
  g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(addr, config_.port);
  auto opts = static_cast<SoupServerListenOptions>(cert ? SOUP_SERVER_LISTEN_HTTPS : 0);
  if (!soup_server_listen(soup_, sa, opts, &err)) {
    *error = "cannot listen on " + config_.host + ":" + std::to_string(config_.port) + ": " + err->message;
    g_error_free(err);
    return false;
  }
  impl_->tick_source = g_timeout_add(
      250,
      [](gpointer data) -> gboolean {
        auto *impl = static_cast<Impl *>(data);
        impl->self->rooms().tick(Clock::now());
        impl->apply();
        return G_SOURCE_CONTINUE;
      },
      impl_.get());
  return true;
}

void Server::shutdown() {
  if (!soup_)
    return;
  for (auto &[h, c] : impl_->conns)
    if (soup_websocket_connection_get_state(c.ws) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close(c.ws, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "server shutting down");
  for (auto &[id, p] : impl_->offers) {
    g_signal_handler_disconnect(p.msg, p.finished_handler);
    respond_json_error(p.msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "server shutting down");
    soup_server_message_unpause(p.msg);
  }
  impl_->offers.clear();
}

void Server::Impl::on_ws(SoupServerMessage *msg, SoupWebsocketConnection *ws) {
  Rooms &rooms = self->rooms();
  const ServerConfig &cfg = self->config();
  Handle h = next_handle++;
  Conn &c = conns[h];
  c.ws = SOUP_WEBSOCKET_CONNECTION(g_object_ref(ws));
  // Frames far over the limit are cut off by libsoup (close 1009); between the limit and this
  // the state machine answers with an error and the client stays.
  guint64 hard = std::max<guint64>(cfg.limits.max_message_bytes * 4 + 4096, 64 * 1024);
  soup_websocket_connection_set_max_incoming_payload_size(ws, hard);
  if (cfg.ping_interval) {
    soup_websocket_connection_set_keepalive_interval(ws, cfg.ping_interval);
    // libsoup 3.2 does not report pongs, so dead peers are found by TCP instead: a ping that
    // stays unacknowledged for two intervals makes the kernel drop the connection.
    if (GSocket *sock = soup_server_message_get_socket(msg)) {
      int fd = g_socket_get_fd(sock);
      unsigned timeout_ms = cfg.ping_interval * 2000 + 1000;
      setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof timeout_ms);
    }
  }
  if (GSocket *sock = soup_server_message_get_socket(msg)) {
    int one = 1;
    setsockopt(g_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  // Handle and Impl travel together in a small heap block owned by the connection's signals.
  struct Ctx {
    Impl *impl;
    Handle h;
  };
  auto *ctx = new Ctx{this, h};
  c.handlers[0] = g_signal_connect_data(
      ws, "message",
      G_CALLBACK(+[](SoupWebsocketConnection *, gint type, GBytes *data, gpointer user) {
        auto *x = static_cast<Ctx *>(user);
        gsize size = 0;
        auto *bytes = static_cast<const char *>(g_bytes_get_data(data, &size));
        Rooms &r = x->impl->self->rooms();
        if (type == SOUP_WEBSOCKET_DATA_TEXT)
          r.text(x->h, std::string_view(bytes ? bytes : "", size), Clock::now());
        else
          r.binary(x->h, size, Clock::now());
        x->impl->apply();
      }),
      ctx, [](gpointer user, GClosure *) { delete static_cast<Ctx *>(user); }, GConnectFlags(0));
  c.handlers[1] = g_signal_connect(
      ws, "closed", G_CALLBACK(+[](SoupWebsocketConnection *conn, gpointer user) {
        auto *x = static_cast<Ctx *>(user);
        Impl *impl = x->impl;
        Handle hh = x->h;
        PC_LOG(Debug, kModule, "connection %llu closed (code %u)", (unsigned long long)hh,
               soup_websocket_connection_get_close_code(conn));
        impl->self->rooms().disconnect(hh, Clock::now());
        auto it = impl->conns.find(hh);
        if (it != impl->conns.end()) {
          SoupWebsocketConnection *ws2 = it->second.ws;
          impl->conns.erase(it);
          impl->apply();
          // Disconnecting the "message" handler frees ctx; do it last.
          g_signal_handlers_disconnect_by_data(ws2, x);
          g_object_unref(ws2);
        }
      }),
      ctx);
  c.handlers[2] = g_signal_connect(
      ws, "error", G_CALLBACK(+[](SoupWebsocketConnection *, GError *err, gpointer user) {
        auto *x = static_cast<Ctx *>(user);
        PC_LOG(Info, kModule, "connection %llu: %s", (unsigned long long)x->h, err->message);
      }),
      ctx);
  rooms.connect(h, Clock::now(), remote_of(msg));
  apply();
}

void Server::Impl::apply() {
  // A send can fail and close a connection synchronously, which re-enters through "closed":
  // the nested call leaves its actions queued and this loop picks them up.
  if (applying)
    return;
  applying = true;
  Actions &queued = self->rooms().actions();
  while (!queued.empty()) {
    std::swap(spare, queued);
    for (const auto &s : spare.sends) {
      auto it = conns.find(s.to);
      if (it == conns.end())
        continue;
      SoupWebsocketConnection *ws = it->second.ws;
      if (soup_websocket_connection_get_state(ws) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_send_text(ws, spare.texts[s.text].c_str());
    }
    for (const auto &c : spare.closes) {
      auto it = conns.find(c.client);
      if (it != conns.end() && soup_websocket_connection_get_state(it->second.ws) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close(it->second.ws, c.code, c.reason.c_str());
    }
    for (const auto &r : spare.offers)
      finish_offer(r);
    spare.clear();
  }
  queued.clear();
  applying = false;
}

void Server::Impl::finish_offer(const OfferResult &r) {
  auto it = offers.find(r.offer_id);
  if (it == offers.end())
    return;
  PendingOffer p = it->second;
  offers.erase(it);
  g_signal_handler_disconnect(p.msg, p.finished_handler);
  if (r.status == 200) {
    if (p.whip) {
      respond_text(p.msg, SOUP_STATUS_CREATED, r.answer_sdp, "application/sdp");
      soup_message_headers_replace(soup_server_message_get_response_headers(p.msg), "Location",
                                   ("/offer/" + p.peer_id).c_str());
    } else {
      g_autoptr(JsonBuilder) b = json_builder_new();
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "sdp");
      json_builder_add_string_value(b, r.answer_sdp.c_str());
      json_builder_set_member_name(b, "type");
      json_builder_add_string_value(b, "answer");
      json_builder_end_object(b);
      g_autoptr(JsonNode) root = json_builder_get_root(b);
      g_autofree char *text = json_to_string(root, FALSE);
      respond_text(p.msg, SOUP_STATUS_OK, text, "application/json");
    }
  } else {
    respond_json_error(p.msg, r.status, r.reason);
  }
  soup_server_message_unpause(p.msg);
}

void Server::Impl::on_offer(SoupServerMessage *msg, const char *path, GHashTable *query) {
  const char *method = soup_server_message_get_method(msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(resp, "Access-Control-Allow-Origin", "*");
  if (!strcmp(method, "OPTIONS")) {
    soup_message_headers_replace(resp, "Access-Control-Allow-Methods", "POST, DELETE, OPTIONS");
    soup_message_headers_replace(resp, "Access-Control-Allow-Headers", "Content-Type, Authorization");
    soup_message_headers_replace(resp, "Access-Control-Expose-Headers", "Location");
    soup_server_message_set_status(msg, SOUP_STATUS_NO_CONTENT, nullptr);
    return;
  }
  if (g_str_has_prefix(path, "/offer/")) {
    // WHIP session resource: DELETE ends it.
    if (strcmp(method, "DELETE")) {
      soup_message_headers_replace(resp, "Allow", "DELETE, OPTIONS");
      respond_json_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "use DELETE on a session resource");
      return;
    }
    if (self->rooms().end_session(path + strlen("/offer/"))) {
      apply();
      soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
    } else {
      respond_json_error(msg, SOUP_STATUS_NOT_FOUND, "no such session");
    }
    return;
  }
  if (strcmp(path, "/offer") != 0) {
    respond_json_error(msg, SOUP_STATUS_NOT_FOUND, "not found");
    return;
  }
  if (strcmp(method, "POST")) {
    soup_message_headers_replace(resp, "Allow", "POST, OPTIONS");
    respond_json_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "POST an SDP offer to /offer");
    return;
  }
  const char *room = query ? static_cast<const char *>(g_hash_table_lookup(query, "room")) : nullptr;
  const char *target = query ? static_cast<const char *>(g_hash_table_lookup(query, "target")) : nullptr;
  if (!room || !*room)
    room = "default";

  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  g_autoptr(GBytes) bytes = soup_message_body_flatten(body);
  gsize size = 0;
  auto *data = static_cast<const char *>(g_bytes_get_data(bytes, &size));
  std::string text(data ? data : "", size);
  const char *ctype = soup_message_headers_get_content_type(soup_server_message_get_request_headers(msg), nullptr);
  bool whip = ctype && !g_ascii_strcasecmp(ctype, "application/sdp");
  std::string sdp;
  if (whip) {
    sdp = std::move(text);
  } else {
    if (ctype && g_ascii_strcasecmp(ctype, "application/json") && g_ascii_strcasecmp(ctype, "text/plain")) {
      respond_json_error(msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
                         std::string("Content-Type ") + ctype + " is neither application/json nor application/sdp");
      return;
    }
    g_autoptr(JsonParser) parser = json_parser_new();
    GError *err = nullptr;
    if (text.empty() || !json_parser_load_from_data(parser, text.data(), (gssize)text.size(), &err)) {
      respond_json_error(msg, SOUP_STATUS_BAD_REQUEST,
                         std::string("body is not JSON: ") + (err ? err->message : "empty body"));
      g_clear_error(&err);
      return;
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
      respond_json_error(msg, SOUP_STATUS_BAD_REQUEST, "body must be a JSON object {\"sdp\":...,\"type\":\"offer\"}");
      return;
    }
    JsonObject *o = json_node_get_object(root);
    JsonNode *s = json_object_get_member(o, "sdp");
    JsonNode *t = json_object_get_member(o, "type");
    if (!s || !JSON_NODE_HOLDS_VALUE(s) || json_node_get_value_type(s) != G_TYPE_STRING) {
      respond_json_error(msg, SOUP_STATUS_BAD_REQUEST, "body needs a string member \"sdp\"");
      return;
    }
    if (t && (!JSON_NODE_HOLDS_VALUE(t) || json_node_get_value_type(t) != G_TYPE_STRING ||
              strcmp(json_node_get_string(t), "offer"))) {
      respond_json_error(msg, SOUP_STATUS_BAD_REQUEST, "\"type\" must be \"offer\"");
      return;
    }
    sdp = json_node_get_string(s);
  }
  if (sdp.rfind("v=0", 0) != 0 || sdp.find("\nm=") == std::string::npos) {
    respond_json_error(msg, SOUP_STATUS_BAD_REQUEST,
                       "the offer is not an SDP session description (must start with v=0 and have an m= line)");
    return;
  }
  if (!g_utf8_validate(sdp.data(), (gssize)sdp.size(), nullptr)) {
    respond_json_error(msg, SOUP_STATUS_BAD_REQUEST, "the SDP is not valid UTF-8");
    return;
  }
  OfferStart st = self->rooms().begin_offer(room, sdp, target ? target : "", Clock::now());
  if (!st.offer_id) {
    self->rooms().actions().clear();
    respond_json_error(msg, st.status, st.reason);
    return;
  }
  PendingOffer p;
  p.msg = msg;
  p.whip = whip;
  p.peer_id = st.peer_id;
  struct Ctx {
    Impl *impl;
    std::uint64_t id;
  };
  p.finished_handler = g_signal_connect_data(
      msg, "finished", G_CALLBACK(+[](SoupServerMessage *, gpointer user) {
        // Only reached when the HTTP client went away first: answered offers disconnect this.
        auto *x = static_cast<Ctx *>(user);
        if (x->impl->offers.erase(x->id)) {
          x->impl->self->rooms().end_offer(x->id);
          x->impl->apply();
        }
      }),
      new Ctx{this, st.offer_id}, [](gpointer user, GClosure *) { delete static_cast<Ctx *>(user); },
      GConnectFlags(0));
  offers.emplace(st.offer_id, p);
  soup_server_message_pause(msg);
  apply();
}

void Server::Impl::on_static(SoupServerMessage *msg, const char *path) {
  const char *method = soup_server_message_get_method(msg);
  if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "GET, HEAD");
    respond_json_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method not allowed");
    return;
  }
  const std::string &root = self->config().web_root;
  if (root.empty()) {
    respond_text(msg, SOUP_STATUS_NOT_FOUND, "not found (the daemon runs without --web-root)\n");
    return;
  }
  g_autofree char *decoded = g_uri_unescape_string(path, nullptr);
  if (!decoded || strchr(decoded, '\\')) {
    respond_text(msg, SOUP_STATUS_BAD_REQUEST, "bad path\n");
    return;
  }
  // No ".." segment ever reaches the file system; realpath below catches symlinks out of root.
  g_auto(GStrv) parts = g_strsplit(decoded, "/", -1);
  for (char **p = parts; *p; p++)
    if (!strcmp(*p, "..")) {
      respond_text(msg, SOUP_STATUS_FORBIDDEN, "forbidden\n");
      return;
    }
  std::string rel = decoded;
  if (rel.empty() || rel.back() == '/')
    rel += "index.html";
  std::string full = root + "/" + rel;
  if (g_file_test(full.c_str(), G_FILE_TEST_IS_DIR))
    full += "/index.html";
  char rroot[PATH_MAX], rfull[PATH_MAX];
  if (!realpath(root.c_str(), rroot) || !realpath(full.c_str(), rfull) ||
      !g_file_test(rfull, G_FILE_TEST_IS_REGULAR)) {
    respond_text(msg, SOUP_STATUS_NOT_FOUND, "not found\n");
    return;
  }
  std::string prefix = std::string(rroot) + "/";
  if (strncmp(rfull, prefix.c_str(), prefix.size()) != 0) {
    respond_text(msg, SOUP_STATUS_FORBIDDEN, "forbidden\n");
    return;
  }
  gchar *contents = nullptr;
  gsize len = 0;
  if (!g_file_get_contents(rfull, &contents, &len, nullptr)) {
    respond_text(msg, SOUP_STATUS_NOT_FOUND, "not found\n");
    return;
  }
  soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control", "no-cache");
  soup_server_message_set_response(msg, mime_for(rfull), SOUP_MEMORY_TAKE, contents, len);
}

} // namespace pointcast::signaling
