// SPDX-License-Identifier: LGPL-2.1-or-later
#include "auth.h"
#include "protocol.h"

#include <string_view>

namespace pointcast::auth {

std::string query_token(SoupServerMessage *msg, bool *found)
{
  *found = false;
  const char *q = g_uri_get_query(soup_server_message_get_uri(msg));
  if (!q) return {};
  g_autoptr(GHashTable) params = g_uri_parse_params(q, -1, "&", G_URI_PARAMS_NONE, nullptr);
  auto *tok = params ? static_cast<const char *>(g_hash_table_lookup(params, "token")) : nullptr;
  if (!tok) return {};
  *found = true;
  return tok;
}

bool presents(SoupServerMessage *msg, const std::string &secret, unsigned sources,
              GHashTable *query)
{
  if (secret.empty()) return false;
  auto *h = soup_server_message_get_request_headers(msg);
  if (sources & kBearer) {
    const char *auth = soup_message_headers_get_one(h, "Authorization");
    if (auth && g_ascii_strncasecmp(auth, "Bearer ", 7) == 0) {
      const char *t = auth + 7;
      while (*t == ' ') t++;
      if (protocol::secret_equal(t, secret)) return true;
    }
  }
  if (sources & kXHeader) {
    const char *x = soup_message_headers_get_one(h, "X-Pointcast-Token");
    if (x && protocol::secret_equal(x, secret)) return true;
  }
  if (sources & kQuery) {
    if (query) {
      auto *q = static_cast<const char *>(g_hash_table_lookup(query, "token"));
      return q && protocol::secret_equal(q, secret);
    }
    bool found = false;
    std::string q = query_token(msg, &found);
    return found && protocol::secret_equal(q, secret);
  }
  return false;
}

} // namespace pointcast::auth
