// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/iceconfig.h"

#include <glib.h>

#include <memory>

namespace pointcast::rtc::iceconfig {

namespace {

struct GFreeDeleter {
  void operator()(gchar *p) const { g_free(p); }
};
using GStr = std::unique_ptr<gchar, GFreeDeleter>;

std::optional<Server> fail(std::string *error, std::string text)
{
  if (error) *error = std::move(text);
  return std::nullopt;
}

// The URI without "user:password@", for messages that must not show the password.
std::string redact(std::string_view uri)
{
  auto at = uri.rfind('@');
  if (at == std::string_view::npos) return std::string(uri);
  auto colon = uri.find(':');
  auto start = uri.substr(colon + 1, 2) == "//" ? colon + 3 : colon + 1;
  if (colon == std::string_view::npos || start > at) start = 0;
  return std::string(uri.substr(0, start)) + "***@" + std::string(uri.substr(at + 1));
}

struct Parts {
  std::string scheme, user, password, host, path, query, fragment;
  bool has_user = false, has_password = false;
  int port = -1;
};

std::optional<Parts> split(std::string_view uri, std::string *error)
{
  std::string text(uri);
  gchar *scheme = nullptr, *user = nullptr, *password = nullptr, *host = nullptr, *path = nullptr,
        *query = nullptr, *fragment = nullptr;
  gint port = -1;
  GError *err = nullptr;
  if (!g_uri_split_with_user(text.c_str(), G_URI_FLAGS_HAS_PASSWORD, &scheme, &user, &password,
                             nullptr, &host, &port, &path, &query, &fragment, &err)) {
    std::string why = err ? err->message : "unparsable";
    g_clear_error(&err);
    if (error) *error = "'" + redact(uri) + "' is not a URI: " + why;
    return std::nullopt;
  }
  GStr s(scheme), u(user), pw(password), h(host), pa(path), q(query), f(fragment);
  Parts p;
  p.scheme = scheme ? scheme : "";
  p.has_user = user != nullptr;
  p.user = user ? user : "";
  p.has_password = password != nullptr;
  p.password = password ? password : "";
  p.host = host ? host : "";
  p.path = path ? path : "";
  p.query = query ? query : "";
  p.fragment = fragment ? fragment : "";
  p.port = port;
  return p;
}

std::optional<Server> common(std::string_view uri, const Parts &p, const char *form,
                             std::string *error)
{
  std::string shown = redact(uri);
  if (p.host.empty())
    return fail(error,
                "'" + shown + "' has no host; write " + form +
                    " (the form without '//' is not understood by webrtcbin 1.22)");
  if (!p.path.empty() && p.path != "/")
    return fail(error, "'" + shown + "' has a path ('" + p.path + "'); write " + form);
  if (!p.fragment.empty()) return fail(error, "'" + shown + "' has a fragment; write " + form);
  if (p.port == 0) return fail(error, "'" + shown + "' has port 0");
  Server srv;
  srv.scheme = p.scheme;
  srv.host = p.host;
  srv.uri = std::string(uri);
  return srv;
}

} // namespace

std::string Server::display() const
{
  bool v6 = host.find(':') != std::string::npos;
  std::string out = scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  if (scheme == "turn" && !transport.empty()) out += "?transport=" + transport;
  return out;
}

std::optional<Server> parse_stun(std::string_view uri, std::string *error)
{
  const char *form = "stun://HOST:PORT";
  if (uri.substr(0, 7) != "stun://")
    return fail(error, "'" + redact(uri) + "' is not a STUN URI; write " + form);
  auto p = split(uri, error);
  if (!p) return std::nullopt;
  if (p->has_user || p->has_password)
    return fail(error, "'" + redact(uri) + "': a STUN server takes no user or password");
  if (!p->query.empty())
    return fail(error,
                "'" + std::string(uri) + "' has a query ('" + p->query + "'); write " + form);
  auto srv = common(uri, *p, form, error);
  if (!srv) return std::nullopt;
  srv->port = p->port > 0 ? p->port : 3478;
  return srv;
}

std::optional<Server> parse_turn(std::string_view uri, std::string *error)
{
  const char *form = "turn://USER:PASSWORD@HOST:PORT[?transport=udp|tcp] or "
                     "turns://USER:PASSWORD@HOST:PORT";
  bool tls = uri.substr(0, 8) == "turns://";
  if (!tls && uri.substr(0, 7) != "turn://")
    return fail(error, "'" + redact(uri) + "' is not a TURN URI; write " + form);
  auto p = split(uri, error);
  if (!p) return std::nullopt;
  std::string shown = redact(uri);
  auto srv = common(uri, *p, form, error);
  if (!srv) return std::nullopt;
  if (p->user.empty() || !p->has_password || p->password.empty())
    return fail(error,
                "'" + shown + "' has no USER:PASSWORD@ (a TURN server needs credentials; " +
                    "percent-encode ':', '@' and '/' in them)");
  srv->user = p->user;
  srv->password = p->password;
  srv->port = p->port > 0 ? p->port : (tls ? 5349 : 3478);
  srv->transport = tls ? "tls" : "";
  if (!p->query.empty()) {
    GError *err = nullptr;
    GHashTable *params = g_uri_parse_params(p->query.c_str(), -1, "&", G_URI_PARAMS_NONE, &err);
    if (!params) {
      std::string why = err ? err->message : "unparsable";
      g_clear_error(&err);
      return fail(error, "'" + shown + "': bad query: " + why);
    }
    std::optional<std::string> bad;
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, params);
    while (g_hash_table_iter_next(&it, &key, &value)) {
      std::string k = static_cast<const char *>(key), v = static_cast<const char *>(value);
      if (k != "transport")
        bad = "unknown query key '" + k + "' (only transport=udp|tcp)";
      else if (tls)
        bad = "turns:// is always TCP with TLS; it takes no transport";
      else if (v != "udp" && v != "tcp")
        bad = "transport='" + v + "' (udp or tcp)";
      else
        srv->transport = v;
    }
    g_hash_table_unref(params);
    if (bad) return fail(error, "'" + shown + "': " + *bad);
  }
  return srv;
}

std::optional<std::vector<Server>> parse_turn_list(std::string_view value, std::string *error)
{
  std::vector<Server> out;
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view one = value.substr(start, comma - start);
    while (!one.empty() && g_ascii_isspace(one.front())) one.remove_prefix(1);
    while (!one.empty() && g_ascii_isspace(one.back())) one.remove_suffix(1);
    if (one.empty()) {
      if (error) *error = "an empty entry in the list of TURN servers";
      return std::nullopt;
    }
    auto srv = parse_turn(one, error);
    if (!srv) return std::nullopt;
    out.push_back(std::move(*srv));
    start = comma + 1;
  }
  return out;
}

bool is_relay_candidate(std::string_view candidate)
{
  return candidate.find(" typ relay") != std::string_view::npos;
}

} // namespace pointcast::rtc::iceconfig
