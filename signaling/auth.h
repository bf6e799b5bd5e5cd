// SPDX-License-Identifier: LGPL-2.1-or-later
/* The one token check of the daemon's endpoints. Which sources an endpoint accepts is its own
 * choice (README "Security"): /ws and /offer take only "Authorization: Bearer"; /api also takes
 * "X-Pointcast-Token" and ?token= (EventSource cannot set headers). */
#pragma once

#include <libsoup/soup.h>

#include <string>

namespace pointcast::auth {

enum Source : unsigned {
  kBearer = 1,  // Authorization: Bearer T (scheme case-insensitive)
  kXHeader = 2, // X-Pointcast-Token: T
  kQuery = 4,   // ?token=T
};

/* True when msg presents secret through one of `sources` (compared in constant time). query:
 * the handler's parsed query, or null to parse the request URI's. An empty secret matches
 * nothing: callers decide what "no token configured" means. */
bool presents(SoupServerMessage *msg, const std::string &secret, unsigned sources,
              GHashTable *query = nullptr);

// The ?token= value of msg (parsed from its URI), or "" with *found false.
std::string query_token(SoupServerMessage *msg, bool *found);

} // namespace pointcast::auth
