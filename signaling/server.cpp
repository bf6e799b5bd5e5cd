// SPDX-License-Identifier: LGPL-2.1-or-later
#include "server.h"
#include "auth.h"

#include "log.h"
#include "websocket.h"

#include <json-glib/json-glib.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <cerrno>
#include <deque>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace pointcast::signaling {

namespace {
const char *kModule = "server";

std::string remote_of(SoupServerMessage *msg)
{
  const char *host = soup_server_message_get_remote_host(msg);
  GSocketAddress *addr = soup_server_message_get_remote_address(msg);
  std::string s = host ? host : "?";
  if (addr && G_IS_INET_SOCKET_ADDRESS(addr))
    s += ":" + std::to_string(g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(addr)));
  return s;
}

const char *mime_for(const std::string &path)
{
  static const std::pair<const char *, const char *> table[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"},
      {".map", "application/json"}};
  for (auto &[ext, type] : table) {
    std::size_t n = std::strlen(ext);
    if (path.size() >= n && g_ascii_strcasecmp(path.c_str() + path.size() - n, ext) == 0)
      return type;
  }
  return "application/octet-stream";
}
} // namespace

void Server::add_routes(std::function<void(Server &)> install)
{
  route_setups_.push_back(std::move(install));
}

void respond_text(SoupServerMessage *msg, guint status, const std::string &body,
                  const char *content_type)
{
  soup_server_message_set_status(msg, status, nullptr);
  soup_server_message_set_response(msg, content_type, SOUP_MEMORY_COPY, body.data(), body.size());
}

void respond_json_error(SoupServerMessage *msg, guint status, const std::string &reason)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "error");
  json_builder_add_string_value(b, reason.c_str());
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *text = json_to_string(root, FALSE);
  respond_text(msg, status, std::string(text) + "\n", "application/json");
}

struct PendingOffer {
  SoupServerMessage *msg = nullptr;
  bool whip = false;
  std::string peer_id;
  gulong finished_handler = 0;
};

struct Server::Impl final : WsListener {
  Server *self = nullptr;
  std::unordered_map<Handle, std::unique_ptr<WsConn>> conns;
  std::vector<WsConn *> dirty;                    // connections with output to write
  std::vector<std::unique_ptr<WsConn>> graveyard; // closed, freed outside their callbacks
  GSource *flusher = nullptr;
  std::int64_t last_keepalive_us = 0;
  std::unordered_map<std::uint64_t, PendingOffer> offers;
  std::unordered_map<std::string, std::string> whip_sessions; // Location id -> virtual peer id
  std::deque<std::string> whip_order;
  std::vector<std::pair<std::string, bool>> token_paths; // path prefix, needs token
  Handle next_handle = 1;
  Actions spare; // swapped with the state machine's queue so buffers are reused
  bool applying = false;
  guint tick_source = 0;
  std::uint64_t http_requests = 0;
  std::uint64_t http_unauthorized = 0;
  std::uint64_t http_body_cut = 0;
  std::uint64_t http_forbidden = 0;
  bool listen_loopback = false;
  static bool is_loopback(SoupServerMessage *msg);

  void apply();
  void flush_all();
  void keepalive();
  void on_upgrade(SoupServerMessage *msg);
  void on_ws(SoupServerMessage *msg);
  void ws_text(WsConn &c, std::string_view text) override;
  void ws_binary(WsConn &c, std::size_t size) override;
  void ws_alive(WsConn &c) override;
  void ws_dirty(WsConn &c) override;
  void ws_closed(WsConn &c, std::uint16_t code, const char *why) override;
  void on_offer(SoupServerMessage *msg, const char *path, GHashTable *query);
  void on_static(SoupServerMessage *msg, const char *path);
  void finish_offer(const OfferResult &r);
  void early(SoupServerMessage *msg, const char *path);
  void watch_body(SoupServerMessage *msg, bool refused, bool too_long);
  void answer_now(SoupServerMessage *msg);
  // A connection taken from libsoup to answer a request before its body ended (answer_now).
  struct Linger {
    Impl *impl = nullptr;
    GSocket *sock = nullptr;
    GIOStream *stream = nullptr;
    GSource *reader = nullptr;
    guint timer = 0;
    std::size_t drained = 0;
    static constexpr std::size_t kLingerBytes = 16u << 20;
    void drain();
    static gboolean end(gpointer data);
    ~Linger();
  };
  std::vector<std::unique_ptr<Linger>> lingers;
  // HTTP connections (not yet WebSockets) per address, as weak references to their sockets.
  struct WeakSocket {
    GWeakRef ref;
    explicit WeakSocket(GSocket *s) { g_weak_ref_init(&ref, s); }
    ~WeakSocket() { g_weak_ref_clear(&ref); }
  };
  std::unordered_map<std::string, std::vector<std::unique_ptr<WeakSocket>>> http_conns;
  std::uint64_t http_address_limit = 0;
  std::int64_t last_sweep_us = 0;
  bool count_connection(SoupServerMessage *msg);
  std::size_t http_total = 0; // entries in http_conns
  void prune(std::vector<std::unique_ptr<WeakSocket>> &live);
  void sweep_connections();
  void arm_deadline(SoupServerMessage *msg);
  static void on_finished_idle(SoupServerMessage *m, gpointer data);
  std::uint64_t http_timeouts = 0;
  void add_early(const char *path);
};

Server::Server(ServerConfig config) : config_(std::move(config)), rooms_(config_.limits)
{
  impl_ = std::make_unique<Impl>();
  impl_->self = this;
  if (!config_.token.empty() && config_.child_token.empty()) config_.child_token = random_hex(16);
  rooms_.set_token(config_.token);
}

std::string random_hex(std::size_t bytes)
{
  std::string raw(bytes, '\0');
  std::size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
    if (n > 0)
      got += std::size_t(n);
    else if (errno != EINTR)
      g_error("getrandom failed: %s", g_strerror(errno));
  }
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

Server::~Server()
{
  shutdown();
  if (impl_->tick_source) g_source_remove(impl_->tick_source);
  if (impl_->flusher) {
    g_source_destroy(impl_->flusher);
    g_source_unref(impl_->flusher);
  }
  impl_->conns.clear();
  impl_->graveyard.clear();
  g_clear_object(&soup_);
}

