// SPDX-License-Identifier: LGPL-2.1-or-later
/* Senders started by the daemon: GET /api/pipelines, POST /api/pipelines/{name}/start,
 * DELETE /api/pipelines/{id}, and GET /api/events (Server-Sent Events: pipeline_started,
 * pipeline_log, pipeline_exited).
 *
 * A sender is `gst-launch-1.0 -e <words of pipelines/NAME.pipeline>` run as a child process in its
 * own process group, with POINTCAST_SIGNALING / POINTCAST_ROOM / POINTCAST_PEER_ID (and
 * POINTCAST_TOKEN) pointing at this daemon. Names are checked against a strict pattern and must
 * name a regular file directly inside the pipelines directory; the argv is built by splitting
 * the file on whitespace (as `./pointcast launch` does) and no shell is ever involved. */
#pragma once

#include <libsoup/soup.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pointcast {

struct PipelinesConfig {
  std::string dir;           // --pipelines-dir; empty: the API says it is not configured
  unsigned max_running = 4;  // --max-pipelines
  std::string signaling_url; // POINTCAST_SIGNALING for children; empty: derived from the server
  std::string token;         // daemon --token: required on the API, handed to children
  std::string url_token;     // put in the children's signaling URL as ?token= (the
                             // daemon's loopback-only child credential, never `token`)
  std::string launcher = "gst-launch-1.0";
  unsigned stop_grace_ms = 4000; // SIGINT (EOS via -e), then SIGKILL after this long
  size_t backlog_lines = 200;    // log lines kept per child for late subscribers
  unsigned max_subscribers = 32; // open GET /api/events streams; more: 503
  size_t max_stream_backlog =
      1 << 20; // bytes an events stream may have unsent before it is dropped
  // Daemon log sink: level is DEBUG/INFO/WARNING/ERROR. Default: stderr in the daemon's format.
  std::function<void(const char *level, const std::string &message)> log;
};

// Pure helpers, tested directly.
bool pipeline_name_ok(std::string_view name); // [A-Za-z0-9][A-Za-z0-9_-]{0,63}
bool room_ok(std::string_view room);          // [A-Za-z0-9][A-Za-z0-9_.-]{0,63}
// Words of a pipeline file: lines whose first non-blank character is '#' are dropped, the rest is
// split on whitespace (quotes are left to gst-launch's own parser, exactly as with $(grep ...)).
std::vector<std::string> pipeline_words(const std::string &text);
// The first comment line of a file (without '#'), used as its description in the listing.
std::string pipeline_description(const std::string &text);
std::string json_quote(std::string_view s);

struct ApiReply {
  unsigned status;
  std::string json;
};

class PipelineManager {
public:
  explicit PipelineManager(PipelinesConfig cfg);
  ~PipelineManager(); // stops every child and waits briefly for them
  PipelineManager(const PipelineManager &) = delete;
  PipelineManager &operator=(const PipelineManager &) = delete;

  ApiReply list() const;
  // body: JSON {"room": R, "peer_id": optional ID}
  ApiReply start(std::string_view name, std::string_view body);
  ApiReply stop(std::string_view id);
  // Sends SIGINT then SIGKILL to every child and reaps them (blocking up to stop_grace_ms).
  void stop_all();
  void set_signaling_url(std::string url);
  const PipelinesConfig &config() const;

  // Events as JSON objects; room empty = every room. With replay, the subscriber first gets a
  // pipeline_started and the kept log lines of every running child.
  using Listener = std::function<void(const std::string &json)>;
  unsigned subscribe(std::string room, Listener listener, bool replay);
  void unsubscribe(unsigned id);
  size_t subscribers() const;
  // Expires when the manager is destroyed (for callbacks that may outlive it).
  std::weak_ptr<void> lifetime() const;

  struct Private;

private:
  std::unique_ptr<Private> priv_;
  std::shared_ptr<void> alive_ = std::make_shared<int>(0);
};

// Routes /api/pipelines... and /api/events of server to mgr (which must outlive the server's
// use of it). Token: ?token=, "Authorization: Bearer T" or "X-Pointcast-Token: T".
void pipelines_attach(SoupServer *server, PipelineManager *mgr);

// The route bodies, for a server that checks the token itself (check_token false).
void handle_pipelines(PipelineManager *mgr, SoupServer *server, SoupServerMessage *msg,
                      const char *path, GHashTable *query, bool check_token);
void handle_events(PipelineManager *mgr, SoupServerMessage *msg, GHashTable *query,
                   bool check_token);
void handle_other(SoupServerMessage *msg);

} // namespace pointcast
