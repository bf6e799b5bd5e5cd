// SPDX-License-Identifier: LGPL-2.1-or-later
/* GET /openapi.json, GET /docs and GET /docs/FILE from the docs folder (see docroutes.h). Only
 * fixed names and single-segment asset names are served, so nothing outside the folder can be
 * reached whatever the request holds. */
#include "docroutes.h"

#include <glib.h>

#include <cstring>

#ifndef POINTCAST_DOCS_DIR
#error "POINTCAST_DOCS_DIR (the installed docs folder) comes from meson"
#endif

namespace {

namespace sig = pointcast::signaling;

bool get_or_head(SoupServerMessage *msg)
{
  const char *m = soup_server_message_get_method(msg);
  if (!strcmp(m, "GET") || !strcmp(m, "HEAD")) return true;
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "GET, HEAD");
  sig::respond_text(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method not allowed\n");
  return false;
}

void send_file(SoupServerMessage *msg, const std::string &path, const char *type)
{
  gchar *contents = nullptr;
  gsize len = 0;
  if (!g_file_get_contents(path.c_str(), &contents, &len, nullptr)) {
    sig::respond_text(msg, SOUP_STATUS_NOT_FOUND,
                      "not found: " + path +
                          " (see --docs-root; ./pointcast setup installs the page's assets)\n");
    return;
  }
  soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control",
                               "no-cache");
  soup_server_message_set_response(msg, type, SOUP_MEMORY_TAKE, contents, len);
}

// One path segment of letters, digits, '.', '-', '_', not starting with '.'.
bool plain_name(const char *s)
{
  if (!*s || *s == '.') return false;
  for (; *s; s++)
    if (!g_ascii_isalnum(*s) && *s != '.' && *s != '-' && *s != '_') return false;
  return true;
}

const char *asset_type(const char *name)
{
  if (g_str_has_suffix(name, ".js")) return "text/javascript; charset=utf-8";
  if (g_str_has_suffix(name, ".css")) return "text/css; charset=utf-8";
  if (g_str_has_suffix(name, ".png")) return "image/png";
  if (g_str_has_suffix(name, ".map") || g_str_has_suffix(name, ".json")) return "application/json";
  if (g_str_has_suffix(name, ".html")) return "text/html; charset=utf-8";
  return "application/octet-stream";
}

} // namespace

namespace pointcast {

std::string default_docs_root(const std::string &web_root)
{
  if (!web_root.empty()) {
    g_autofree char *parent = g_path_get_dirname(web_root.c_str());
    g_autofree char *beside = g_build_filename(parent, "docs", nullptr);
    if (g_file_test(beside, G_FILE_TEST_IS_DIR)) return beside;
  }
  return POINTCAST_DOCS_DIR;
}

void install_doc_routes(signaling::Server &server, const std::string &docs_root)
{
  std::string root = docs_root;
  server.add_route(
      "/openapi.json",
      [root](SoupServerMessage *msg, const char *path, GHashTable *) {
        if (strcmp(path, "/openapi.json")) {
          sig::respond_text(msg, SOUP_STATUS_NOT_FOUND, "not found\n");
          return;
        }
        if (get_or_head(msg)) send_file(msg, root + "/openapi.json", "application/json");
      },
      false);
  server.add_route(
      "/docs",
      [root](SoupServerMessage *msg, const char *path, GHashTable *) {
        if (!get_or_head(msg)) return;
        if (!strcmp(path, "/docs") || !strcmp(path, "/docs/")) {
          send_file(msg, root + "/index.html",
                    "text/html; charset=utf-8"); // its links are absolute
        } else if (!strcmp(path, "/docs/room-protocol.schema.json")) {
          send_file(msg, root + "/room-protocol.schema.json", "application/schema+json");
        } else if (g_str_has_prefix(path, "/docs/swagger-ui/") &&
                   plain_name(path + strlen("/docs/swagger-ui/"))) {
          const char *name = path + strlen("/docs/swagger-ui/");
          send_file(msg, root + "/node_modules/swagger-ui-dist/" + name, asset_type(name));
        } else {
          sig::respond_text(msg, SOUP_STATUS_NOT_FOUND, "not found\n");
        }
      },
      false);
}

} // namespace pointcast
