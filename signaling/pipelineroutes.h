// SPDX-License-Identifier: LGPL-2.1-or-later
/* The pipelines API as daemon routes; main.cpp installs them explicitly. */
#pragma once

#include "server.h"

namespace pointcast {

// Adds /api, /api/pipelines and /api/events to server (call before Server::start).
void install_pipeline_routes(signaling::Server &server);

} // namespace pointcast
