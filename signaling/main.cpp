// SPDX-License-Identifier: LGPL-2.1-or-later
/* pointcast-signaling: the room-protocol WebSocket server with the /offer bridge, health,
 * metrics and the web viewer's static files. CLI, logging and the main loop only; see server.h
 * and rooms.h for the rest. */
#include "cluster.h"
#include "docroutes.h"
#include "log.h"
#include "pipelineroutes.h"
#include "server.h"

#include <glib-unix.h>

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

using namespace pointcast;
using namespace pointcast::signaling;

namespace {

void raise_fd_limit()
{
  // Every client is a socket; the usual soft limit of 1024 would cap the daemon far too early.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
  if (!s || !*s) return false;
  char *end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s, &end, 10);
  if (errno || *end || v > max || s[0] == '-') return false;
  *out = v;
  return true;
}

} // namespace

int main(int argc, char **argv)
{
  g_autofree char *host = nullptr, *log_level = nullptr, *tls_cert = nullptr, *tls_key = nullptr,
                  *token = nullptr, *web_root = nullptr, *pipelines_dir = nullptr,
                  *docs_root = nullptr, *redis_url = nullptr;
  gint port = -1, max_peers = -1, max_clients = -1, ping = -1, max_pipelines = -1;
  gint max_per_addr = -1, max_offers = -1, max_offers_addr = -1, http_timeout = -1, max_sse = -1;
  gint64 max_queued = -1;
  g_auto(GStrv) allow_origins = nullptr;
  gboolean allow_unauth_api = FALSE;
  gint64 max_size = -1, max_body = -1;
  gdouble max_rate = -1, offer_timeout = -1, grace = -1, register_timeout = -1, probe = -1;
  GOptionEntry entries[] = {
      {"host", 0, 0, G_OPTION_ARG_STRING, &host, "Address to listen on (default 0.0.0.0)", "ADDR"},
      {"port", 0, 0, G_OPTION_ARG_INT, &port, "Port (default 8765, or $PORT; 0 picks a free one)",
       "PORT"},
      {"log-level", 0, 0, G_OPTION_ARG_STRING, &log_level,
       "DEBUG, INFO, WARNING or ERROR (default INFO, or $LOG_LEVEL)", "LEVEL"},
      {"tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &tls_cert,
       "PEM certificate: serve https:// and wss://", "FILE"},
      {"tls-key", 0, 0, G_OPTION_ARG_FILENAME, &tls_key, "PEM private key for --tls-cert", "FILE"},
      {"token", 0, 0, G_OPTION_ARG_STRING, &token,
       "Require this token from every client (Authorization: Bearer, or \"token\" in the register "
       "message)",
       "TOKEN"},
      {"allow-origin", 0, 0, G_OPTION_ARG_STRING_ARRAY, &allow_origins,
       "Another origin (scheme://host[:port]) allowed to call /api and DELETE /offer/...; "
       "repeatable",
       "ORIGIN"},
      {"allow-unauthenticated-api", 0, 0, G_OPTION_ARG_NONE, &allow_unauth_api,
       "Serve /api without --token on a non-loopback address (anyone who reaches it may start "
       "senders)",
       nullptr},
      {"web-root", 0, 0, G_OPTION_ARG_FILENAME, &web_root,
       "Serve static files (the web viewer) from DIR", "DIR"},
      {"docs-root", 0, 0, G_OPTION_ARG_FILENAME, &docs_root,
       "API docs for /openapi.json and /docs (default: docs/ beside --web-root, else the installed "
       "share folder)",
       "DIR"},
      {"pipelines-dir", 0, 0, G_OPTION_ARG_FILENAME, &pipelines_dir,
       "Pipelines the web API may start", "DIR"},
      {"max-pipelines", 0, 0, G_OPTION_ARG_INT, &max_pipelines,
       "Senders the web API may run at once (default 4)", "N"},
      {"max-message-size", 0, 0, G_OPTION_ARG_INT64, &max_size,
       "Largest message in bytes (default 65536)", "BYTES"},
      {"max-body-size", 0, 0, G_OPTION_ARG_INT64, &max_body,
       "Largest HTTP request body in bytes, chunked or not (default 1048576)", "BYTES"},
      {"max-peers-per-room", 0, 0, G_OPTION_ARG_INT, &max_peers,
       "Clients per room (default 100; 0: no limit)", "N"},
      {"max-rate", 0, 0, G_OPTION_ARG_DOUBLE, &max_rate,
       "Messages per second per client, sustained (default 100; bursts of 2 s; 0: no limit)", "N"},
      {"max-clients", 0, 0, G_OPTION_ARG_INT, &max_clients,
       "WebSocket connections (default 50000; 0: no limit)", "N"},
      {"max-connections-per-address", 0, 0, G_OPTION_ARG_INT, &max_per_addr,
       "WebSocket connections from one IP address (default 256; 0: no limit)", "N"},
      {"max-pending-offers", 0, 0, G_OPTION_ARG_INT, &max_offers,
       "HTTP /offer requests waiting for an answer, in all (default 64; 0: no limit)", "N"},
      {"max-pending-offers-per-address", 0, 0, G_OPTION_ARG_INT, &max_offers_addr,
       "... from one IP address (default 8; 0: no limit)", "N"},
      {"max-queued-bytes", 0, 0, G_OPTION_ARG_INT64, &max_queued,
       "Unsent output per WebSocket before that client is dropped as not reading (default 4194304)",
       "BYTES"},
      {"max-event-subscribers", 0, 0, G_OPTION_ARG_INT, &max_sse,
       "Open GET /api/events streams (default 32)", "N"},
      {"http-timeout", 0, 0, G_OPTION_ARG_INT, &http_timeout,
       "Seconds for an HTTP request's headers and body, a TLS handshake or an idle keep-alive "
       "(default 15)",
       "S"},
      {"ping-interval", 0, 0, G_OPTION_ARG_INT, &ping,
       "Seconds between keep-alive pings (default 20; 0: off)", "S"},
      {"offer-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &offer_timeout,
       "Seconds an HTTP /offer waits for the answer (default 10)", "S"},
      {"candidate-grace", 0, 0, G_OPTION_ARG_DOUBLE, &grace,
       "Seconds an HTTP /offer waits for trickled candidates after the answer (default 1)", "S"},
      {"redis", 0, 0, G_OPTION_ARG_STRING, &redis_url,
       "Share rooms with the other daemons on this Redis (or $REDIS_URL)",
       "redis://HOST:PORT[/DB]"},
      {"register-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &register_timeout,
       "Seconds a connection may stay unregistered (default 30)", "S"},
      {"duplicate-probe", 0, 0, G_OPTION_ARG_DOUBLE, &probe,
       "Seconds the connection holding a client_id has to answer a ping when that id registers "
       "again, before the id goes to the new registration (default 2; 0: refuse at once)",
       "S"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  g_autoptr(GOptionContext) ctx = g_option_context_new("- pointcast signaling daemon");
  g_option_context_set_summary(
      ctx,
      "Room-based WebRTC signaling over WebSocket /ws, HTTP offers on POST /offer,\n"
      "GET /healthz, GET /metrics (Prometheus), GET /openapi.json and /docs (the API),\n"
      "and static files from --web-root.");
  g_option_context_add_main_entries(ctx, entries, nullptr);
  GError *err = nullptr;
  if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
    std::fprintf(stderr, "pointcast-signaling: %s (see --help)\n", err->message);
    g_error_free(err);
    return 2;
  }
  if (argc > 1) {
    std::fprintf(stderr, "pointcast-signaling: unexpected argument %s (see --help)\n", argv[1]);
    return 2;
  }

  const char *level_name = log_level ? log_level : g_getenv("LOG_LEVEL");
  if (level_name && *level_name) {
    auto l = log::parse_level(level_name);
    if (!l) {
      std::fprintf(stderr,
                   "pointcast-signaling: unknown log level %s (DEBUG, INFO, WARNING, ERROR)\n",
                   level_name);
      return 2;
    }
    log::set_level(*l);
  }

  ServerConfig cfg;
  if (host) cfg.host = host;
  if (port >= 0) {
    cfg.port = port;
  } else if (const char *env = g_getenv("PORT"); env && *env) {
    unsigned long v;
    if (!parse_uint(env, 65535, &v)) {
      std::fprintf(stderr, "pointcast-signaling: PORT=%s is not a port number\n", env);
      return 2;
    }
    cfg.port = static_cast<int>(v);
  }
  if (cfg.port > 65535) {
    std::fprintf(stderr, "pointcast-signaling: --port %d is out of range\n", cfg.port);
    return 2;
  }
  if (tls_cert) cfg.tls_cert = tls_cert;
  if (tls_key) cfg.tls_key = tls_key;
  if (token) cfg.token = token;
  if (web_root) cfg.web_root = web_root;
  if (pipelines_dir) cfg.pipelines_dir = pipelines_dir;
  if (max_pipelines >= 0) cfg.max_pipelines = static_cast<unsigned>(max_pipelines);
  if (max_size == 0 || max_size > (1 << 26)) {
    std::fprintf(stderr, "pointcast-signaling: --max-message-size must be 1..%d\n", 1 << 26);
    return 2;
  }
  if (max_body == 0 || max_body > (1 << 28)) {
    std::fprintf(stderr, "pointcast-signaling: --max-body-size must be 1..%d\n", 1 << 28);
    return 2;
  }
  if (max_body > 0) cfg.max_body_bytes = static_cast<std::size_t>(max_body);
  if (max_queued == 0 || max_queued > (gint64(1) << 30)) {
    std::fprintf(stderr, "pointcast-signaling: --max-queued-bytes must be 1..%lld\n", 1LL << 30);
    return 2;
  }
  if (max_queued > 0) cfg.max_queued_bytes = static_cast<std::size_t>(max_queued);
  if (http_timeout == 0) {
    std::fprintf(stderr, "pointcast-signaling: --http-timeout must be at least 1\n");
    return 2;
  }
  if (http_timeout > 0) cfg.http_timeout = static_cast<unsigned>(http_timeout);
  if (max_sse >= 0) cfg.max_event_subscribers = static_cast<unsigned>(max_sse);
  if (max_per_addr >= 0)
    cfg.limits.max_connections_per_address = static_cast<std::size_t>(max_per_addr);
  if (max_offers >= 0) cfg.limits.max_pending_offers = static_cast<std::size_t>(max_offers);
  if (max_offers_addr >= 0)
    cfg.limits.max_pending_offers_per_address = static_cast<std::size_t>(max_offers_addr);
  cfg.allow_unauthenticated_api = allow_unauth_api;
  for (char **o = allow_origins; o && *o; o++) {
    g_autoptr(GUri) u = g_uri_parse(*o, G_URI_FLAGS_NONE, nullptr);
    const char *scheme = u ? g_uri_get_scheme(u) : nullptr;
    if (!u || !g_uri_get_host(u) || (g_strcmp0(scheme, "http") && g_strcmp0(scheme, "https")) ||
        (*g_uri_get_path(u) && strcmp(g_uri_get_path(u), "/")) || g_uri_get_query(u)) {
      std::fprintf(
          stderr,
          "pointcast-signaling: --allow-origin %s is not an origin like https://host:port\n", *o);
      return 2;
    }
    std::string origin = *o;
    while (!origin.empty() && origin.back() == '/') origin.pop_back();
    cfg.allow_origins.push_back(origin);
  }
  if (max_size > 0) cfg.limits.max_message_bytes = static_cast<std::size_t>(max_size);
  if (max_peers >= 0) cfg.limits.max_peers_per_room = static_cast<std::size_t>(max_peers);
  if (max_rate >= 0) cfg.limits.max_messages_per_second = max_rate;
  if (max_clients >= 0) cfg.limits.max_clients = static_cast<std::size_t>(max_clients);
  if (ping >= 0) cfg.ping_interval = static_cast<unsigned>(ping);
  auto ms = [](double s) { return std::chrono::milliseconds(static_cast<long long>(s * 1000)); };
  if (offer_timeout > 0) cfg.limits.offer_timeout = ms(offer_timeout);
  if (grace >= 0) cfg.limits.candidate_grace = ms(grace);
  if (register_timeout > 0) cfg.limits.register_timeout = ms(register_timeout);
  if (probe >= 0) cfg.limits.duplicate_probe = ms(probe);

  RedisAddress redis_addr;
  const char *redis = redis_url ? redis_url : g_getenv("REDIS_URL");
  bool clustered = redis && *redis;
  if (clustered) {
    std::string why;
    if (!parse_redis_url(redis, &redis_addr, &why)) {
      std::fprintf(stderr, "pointcast-signaling: %s\n", why.c_str());
      return 2;
    }
  }

  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

  g_autoptr(GMainLoop) loop = g_main_loop_new(nullptr, FALSE);
  Server server(cfg);
  server.add_routes(pointcast::install_pipeline_routes);
  std::string docs_dir = docs_root ? docs_root : pointcast::default_docs_root(cfg.web_root);
  server.add_routes([docs_dir](Server &s) { pointcast::install_doc_routes(s, docs_dir); });
  std::string error;
  if (!server.start(&error)) {
    PC_LOG(Error, "main", "%s", error.c_str());
    return 1;
  }
  // No --redis: no cluster object at all, the one-daemon path stays as it was.
  std::unique_ptr<RedisCluster> cluster;
  if (clustered) {
    cluster = std::make_unique<RedisCluster>(server, redis_addr);
    cluster->start();
  }
  bool tls = !cfg.tls_cert.empty();
  for (const auto &uri : server.uris()) {
    std::string ws = uri;
    if (ws.rfind("https://", 0) == 0)
      ws = "wss://" + ws.substr(8);
    else if (ws.rfind("http://", 0) == 0)
      ws = "ws://" + ws.substr(7);
    if (!ws.empty() && ws.back() == '/') ws.pop_back();
    PC_LOG(Info, "main", "listening on %s (WebSocket %s/ws)%s%s", uri.c_str(), ws.c_str(),
           tls ? ", TLS" : "", cfg.token.empty() ? "" : ", token required");
  }
  if (!cfg.web_root.empty() && !g_file_test(cfg.web_root.c_str(), G_FILE_TEST_IS_DIR))
    PC_LOG(Warning, "main", "--web-root %s is not a directory; static files will 404",
           cfg.web_root.c_str());
  if (docs_root && !g_file_test((docs_dir + "/openapi.json").c_str(), G_FILE_TEST_IS_REGULAR))
    PC_LOG(Warning, "main", "--docs-root %s has no openapi.json; /openapi.json and /docs will 404",
           docs_root);

  auto quit = +[](gpointer data) -> gboolean {
    PC_LOG(Info, "main", "shutting down");
    g_main_loop_quit(static_cast<GMainLoop *>(data));
    return G_SOURCE_CONTINUE; // removed below, after the loop
  };
  guint sigint = g_unix_signal_add(SIGINT, quit, loop);
  guint sigterm = g_unix_signal_add(SIGTERM, quit, loop);
  g_main_loop_run(loop);
  g_source_remove(sigint);
  g_source_remove(sigterm);

  // Say goodbye to every client, then give the close frames a moment to leave.
  server.shutdown();
  gint64 until = g_get_monotonic_time() + 500 * 1000;
  while (server.rooms().clients() > 0 && g_get_monotonic_time() < until)
    g_main_context_iteration(nullptr, FALSE) || (g_usleep(1000), true);
  if (cluster) {
    cluster->stop();
    until = g_get_monotonic_time() + 200 * 1000;
    while (g_get_monotonic_time() < until)
      g_main_context_iteration(nullptr, FALSE) || (g_usleep(1000), true);
    cluster.reset();
  }
  PC_LOG(Info, "main", "stopped");
  return 0;
}