std::vector<std::string> Server::uris() const
{
  std::vector<std::string> out;
  if (!soup_) return out;
  GSList *list = soup_server_get_uris(soup_);
  for (GSList *l = list; l; l = l->next) {
    g_autofree char *s = g_uri_to_string(static_cast<GUri *>(l->data));
    out.emplace_back(s);
  }
  g_slist_free_full(list, reinterpret_cast<GDestroyNotify>(g_uri_unref));
  return out;
}

namespace {
const char *header(SoupServerMessage *msg, const char *name)
{
  return soup_message_headers_get_one(soup_server_message_get_request_headers(msg), name);
}

// The host part of a Host header or origin authority: "[::1]:80" -> "::1", "a.b:80" -> "a.b".
std::string host_part(std::string_view authority)
{
  if (!authority.empty() && authority[0] == '[') {
    std::size_t close = authority.find(']');
    return std::string(
        authority.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  }
  std::size_t colon = authority.find(':');
  if (colon != std::string_view::npos && authority.find(':', colon + 1) == std::string_view::npos)
    authority = authority.substr(0, colon);
  return std::string(authority);
}

std::string lower(std::string s)
{
  for (char &c : s) c = g_ascii_tolower(c);
  return s;
}
} // namespace

bool Server::header_token_ok(SoupServerMessage *msg) const
{
  return auth::presents(msg, config_.token, auth::kBearer);
}

bool Server::authorized(SoupServerMessage *msg) const
{
  if (config_.token.empty()) return true;
  // The API also takes ?token= and X-Pointcast-Token: EventSource cannot set headers, and the API
  // only answers the daemon's own origin (see early()).
  const char *path = g_uri_get_path(soup_server_message_get_uri(msg));
  unsigned sources = auth::kBearer;
  if (g_str_has_prefix(path, "/api")) sources |= auth::kXHeader | auth::kQuery;
  return auth::presents(msg, config_.token, sources);
}

bool Server::query_token_is(SoupServerMessage *msg, const std::string &secret) const
{
  if (!secret.empty()) return auth::presents(msg, secret, auth::kQuery);
  bool found = false; // empty secret: is there one at all
  auth::query_token(msg, &found);
  return found;
}

bool Server::host_allowed(const std::string &host) const
{
  std::string h = lower(host);
  if (h.empty()) return false;
  if (g_hostname_is_ip_address(h.c_str()) || h == "localhost" ||
      g_str_has_suffix(h.c_str(), ".localhost"))
    return true;
  std::string me = lower(g_get_host_name());
  if (h == me || h == me + ".local" || h == lower(host_part(config_.host))) return true;
  for (const auto &o : config_.allow_origins) {
    const char *sep = strstr(o.c_str(), "://");
    if (sep && h == lower(host_part(sep + 3))) return true;
  }
  return false;
}

bool Server::origin_allowed(SoupServerMessage *msg, const char *origin) const
{
  std::string o = lower(origin);
  while (!o.empty() && o.back() == '/') o.pop_back();
  for (const auto &a : config_.allow_origins)
    if (o == lower(a)) return true;
  const char *host = header(msg, "Host");
  if (!host) return false;
  // The daemon's own origin: the scheme it serves and the Host the browser addressed.
  std::string own = std::string(config_.tls_cert.empty() ? "http://" : "https://") + lower(host);
  return o == own;
}

void Server::add_route(const std::string &path, RouteHandler handler, bool needs_token)
{
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

/* Checks run once the headers are in, before the body is read and before a WebSocket upgrade
 * (libsoup matches early handlers per path, so each route path gets one):
 *   - /api and DELETE /offer/...: Host must name this daemon (DNS rebinding), a browser's
 *     Origin must be the daemon's own or an --allow-origin one, CORS preflights are answered
 *     for those origins only, POST bodies must be application/json; with no token and a
 *     non-loopback listen address the API is off unless --allow-unauthenticated-api.
 *   - the token: "Authorization: Bearer" on /ws and /offer (never ?token=, which ends up in
 *     logs); a /ws without it may still send it in its register message (browsers cannot set
 *     headers on a WebSocket).
 *   - the body-size cap, for every request. */
void Server::Impl::early(SoupServerMessage *msg, const char *path)
{
  http_requests++;
  const ServerConfig &cfg = self->config();
  const char *method = soup_server_message_get_method(msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers(msg);
  bool api = g_str_has_prefix(path, "/api");
  bool offer = g_str_has_prefix(path, "/offer");
  bool ws = g_str_has_prefix(path, "/ws");
  bool preflight = !strcmp(method, "OPTIONS");
  bool guarded = api || (offer && g_str_has_prefix(path, "/offer/") && strcmp(method, "POST"));
  bool refused = false;
  auto refuse = [&](guint status, const std::string &why, const char *counter_log) {
    PC_LOG(Warning, kModule, "%s %s from %s refused: %s", method, path, remote_of(msg).c_str(),
           counter_log);
    soup_message_headers_replace(resp, "Connection", "close");
    respond_json_error(msg, status, why);
    refused = true;
  };
  const char *origin = header(msg, "Origin");
  if (guarded) {
    const char *host = header(msg, "Host");
    if (!host || !self->host_allowed(host_part(host))) {
      http_forbidden++;
      refuse(
          SOUP_STATUS_FORBIDDEN,
          std::string("Host \"") + (host ? host : "") +
              "\" is not a name of this daemon (a DNS rebinding page?); add it with --allow-origin",
          "Host not allowed");
    } else if (origin && !self->origin_allowed(msg, origin)) {
      http_forbidden++;
      refuse(SOUP_STATUS_FORBIDDEN,
             std::string("requests from ") + origin +
                 " are not allowed here (--allow-origin ORIGIN)",
             "cross-site Origin");
    } else if (api && cfg.token.empty() && !listen_loopback && !cfg.allow_unauthenticated_api) {
      http_forbidden++;
      refuse(SOUP_STATUS_FORBIDDEN,
             "the API is off: the daemon listens beyond loopback without --token "
             "(set --token, or --allow-unauthenticated-api to open it to anyone who can reach it)",
             "API without a token on a non-loopback address");
    } else if (origin) {
      soup_message_headers_replace(resp, "Access-Control-Allow-Origin", origin);
      soup_message_headers_append(resp, "Vary", "Origin");
      if (preflight && api) {
        soup_message_headers_replace(resp, "Access-Control-Allow-Methods",
                                     "GET, POST, DELETE, OPTIONS");
        soup_message_headers_replace(resp, "Access-Control-Allow-Headers",
                                     "Content-Type, Authorization, X-Pointcast-Token");
        soup_message_headers_replace(resp, "Access-Control-Max-Age", "600");
        soup_server_message_set_status(msg, SOUP_STATUS_NO_CONTENT, nullptr);
        refused = true; // answered
      }
    }
  }
  bool needs = ws || offer || api;
  for (auto &[p, t] : token_paths)
    if (t && g_str_has_prefix(path, p.c_str())) needs = true;
  if (!refused && needs && !preflight && !self->authorized(msg)) {
    if (ws && self->query_token_is(msg, cfg.child_token) && is_loopback(msg)) {
      // A sender this daemon started (pipelines.cpp): rtcpeer has no token property set there.
    } else if (ws && !header(msg, "Authorization") && !self->query_token_is(msg, {})) {
      // Upgraded, but the register message must carry the token (Rooms enforces it).
      g_object_set_data(G_OBJECT(msg), "pointcast-needs-token", GINT_TO_POINTER(1));
    } else {
      http_unauthorized++;
      bool in_url = !header(msg, "Authorization") && self->query_token_is(msg, {});
      // Close after the refusal: a WebSocket client that failed its handshake waits for that.
      soup_message_headers_replace(resp, "WWW-Authenticate", "Bearer realm=\"pointcast\"");
      refuse(
          SOUP_STATUS_UNAUTHORIZED,
          in_url
              ? "a token in the URL is not accepted (URLs end up in logs): send \"Authorization: "
                "Bearer ...\" or \"token\" in the register message"
              : "a token is required (Authorization: Bearer ...)",
          in_url ? "token in the URL" : "missing or wrong token");
    }
  }
  if (!refused && api && !strcmp(method, "POST")) {
    const char *ctype = soup_message_headers_get_content_type(
        soup_server_message_get_request_headers(msg), nullptr);
    if (!ctype || g_ascii_strcasecmp(ctype, "application/json"))
      refuse(SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
             std::string("Content-Type must be application/json, not ") + (ctype ? ctype : "none"),
             "not application/json");
  }
  const std::size_t cap = cfg.max_body_bytes;
  SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
  bool too_long = soup_message_headers_get_encoding(req) == SOUP_ENCODING_CONTENT_LENGTH &&
      soup_message_headers_get_content_length(req) > (goffset)cap;
  if (too_long && !refused) {
    soup_message_headers_replace(resp, "Connection", "close");
    respond_json_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                       "request body over " + std::to_string(cap) + " bytes (--max-body-size)");
  }
  // A refused request's body is never used: discard it as it arrives.
  watch_body(msg, refused || too_long, too_long);
}

bool Server::Impl::is_loopback(SoupServerMessage *msg)
{
  GSocketAddress *addr = soup_server_message_get_remote_address(msg);
  return addr && G_IS_INET_SOCKET_ADDRESS(addr) &&
      g_inet_address_get_is_loopback(
             g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(addr)));
}

/* Bodies are counted while libsoup reads them, and a body that passes --max-body-size is answered
 * there and then: a chunked one announces no length and is refused the moment it passes the cap
 * (a 300 MiB chunked POST used to be held whole, twice); one whose Content-Length is over the cap
 * already has its 413 and gets it at its first chunk; any other refused request past the cap too.
 * Below the cap a refused body is discarded as it arrives and libsoup answers after it. */
void Server::Impl::watch_body(SoupServerMessage *msg, bool refused, bool too_long)
{
  struct Count {
    Impl *impl;
    bool refused, too_long;
    std::size_t total = 0;
  };
  auto *count = new Count{this, refused, too_long};
  g_object_set_data_full(G_OBJECT(msg), "pointcast-body", count,
                         [](gpointer p) { delete static_cast<Count *>(p); });
  g_signal_connect(
      msg, "got-chunk", G_CALLBACK(+[](SoupServerMessage *m, GBytes *chunk, gpointer data) {
        auto *c = static_cast<Count *>(data);
        std::size_t cap = c->impl->self->config().max_body_bytes;
        c->total += g_bytes_get_size(chunk);
        SoupMessageBody *body = soup_server_message_get_request_body(m);
        if (c->refused) soup_message_body_truncate(body);
        if (!c->too_long && c->total <= cap) return;
        c->impl->http_body_cut++;
        soup_message_body_truncate(body);
        if (!c->refused)
          respond_json_error(m, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                             "request body over " + std::to_string(cap) +
                                 " bytes (--max-body-size)");
        PC_LOG(Warning, kModule, "%s %s from %s: body over %zu bytes, answered %u",
               soup_server_message_get_method(m), g_uri_get_path(soup_server_message_get_uri(m)),
               remote_of(m).c_str(), cap, soup_server_message_get_status(m));
        c->impl->answer_now(m);
      }),
      count);
}

/* libsoup 3.2 writes a response only once the whole request body is read (soup-server-message-
 * io-http1.c: io_read runs to BODY_DONE before io_write starts), and cannot be told to stop
 * reading. So the connection is taken from it (soup_server_message_steal_connection, safe inside
 * got-chunk: libsoup checks that the message still has its I/O after every callback), the
 * response the message holds is written by hand with "Connection: close", and the rest of what
 * the client sends is read and dropped for up to 2 s (16 MiB) before the socket closes: closing
 * with unread input would reset the connection and could destroy the answer before the client
 * read it (the "lingering close" of Apache and nginx). */
void Server::Impl::answer_now(SoupServerMessage *msg)
{
  guint status = soup_server_message_get_status(msg);
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + soup_status_get_phrase(status) + "\r\n";
  soup_message_headers_foreach(
      soup_server_message_get_response_headers(msg),
      [](const char *name, const char *value, gpointer data) {
        if (!g_ascii_strcasecmp(name, "Content-Length") ||
            !g_ascii_strcasecmp(name, "Connection") ||
            !g_ascii_strcasecmp(name, "Transfer-Encoding"))
          return;
        *static_cast<std::string *>(data) += std::string(name) + ": " + value + "\r\n";
      },
      &out);
  g_autoptr(GBytes) body = soup_message_body_flatten(soup_server_message_get_response_body(msg));
  gsize n = 0;
  auto *bytes = static_cast<const char *>(g_bytes_get_data(body, &n));
  out += "Content-Length: " + std::to_string(n) + "\r\nConnection: close\r\n\r\n";
  out.append(bytes ? bytes : "", n);

  GSocket *sock = soup_server_message_get_socket(msg);
  if (!sock) return;
  auto linger = std::make_unique<Linger>();
  linger->impl = this;
  linger->sock = G_SOCKET(g_object_ref(sock));
  g_object_ref(msg);
  linger->stream = soup_server_message_steal_connection(msg);
  g_object_unref(msg);
  if (!linger->stream) {
    g_socket_shutdown(sock, TRUE, TRUE, nullptr);
    return;
  }
  // A few hundred bytes on a connection that has sent at most a 100 Continue: the socket buffer
  // takes them at once (if not, the client gets the close it got before).
  g_autoptr(GError) err = nullptr;
  gsize wrote = 0;
  if (!g_pollable_stream_write_all(g_io_stream_get_output_stream(linger->stream), out.data(),
                                   out.size(), FALSE, &wrote, nullptr, &err))
    PC_LOG(Info, kModule, "could not write the %u answer: %s", status, err->message);
  Linger *l = linger.get();
  lingers.push_back(std::move(linger));
  l->drain();
}

void Server::Impl::Linger::drain()
{
  g_socket_shutdown(sock, FALSE, TRUE, nullptr); // FIN after the answer; reading goes on
  timer = g_timeout_add_seconds(2, Linger::end, this);
  reader = g_socket_create_source(sock, GIOCondition(G_IO_IN | G_IO_HUP | G_IO_ERR), nullptr);
  g_source_set_callback(
      reader, G_SOURCE_FUNC(+[](GSocket *s, GIOCondition, gpointer d) -> gboolean {
        auto *l = static_cast<Linger *>(d);
        char buf[16384];
        for (;;) {
          g_autoptr(GError) e = nullptr;
          gssize got = g_socket_receive_with_blocking(s, buf, sizeof buf, FALSE, nullptr, &e);
          if (got > 0 && (l->drained += std::size_t(got)) < kLingerBytes) continue;
          if (got < 0 && g_error_matches(e, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            return G_SOURCE_CONTINUE;
          break; // EOF, an error, or enough
        }
        // Ended from an idle callback: this source is being dispatched.
        if (l->timer) g_source_remove(l->timer);
        l->timer = g_idle_add(Linger::end, l);
        return G_SOURCE_REMOVE;
      }),
      this, nullptr);
  g_source_attach(reader, g_main_context_get_thread_default());
}

gboolean Server::Impl::Linger::end(gpointer data)
{
  auto *l = static_cast<Linger *>(data);
  l->timer = 0;
  auto &all = l->impl->lingers;
  auto it = std::find_if(all.begin(), all.end(),
                         [l](const std::unique_ptr<Linger> &p) { return p.get() == l; });
  if (it != all.end()) all.erase(it);
  return G_SOURCE_REMOVE;
}

Server::Impl::Linger::~Linger()
{
  if (timer) g_source_remove(timer);
  if (reader) {
    g_source_destroy(reader);
    g_source_unref(reader);
  }
  g_socket_close(sock, nullptr);
  g_object_unref(sock);
  if (stream) g_object_unref(stream);
}

/* Every request must be read in full within --http-timeout from the moment libsoup starts it:
 * that covers a slow or stalled header or body (slowloris), a TLS handshake that never ends and
 * a keep-alive connection left idle (libsoup starts the next request as soon as one is done).
 * Paused /offer requests and event streams are past this point: their own limits apply. */
/* --max-connections-per-address covers HTTP connections too (WebSockets are counted by Rooms once
 * upgraded): each may hold up to 64 KiB of headers and a body up to --max-body-size for
 * --http-timeout, so one address opening thousands of them could hold gigabytes. Counted from
 * a connection's first request until its socket goes (or becomes a WebSocket); past the limit
 * the connection is closed before libsoup reads its headers. */
// Drops the sockets that are gone, closed or WebSockets now (a count kept by finalizers would
// never go down if libsoup kept a socket alive, see release_leaked_accept_ref).
void Server::Impl::prune(std::vector<std::unique_ptr<WeakSocket>> &live)
{
  std::size_t before = live.size();
  live.erase(std::remove_if(live.begin(), live.end(),
                            [](const std::unique_ptr<WeakSocket> &w) {
                              g_autoptr(GSocket) s = G_SOCKET(g_weak_ref_get(&w->ref));
                              return !s || g_socket_is_closed(s) ||
                                  g_object_get_data(G_OBJECT(s), "pointcast-websocket");
                            }),
             live.end());
  http_total -= before - live.size();
}

// Once a second: addresses whose connections all ended are forgotten.
void Server::Impl::sweep_connections()
{
  for (auto it = http_conns.begin(); it != http_conns.end();) {
    prune(it->second);
    it = it->second.empty() ? http_conns.erase(it) : std::next(it);
  }
}

bool Server::Impl::count_connection(SoupServerMessage *msg)
{
  GSocket *sock = soup_server_message_get_socket(msg);
  std::size_t limit = self->config().limits.max_connections_per_address;
  if (!sock || g_object_get_data(G_OBJECT(sock), "pointcast-counted")) return true;
  g_object_set_data(G_OBJECT(sock), "pointcast-counted", GINT_TO_POINTER(1));
  const char *ip = soup_server_message_get_remote_host(msg);
  auto &live = http_conns[ip ? ip : "?"];
  prune(live);
  if (limit && live.size() >= limit) {
    http_address_limit++;
    PC_LOG(Warning, kModule, "HTTP connection from %s closed: %zu from that address already",
           remote_of(msg).c_str(), limit);
    g_socket_shutdown(sock, TRUE, TRUE, nullptr);
    return false;
  }
  // Many addresses (an IPv6 prefix) meet --max-clients, applied to HTTP connections apart.
  std::size_t total = self->config().limits.max_clients;
  if (total && http_total >= total) {
    http_address_limit++;
    PC_LOG(Warning, kModule, "HTTP connection from %s closed: %zu HTTP connections open",
           remote_of(msg).c_str(), total);
    g_socket_shutdown(sock, TRUE, TRUE, nullptr);
    return false;
  }
  live.push_back(std::make_unique<WeakSocket>(sock));
  http_total++;
  return true;
}

/* libsoup before 3.4 never drops the reference g_socket_accept() gave it (soup-listener.c;
 * upstream commit b545d5f0 "soup-listener: Plug a leak", in 3.4.0, not in Debian 12's 3.2.3):
 * every connection left its GSocket behind, ~450 bytes (20,000 connections: +9 MiB, also in a
 * bare SoupServer). The first request-started of a connection is emitted while that reference
 * and the connection's own are the only ones (soup_server_connection_accepted), so a count of 2
 * there is the leak, and dropping one leaves the connection's; a fixed libsoup shows 1 and is
 * left alone. */
static void release_leaked_accept_ref(SoupServerMessage *msg)
{
  static const bool leaky = soup_get_major_version() == 3 && soup_get_minor_version() < 4;
  GSocket *sock = soup_server_message_get_socket(msg);
  if (!leaky || !sock || g_object_get_data(G_OBJECT(sock), "pointcast-seen")) return;
  g_object_set_data(G_OBJECT(sock), "pointcast-seen", GINT_TO_POINTER(1));
  if (g_atomic_int_get(&G_OBJECT(sock)->ref_count) == 2) g_object_unref(sock);
}

void Server::Impl::arm_deadline(SoupServerMessage *msg)
{
  release_leaked_accept_ref(msg);
  if (!count_connection(msg)) return;
  struct Deadline {
    Impl *impl;
    SoupServerMessage *msg;
    guint source = 0;
  };
  auto *d = new Deadline{this, msg};
  d->source = g_timeout_add_seconds(
      self->config().http_timeout,
      [](gpointer p) -> gboolean {
        auto *d = static_cast<Deadline *>(p);
        d->source = 0;
        d->impl->http_timeouts++;
        PC_LOG(Info, kModule, "HTTP connection from %s closed: request not read within %u s",
               remote_of(d->msg).c_str(), d->impl->self->config().http_timeout);
        if (GSocket *sock = soup_server_message_get_socket(d->msg))
          g_socket_shutdown(sock, TRUE, TRUE, nullptr);
        return G_SOURCE_REMOVE;
      },
      d);
  g_object_set_data_full(G_OBJECT(msg), "pointcast-deadline", d, [](gpointer p) {
    auto *d = static_cast<Deadline *>(p);
    if (d->source) g_source_remove(d->source);
    delete d;
  });
  g_signal_connect(msg, "got-body", G_CALLBACK(+[](SoupServerMessage *m, gpointer) {
                     g_object_set_data(G_OBJECT(m), "pointcast-deadline", nullptr);
                   }),
                   nullptr);
  GSocket *sock = soup_server_message_get_socket(msg);
  if (!sock) return;
  g_object_set_data(G_OBJECT(sock), "pointcast-idle", nullptr); // the connection is busy again
  // libsoup starts the next request on a keep-alive connection only when bytes arrive: the idle
  // time between requests gets its own timer, on the socket.
  g_signal_connect(msg, "finished", G_CALLBACK(on_finished_idle), this);
}

void Server::Impl::on_finished_idle(SoupServerMessage *m, gpointer data)
{

  if (g_object_get_data(G_OBJECT(m), "pointcast-upgraded"))
    return; // a WebSocket now: keep-alive pings watch it
  GSocket *s = soup_server_message_get_socket(m);
  if (!s || !g_socket_is_connected(s)) return;
  auto *impl = static_cast<Impl *>(data);
  struct Idle {
    GSocket *sock;
    guint source;
  };
  auto *idle = new Idle{s, 0};
  idle->source = g_timeout_add_seconds(
      impl->self->config().http_timeout,
      [](gpointer p) -> gboolean {
        auto *i = static_cast<Idle *>(p);
        i->source = 0;
        g_socket_shutdown(i->sock, TRUE, TRUE, nullptr);
        return G_SOURCE_REMOVE;
      },
      idle);
  g_object_set_data_full(G_OBJECT(s), "pointcast-idle", idle, [](gpointer p) {
    auto *i = static_cast<Idle *>(p);
    if (i->source) g_source_remove(i->source);
    delete i;
  });
}

void Server::Impl::add_early(const char *path)
{
  soup_server_add_early_handler(
      self->soup(), path,
      [](SoupServer *, SoupServerMessage *msg, const char *p, GHashTable *, gpointer data) {
        static_cast<Impl *>(data)->early(msg, p);
      },
      this, nullptr);
}

bool Server::start(std::string *error)
{
  if (config_.tls_cert.empty() != config_.tls_key.empty()) {
    *error = "--tls-cert and --tls-key go together";
    return false;
  }
  GError *err = nullptr;
  g_autoptr(GTlsCertificate) cert = nullptr;
  if (!config_.tls_cert.empty()) {
    cert =
        g_tls_certificate_new_from_files(config_.tls_cert.c_str(), config_.tls_key.c_str(), &err);
    if (!cert) {
      *error = std::string("cannot load TLS certificate/key: ") + err->message;
      g_error_free(err);
      return false;
    }
  }
  soup_ = soup_server_new("server-header", "pointcast-signaling", nullptr);
  if (cert) soup_server_set_tls_certificate(soup_, cert);
  // No permessage-deflate: signaling messages are small, compression costs CPU per message, and
  // inflating would let a tiny frame expand past the payload limit (a decompression bomb).
  soup_server_remove_websocket_extension(soup_, SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);

  // libsoup answers the upgrade handshake; the connection is then ours (websocket.h).
  soup_server_add_handler(
      soup_, "/ws",
      [](SoupServer *, SoupServerMessage *msg, const char *, GHashTable *, gpointer data) {
        static_cast<Impl *>(data)->on_ws(msg);
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
                "pointcast_signaling_http_requests_total " +
            std::to_string(impl->http_requests) +
            "\n"
            "# HELP pointcast_signaling_http_unauthorized_total Requests refused for a missing or "
            "wrong token.\n"
            "# TYPE pointcast_signaling_http_unauthorized_total counter\n"
            "pointcast_signaling_http_unauthorized_total " +
            std::to_string(impl->http_unauthorized) +
            "\n"
            "# HELP pointcast_signaling_http_body_cut_total Requests answered (413) and closed "
            "before their body ended: over --max-body-size.\n"
            "# TYPE pointcast_signaling_http_body_cut_total counter\n"
            "pointcast_signaling_http_body_cut_total " +
            std::to_string(impl->http_body_cut) +
            "\n"
            "# HELP pointcast_signaling_http_forbidden_total Requests refused for their Host or "
            "Origin, or an API without a token.\n"
            "# TYPE pointcast_signaling_http_forbidden_total counter\n"
            "pointcast_signaling_http_forbidden_total " +
            std::to_string(impl->http_forbidden) +
            "\n"
            "# HELP pointcast_signaling_http_address_limit_total HTTP connections closed by "
            "--max-connections-per-address.\n"
            "# TYPE pointcast_signaling_http_address_limit_total counter\n"
            "pointcast_signaling_http_address_limit_total " +
            std::to_string(impl->http_address_limit) +
            "\n"
            "# HELP pointcast_signaling_http_timeouts_total HTTP connections closed by "
            "--http-timeout.\n"
            "# TYPE pointcast_signaling_http_timeouts_total counter\n"
            "pointcast_signaling_http_timeouts_total " +
            std::to_string(impl->http_timeouts) + "\n";
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

  for (const char *p : {"/ws", "/healthz", "/metrics", "/offer", "/"}) impl_->add_early(p);
  g_signal_connect(soup_, "request-started",
                   G_CALLBACK(+[](SoupServer *, SoupServerMessage *msg, gpointer data) {
                     static_cast<Impl *>(data)->arm_deadline(msg);
                   }),
                   impl_.get());
  for (auto &install : route_setups_) install(*this);

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
  impl_->listen_loopback = g_inet_address_get_is_loopback(addr);
  g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(addr, config_.port);
  auto opts = static_cast<SoupServerListenOptions>(cert ? SOUP_SERVER_LISTEN_HTTPS : 0);
  // Our own socket for a deep accept backlog: GSocket's default of 10 drops SYNs when many
  // clients (re)connect at once, e.g. after a restart.
  g_autoptr(GSocket) sock = g_socket_new(g_inet_address_get_family(addr), G_SOCKET_TYPE_STREAM,
                                         G_SOCKET_PROTOCOL_TCP, &err);
  if (sock) {
    g_socket_set_listen_backlog(sock, 4096);
    if (!g_socket_bind(sock, sa, TRUE, &err) || !g_socket_listen(sock, &err)) g_clear_object(&sock);
  }
  if (!sock || !soup_server_listen_socket(soup_, sock, opts, &err)) {
    *error = "cannot listen on " + config_.host + ":" + std::to_string(config_.port) + ": " +
        (err ? err->message : "?");
    g_clear_error(&err);
    return false;
  }
  impl_->tick_source = g_timeout_add(
      250,
      [](gpointer data) -> gboolean {
        auto *impl = static_cast<Impl *>(data);
        impl->self->rooms().tick(Clock::now());
        impl->apply();
        impl->keepalive();
        if (std::int64_t now = g_get_monotonic_time(); now - impl->last_sweep_us >= 1000000) {
          impl->last_sweep_us = now;
          impl->sweep_connections();
        }
        return G_SOURCE_CONTINUE;
      },
      impl_.get());
  // Output is written once per main-loop iteration, just before the loop polls: everything
  // relayed to a connection in that iteration leaves in one write.
  static GSourceFuncs flush_funcs = {
      [](GSource *src, gint *timeout) -> gboolean {
        *timeout = -1;
        (*reinterpret_cast<Impl **>(reinterpret_cast<char *>(src) + sizeof(GSource)))->flush_all();
        return FALSE;
      },
      [](GSource *) -> gboolean { return FALSE; },
      [](GSource *, GSourceFunc, gpointer) -> gboolean { return G_SOURCE_CONTINUE; },
      nullptr,
      nullptr,
      nullptr};
  impl_->flusher = g_source_new(&flush_funcs, sizeof(GSource) + sizeof(Impl *));
  *reinterpret_cast<Impl **>(reinterpret_cast<char *>(impl_->flusher) + sizeof(GSource)) =
      impl_.get();
  g_source_set_priority(impl_->flusher, G_PRIORITY_HIGH);
  g_source_attach(impl_->flusher, g_main_context_get_thread_default());
  return true;
}

void Server::shutdown()
{
  if (!soup_) return;
  std::vector<WsConn *> open;
  for (auto &[h, c] : impl_->conns) open.push_back(c.get());
  for (WsConn *c : open) c->close(1001, "server shutting down");
  impl_->flush_all();
  for (auto &[id, p] : impl_->offers) {
    g_signal_handler_disconnect(p.msg, p.finished_handler);
    respond_json_error(p.msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "server shutting down");
    soup_server_message_unpause(p.msg);
  }
  impl_->offers.clear();
}

void Server::Impl::on_ws(SoupServerMessage *msg)
{
  GError *err = nullptr;
  if (!soup_websocket_server_check_handshake(msg, nullptr, nullptr, nullptr, &err)) {
    respond_json_error(msg, SOUP_STATUS_BAD_REQUEST,
                       std::string("not a WebSocket handshake: ") + err->message);
    g_error_free(err);
    return;
  }
  soup_websocket_server_process_handshake(msg, nullptr, nullptr, nullptr, nullptr);
  g_object_set_data(G_OBJECT(msg), "pointcast-upgraded", GINT_TO_POINTER(1));
  g_signal_connect(msg, "wrote-informational", G_CALLBACK(+[](SoupServerMessage *m, gpointer data) {
                     static_cast<Impl *>(data)->on_upgrade(m);
                   }),
                   this);
}

void Server::Impl::on_upgrade(SoupServerMessage *msg)
{
  const ServerConfig &cfg = self->config();
  std::string remote = remote_of(msg);
  const char *ip = soup_server_message_get_remote_host(msg);
  std::string address = ip ? ip : "?";
  bool authenticated = !g_object_get_data(G_OBJECT(msg), "pointcast-needs-token");
  int poll_fd = -1;
  if (GSocket *sock = soup_server_message_get_socket(msg)) {
    int fd = g_socket_get_fd(sock);
    if (cfg.tls_cert.empty()) poll_fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (cfg.ping_interval) {
      // Also let the kernel give up on a peer that stopped acknowledging (the ping provokes it).
      unsigned timeout_ms = cfg.ping_interval * 2000 + 1000;
      setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof timeout_ms);
    }
  }
  if (GSocket *sock = soup_server_message_get_socket(msg))
    g_object_set_data(G_OBJECT(sock), "pointcast-websocket", GINT_TO_POINTER(1)); // Rooms counts it
  g_object_ref(msg);
  GIOStream *stream = soup_server_message_steal_connection(msg);
  g_object_unref(msg);
  if (!stream) return;
  Handle h = next_handle++;
  // Frames far over the limit end the connection (1009); between the limit and this the state
  // machine answers with an error and the client stays.
  std::size_t hard = std::max<std::size_t>(cfg.limits.max_message_bytes * 4 + 4096, 64 * 1024);
  auto conn = std::make_unique<WsConn>(stream, poll_fd, this, h, hard, cfg.max_queued_bytes);
  g_object_unref(stream);
  WsConn *c = conn.get();
  conns.emplace(h, std::move(conn));
  self->rooms().connect(h, Clock::now(), remote, address, authenticated);
  apply();
  c->start();
}

void Server::Impl::ws_text(WsConn &c, std::string_view text)
{
  self->rooms().text(c.handle(), text, Clock::now());
  apply();
}

void Server::Impl::ws_binary(WsConn &c, std::size_t size)
{
  self->rooms().binary(c.handle(), size, Clock::now());
  apply();
}

void Server::Impl::ws_alive(WsConn &c)
{
  self->rooms().alive(c.handle(), Clock::now());
  apply();
}

void Server::Impl::ws_dirty(WsConn &c)
{
  dirty.push_back(&c);
}

void Server::Impl::ws_closed(WsConn &c, std::uint16_t code, const char *why)
{
  Handle h = c.handle();
  PC_LOG(Debug, kModule, "connection %llu closed (%u, %s)", (unsigned long long)h, code, why);
  auto it = conns.find(h);
  if (it != conns.end()) {
    graveyard.push_back(std::move(it->second));
    conns.erase(it);
  }
  // Flushing must not touch it any more.
  dirty.erase(std::remove(dirty.begin(), dirty.end(), &c), dirty.end());
  self->rooms().disconnect(h, Clock::now());
  apply();
}

void Server::Impl::flush_all()
{
  // Flushing can close a connection, whose peer_left then dirties others: loop until quiet.
  std::vector<WsConn *> batch;
  while (!dirty.empty()) {
    batch.swap(dirty);
    for (std::size_t i = 0; i < batch.size(); i++) {
      WsConn *c = batch[i];
      if (!c) continue;
      c->dirty = false;
      c->flush();
    }
    batch.clear();
  }
  graveyard.clear();
}

void Server::Impl::keepalive()
{
  unsigned interval = self->config().ping_interval;
  if (!interval) return;
  std::int64_t now = g_get_monotonic_time();
  if (now - last_keepalive_us < 1000000) return;
  last_keepalive_us = now;
  std::vector<WsConn *> all;
  all.reserve(conns.size());
  for (auto &[h, c] : conns) all.push_back(c.get());
  for (WsConn *c : all)
    if (!c->keepalive(now, std::int64_t(interval) * 1000000))
      PC_LOG(Info, kModule, "connection %llu dropped: no answer to keep-alive pings",
             (unsigned long long)c->handle());
}

void Server::apply_actions()
{
  impl_->apply();
}

void Server::Impl::apply()
{
  // A send can fail and close a connection synchronously, which re-enters through "closed":
  // the nested call leaves its actions queued and this loop picks them up.
  if (applying) return;
  applying = true;
  Actions &queued = self->rooms().actions();
  while (!queued.empty()) {
    std::swap(spare, queued);
    for (const auto &s : spare.sends) {
      auto it = conns.find(s.to);
      if (it != conns.end()) it->second->send_text(spare.texts[s.text]);
    }
    for (const auto &c : spare.closes) {
      auto it = conns.find(c.client);
      if (it != conns.end()) it->second->close(c.code, c.reason);
    }
    for (const auto &r : spare.offers) finish_offer(r);
    for (Handle h : spare.probes) {
      auto it = conns.find(h);
      if (it != conns.end()) it->second->probe();
    }
    spare.clear();
  }
  queued.clear();
  applying = false;
}

void Server::Impl::finish_offer(const OfferResult &r)
{
  auto it = offers.find(r.offer_id);
  if (it == offers.end()) return;
  PendingOffer p = it->second;
  offers.erase(it);
  g_signal_handler_disconnect(p.msg, p.finished_handler);
  if (r.status == 200) {
    if (p.whip) {
      respond_text(p.msg, SOUP_STATUS_CREATED, r.answer_sdp, "application/sdp");
      // The resource URL is a capability (DELETE ends the session): random, not "http-<n>".
      std::string session = random_hex(16);
      whip_sessions.emplace(session, p.peer_id);
      whip_order.push_back(session);
      while (whip_order.size() > 1024) { // as many as Rooms keeps finished offers for
        whip_sessions.erase(whip_order.front());
        whip_order.pop_front();
      }
      soup_message_headers_replace(soup_server_message_get_response_headers(p.msg), "Location",
                                   ("/offer/" + session).c_str());
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

void Server::Impl::on_offer(SoupServerMessage *msg, const char *path, GHashTable *query)
{
  const char *method = soup_server_message_get_method(msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers(msg);
  bool resource = g_str_has_prefix(path, "/offer/");
  // POST /offer is for any page (the seed systems serve theirs from another port); a session
  // resource only for allowed origins, which early() already checked.
  if (!resource) soup_message_headers_replace(resp, "Access-Control-Allow-Origin", "*");
  if (!strcmp(method, "OPTIONS")) {
    soup_message_headers_replace(resp, "Access-Control-Allow-Methods",
                                 resource ? "DELETE, OPTIONS" : "POST, OPTIONS");
    soup_message_headers_replace(resp, "Access-Control-Allow-Headers",
                                 "Content-Type, Authorization");
    soup_message_headers_replace(resp, "Access-Control-Expose-Headers", "Location");
    soup_server_message_set_status(msg, SOUP_STATUS_NO_CONTENT, nullptr);
    return;
  }
  if (resource) {
    // WHIP session resource: DELETE ends it.
    if (strcmp(method, "DELETE")) {
      soup_message_headers_replace(resp, "Allow", "DELETE, OPTIONS");
      respond_json_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "use DELETE on a session resource");
      return;
    }
    auto it = whip_sessions.find(path + strlen("/offer/"));
    if (it != whip_sessions.end() && self->rooms().end_session(it->second)) {
      whip_sessions.erase(it);
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
  const char *room =
      query ? static_cast<const char *>(g_hash_table_lookup(query, "room")) : nullptr;
  const char *target =
      query ? static_cast<const char *>(g_hash_table_lookup(query, "target")) : nullptr;
  if (!room || !*room) room = "default";

  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  g_autoptr(GBytes) bytes = soup_message_body_flatten(body);
  gsize size = 0;
  auto *data = static_cast<const char *>(g_bytes_get_data(bytes, &size));
  std::string text(data ? data : "", size);
  const char *ctype =
      soup_message_headers_get_content_type(soup_server_message_get_request_headers(msg), nullptr);
  bool whip = ctype && !g_ascii_strcasecmp(ctype, "application/sdp");
  std::string sdp;
  if (whip) {
    sdp = std::move(text);
  } else {
    if (ctype && g_ascii_strcasecmp(ctype, "application/json") &&
        g_ascii_strcasecmp(ctype, "text/plain")) {
      respond_json_error(msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
                         std::string("Content-Type ") + ctype +
                             " is neither application/json nor application/sdp");
      return;
    }
    // Bounded first: json-glib's recursion crashed on a body of a million '['.
    if (auto bad = protocol::check_json(text)) {
      respond_json_error(msg, SOUP_STATUS_BAD_REQUEST,
                         "body is not acceptable JSON: " + bad->message);
      return;
    }
    g_autoptr(JsonParser) parser = json_parser_new();
    GError *err = nullptr;
    if (text.empty() ||
        !json_parser_load_from_data(parser, text.data(), (gssize)text.size(), &err)) {
      respond_json_error(msg, SOUP_STATUS_BAD_REQUEST,
                         std::string("body is not JSON: ") + (err ? err->message : "empty body"));
      g_clear_error(&err);
      return;
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
      respond_json_error(msg, SOUP_STATUS_BAD_REQUEST,
                         "body must be a JSON object {\"sdp\":...,\"type\":\"offer\"}");
      return;
    }
    JsonObject *o = json_node_get_object(root);
    JsonNode *s = json_object_get_member(o, "sdp");
    JsonNode *t = json_object_get_member(o, "type");
    if (!s || !JSON_NODE_HOLDS_VALUE(s) || json_node_get_value_type(s) != G_TYPE_STRING) {
      respond_json_error(msg, SOUP_STATUS_BAD_REQUEST, "body needs a string member \"sdp\"");
      return;
    }
    if (t &&
        (!JSON_NODE_HOLDS_VALUE(t) || json_node_get_value_type(t) != G_TYPE_STRING ||
         strcmp(json_node_get_string(t), "offer"))) {
      respond_json_error(msg, SOUP_STATUS_BAD_REQUEST, "\"type\" must be \"offer\"");
      return;
    }
    sdp = json_node_get_string(s);
  }
  if (sdp.rfind("v=0", 0) != 0 || sdp.find("\nm=") == std::string::npos) {
    respond_json_error(
        msg, SOUP_STATUS_BAD_REQUEST,
        "the offer is not an SDP session description (must start with v=0 and have an m= line)");
    return;
  }
  if (!g_utf8_validate(sdp.data(), (gssize)sdp.size(), nullptr)) {
    respond_json_error(msg, SOUP_STATUS_BAD_REQUEST, "the SDP is not valid UTF-8");
    return;
  }
  // The answerer gets it as a room message, which must fit the room's message limit (rtcpeer
  // and browsers drop a connection on a bigger one: an oversized POST would disconnect them).
  std::string quoted;
  protocol::append_escaped(quoted, sdp);
  constexpr std::size_t kEnvelope = 128; // {"type":"offer","from_id":"http-N","sdp":{...},...}
  if (quoted.size() + kEnvelope > self->config().limits.max_message_bytes) {
    respond_json_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                       "the SDP is " + std::to_string(quoted.size()) +
                           " bytes as a room message; answerers take at most " +
                           std::to_string(self->config().limits.max_message_bytes) +
                           " (--max-message-size)");
    return;
  }
  const char *ip = soup_server_message_get_remote_host(msg);
  OfferStart st =
      self->rooms().begin_offer(room, sdp, target ? target : "", Clock::now(), ip ? ip : "?");
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
        // Only reached when libsoup finishes the message before the answer (answered offers
        // disconnect this first). libsoup 3.2 does not watch a paused message's socket, so an
        // HTTP client that hangs up is mostly noticed by --offer-timeout instead.
        auto *x = static_cast<Ctx *>(user);
        if (x->impl->offers.erase(x->id)) {
          x->impl->self->rooms().end_offer(x->id);
          x->impl->apply();
        }
      }),
      new Ctx{this, st.offer_id},
      [](gpointer user, GClosure *) { delete static_cast<Ctx *>(user); }, GConnectFlags(0));
  offers.emplace(st.offer_id, p);
  soup_server_message_pause(msg);
  apply();
}

void Server::Impl::on_static(SoupServerMessage *msg, const char *path)
{
  const char *method = soup_server_message_get_method(msg);
  if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow",
                                 "GET, HEAD");
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
  if (rel.empty() || rel.back() == '/') rel += "index.html";
  std::string full = root + "/" + rel;
  if (g_file_test(full.c_str(), G_FILE_TEST_IS_DIR)) full += "/index.html";
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
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control",
                               "no-cache");
  soup_server_message_set_response(msg, mime_for(rfull), SOUP_MEMORY_TAKE, contents, len);
}

} // namespace pointcast::signaling
