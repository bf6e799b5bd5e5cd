// SPDX-License-Identifier: LGPL-2.1-or-later
/* The daemon's /api routes (GET /api/pipelines, POST /api/pipelines/{name}/start,
 * DELETE /api/pipelines/{id}, GET /api/events) on top of PipelineManager (pipelines.h). The
 * daemon's token check runs before these handlers. */
#include "pipelineroutes.h"

#include "log.h"
#include "pipelines.h"

#include <memory>
#include <vector>

namespace {

using pointcast::PipelineManager;
using pointcast::PipelinesConfig;
namespace sig = pointcast::signaling;

// One manager per daemon server; destroyed at exit, which stops every child still running.
std::vector<std::unique_ptr<PipelineManager>> &managers()
{
  static std::vector<std::unique_ptr<PipelineManager>> list;
  return list;
}

} // namespace

namespace pointcast {

void install_pipeline_routes(signaling::Server &server)
{
  PipelinesConfig cfg;
  cfg.dir = server.config().pipelines_dir;
  cfg.token = server.config().token;
  cfg.url_token = server.config().child_token;
  cfg.max_running = server.config().max_pipelines;
  cfg.max_subscribers = server.config().max_event_subscribers;
  cfg.log = [](const char *level, const std::string &m) {
    auto l = pointcast::log::parse_level(level).value_or(pointcast::log::Level::Info);
    if (pointcast::log::enabled(l)) pointcast::log::write(l, "pipelines", "%s", m.c_str());
  };
  managers().push_back(std::make_unique<PipelineManager>(std::move(cfg)));
  PipelineManager *mgr = managers().back().get();
  sig::Server *srv = &server;
  server.add_route("/api", [](SoupServerMessage *msg, const char *, GHashTable *) {
    pointcast::handle_other(msg);
  });
  server.add_route("/api/pipelines",
                   [mgr, srv](SoupServerMessage *msg, const char *path, GHashTable *query) {
                     pointcast::handle_pipelines(mgr, srv->soup(), msg, path, query, false);
                   });
  server.add_route("/api/events", [mgr](SoupServerMessage *msg, const char *, GHashTable *query) {
    pointcast::handle_events(mgr, msg, query, false);
  });
}

} // namespace pointcast
