// SPDX-License-Identifier: LGPL-2.1-or-later
/* pointcast-signaling's transport: a SoupServer carrying the room protocol on WebSocket /ws and
 * the HTTP endpoints (/offer, /healthz, /metrics, static files). All protocol decisions are made
 * by Rooms (rooms.h); this file only moves bytes between sockets and the state machine.
 *
 * Other route sets (pipelineroutes.cpp: /api/...) are handed to add_routes() by main.cpp. */
#pragma once

#include "rooms.h"

#include <libsoup/soup.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pointcast::signaling {

struct ServerConfig {
  std::string host = "0.0.0.0";
  int port = 8765;                     // 0: any free port (the log line "listening on" tells which)
  std::string tls_cert, tls_key;       // both set: https:// and wss://
  std::string token;                   // non-empty: required on /ws, /offer and added routes
  std::string web_root;                // static files; empty: none
  std::string pipelines_dir;           // for routes that start pipelines (see pipelines.cpp)
  unsigned max_pipelines = 4;          // senders those routes may run at once
  unsigned max_event_subscribers = 32; // open GET /api/events streams
  unsigned ping_interval = 20;         // seconds between WebSocket pings; 0: none
  std::size_t max_body_bytes = 1 << 20;   // any HTTP request body, chunked or not
  std::size_t max_queued_bytes = 4 << 20; // unsent output per WebSocket; past it: dropped
  unsigned http_timeout = 15; // seconds for a request's headers and body (and TLS handshake)
  std::vector<std::string> allow_origins; // besides the daemon's own, for /api and DELETE /offer
  bool allow_unauthenticated_api = false; // /api without a token on a non-loopback address
  // Accepted as ?token= on /ws from loopback only: how senders the daemon starts get in (their
  // rtcpeer has no token property set). Random per run; never the user's token.
  std::string child_token;
  Limits limits;
};

class Server;
using RouteHandler =
    std::function<void(SoupServerMessage *msg, const char *path, GHashTable *query)>;

class Server {
public:
  explicit Server(ServerConfig config);
  ~Server();
  Server(const Server &) = delete;
  Server &operator=(const Server &) = delete;

  // Binds and starts serving on the thread-default main context. False with *error on failure.
  bool start(std::string *error);
  // Closes every WebSocket (1001, going away) and stops listening.
  void shutdown();

  // Queues a set of routes; start() installs them once the SoupServer exists.
  void add_routes(std::function<void(Server &)> install);
  // Adds an HTTP route below `path` (from inside a route set). needs_token: refused with 401 unless the token is presented
  // (when the daemon has one).
  void add_route(const std::string &path, RouteHandler handler, bool needs_token = true);
  // True when msg carries the configured token (or none is configured): "Authorization: Bearer",
  // and for /api also ?token= or X-Pointcast-Token.
  bool authorized(SoupServerMessage *msg) const;
  bool header_token_ok(SoupServerMessage *msg) const;
  // ?token= equals secret (secret empty: any ?token= at all).
  bool query_token_is(SoupServerMessage *msg, const std::string &secret) const;
  // Host names that address this daemon (IP literals, localhost, this machine, --host, the hosts
  // of --allow-origin); the Origin check: the daemon's own origin or an --allow-origin one.
  bool host_allowed(const std::string &host) const;
  bool origin_allowed(SoupServerMessage *msg, const char *origin) const;

  const ServerConfig &config() const { return config_; }
  Rooms &rooms() { return rooms_; }
  // Carries out what rooms() queued outside the server's own events (cluster input).
  void apply_actions();
  SoupServer *soup() const { return soup_; }
  std::vector<std::string> uris() const;

  struct Impl;

private:
  ServerConfig config_;
  Rooms rooms_;
  SoupServer *soup_ = nullptr;
  std::vector<std::function<void(Server &)>> route_setups_;
  std::unique_ptr<Impl> impl_;
};

// Shared helpers for route handlers.
std::string random_hex(std::size_t bytes); // from getrandom(): for unguessable ids
void respond_text(SoupServerMessage *msg, guint status, const std::string &body,
                  const char *content_type = "text/plain; charset=utf-8");
void respond_json_error(SoupServerMessage *msg, guint status, const std::string &reason);

} // namespace pointcast::signaling
