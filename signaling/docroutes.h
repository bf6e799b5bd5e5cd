// SPDX-License-Identifier: LGPL-2.1-or-later
/* The daemon's API documentation as routes: GET /openapi.json, GET /docs (Swagger UI) and
 * GET /docs/... (the room protocol's JSON Schema, the page's assets). main.cpp installs them. */
#pragma once

#include "server.h"

#include <string>

namespace pointcast {

/* Where the docs live when --docs-root is not given: signaling/docs beside a --web-root of
 * signaling/web (the source tree), else the installed share folder. */
std::string default_docs_root(const std::string &web_root);

// Adds /openapi.json and /docs below docs_root (openapi.json, room-protocol.schema.json,
// index.html, node_modules/swagger-ui-dist/). Open without the token, like /healthz.
void install_doc_routes(signaling::Server &server, const std::string &docs_root);

} // namespace pointcast
