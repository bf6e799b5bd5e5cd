// SPDX-License-Identifier: LGPL-2.1-or-later
/* A minimal SoupServer carrying only the pipeline API (signaling/pipelines.cpp), so the API can be
 * tested on its own: pipelines_host --pipelines-dir D [--max-pipelines N] [--token T]
 * [--launcher PROG] [--web-root DIR]. Listens on 127.0.0.1, a free port, printed as "port N" on
 * stdout. With --web-root it also serves the viewer's files (flat directory only). */
#include "pipelines.h"

#include <glib-unix.h>

#include <cstdio>
#include <cstring>
#include <string>

static std::string web_root;

static void serve_file(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *,
                       gpointer)
{
  std::string p = path;
  if (p == "/") p = "/index.html";
  std::string name = p.substr(1);
  const char *type = nullptr;
  auto ends = [&](const char *e) { return g_str_has_suffix(name.c_str(), e); };
  if (ends(".html"))
    type = "text/html; charset=utf-8";
  else if (ends(".js"))
    type = "text/javascript; charset=utf-8";
  else if (ends(".css"))
    type = "text/css; charset=utf-8";
  gchar *data = nullptr;
  gsize len = 0;
  if (web_root.empty() || !type || name.find('/') != std::string::npos || name[0] == '.' ||
      !g_file_get_contents((web_root + "/" + name).c_str(), &data, &len, nullptr)) {
    soup_server_message_set_status(msg, 404, nullptr);
    return;
  }
  soup_server_message_set_status(msg, 200, nullptr);
  soup_server_message_set_response(msg, type, SOUP_MEMORY_TAKE, data, len);
}

int main(int argc, char **argv)
{
  pointcast::PipelinesConfig cfg;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--pipelines-dir")
      cfg.dir = argv[i + 1];
    else if (k == "--max-pipelines")
      cfg.max_running = std::stoul(argv[i + 1]);
    else if (k == "--token")
      cfg.token = argv[i + 1];
    else if (k == "--launcher")
      cfg.launcher = argv[i + 1];
    else if (k == "--web-root")
      web_root = argv[i + 1];
    else if (k == "--stop-grace-ms")
      cfg.stop_grace_ms = std::stoul(argv[i + 1]);
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  g_autoptr(GMainLoop) loop = g_main_loop_new(nullptr, FALSE);
  auto quit = [](gpointer l) -> gboolean {
    g_main_loop_quit(static_cast<GMainLoop *>(l));
    return G_SOURCE_REMOVE;
  };
  g_unix_signal_add(SIGINT, quit, loop);
  g_unix_signal_add(SIGTERM, quit, loop);
  {
    pointcast::PipelineManager mgr(cfg);
    g_autoptr(SoupServer) server = soup_server_new(nullptr, nullptr);
    pointcast::pipelines_attach(server, &mgr);
    soup_server_add_handler(server, "/", serve_file, nullptr, nullptr);
    g_autoptr(GError) err = nullptr;
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(lo, 0);
    if (!soup_server_listen(server, addr, static_cast<SoupServerListenOptions>(0), &err)) {
      fprintf(stderr, "listen: %s\n", err->message);
      return 1;
    }
    GSList *uris = soup_server_get_uris(server);
    printf("port %d\n", g_uri_get_port(static_cast<GUri *>(uris->data)));
    fflush(stdout);
    g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
    g_main_loop_run(loop);
    mgr.stop_all();
  }
  return 0;
}
