// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pipelines.h"
#include "auth.h"
#include "protocol.h"

#include <sys/socket.h>

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "protocol.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <thread>

namespace pointcast {

namespace {

bool word_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool token_ok(std::string_view s, std::string_view extra)
{
  if (s.empty() || s.size() > 64 || !word_char(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return word_char(c) || extra.find(c) != std::string_view::npos;
  });
}

void default_log(const char *level, const std::string &message)
{
  char when[32];
  time_t now = time(nullptr);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  fprintf(stderr, "%s [%s] pipelines: %s\n", when, level, message.c_str());
}

ApiReply error_reply(unsigned status, const std::string &code, const std::string &message)
{
  return {status, "{\"error\":" + json_quote(code) + ",\"message\":" + json_quote(message) + "}"};
}

} // namespace

bool pipeline_name_ok(std::string_view name)
{
  return token_ok(name, "_-");
}
bool room_ok(std::string_view room)
{
  return token_ok(room, "_.-");
}

std::vector<std::string> pipeline_words(const std::string &text)
{
  std::vector<std::string> words;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    size_t first = line.find_first_not_of(" \t\r\f\v");
    if (first != std::string_view::npos && line[first] != '#') {
      size_t i = first;
      while (i < line.size()) {
        size_t j = line.find_first_of(" \t\r\f\v", i);
        if (j == std::string_view::npos) j = line.size();
        std::string_view w = line.substr(i, j - i);
        // A trailing "\" continues a line in shell-style files; the words already flow on.
        if (!w.empty() && w != "\\") words.emplace_back(w);
        i = line.find_first_not_of(" \t\r\f\v", j);
        if (i == std::string_view::npos) break;
      }
    }
    pos = end + 1;
  }
  return words;
}

std::string pipeline_description(const std::string &text)
{
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    size_t first = line.find_first_not_of(" \t\r");
    if (first != std::string::npos) {
      if (line[first] != '#') return "";
      size_t s = line.find_first_not_of("# \t", first);
      if (s != std::string::npos) {
        size_t e = line.find_last_not_of(" \t\r");
        return line.substr(s, e - s + 1);
      }
    }
    pos = end + 1;
  }
  return "";
}

std::string json_quote(std::string_view s)
{
  std::string out;
  out.reserve(s.size() + 2);
  protocol::append_escaped(out, s);
  // Child output may not be UTF-8; keep the JSON valid for the browser.
  if (!g_utf8_validate(out.data(), out.size(), nullptr)) {
    g_autofree char *fixed = g_utf8_make_valid(out.data(), out.size());
    out = fixed;
  }
  return out;
}

/* ---------------------------------------------------------------------------------------------- */

struct Child {
  std::string id, name, room, peer_id;
  GPid pid = 0;
  bool running = true;   // process not reaped yet
  bool stopping = false; // stop requested
  int open_streams = 0;  // stdout/stderr still open
  int wait_status = 0;
  gint64 started_us = 0;
  guint child_watch = 0, kill_timer = 0;
  guint io_watch[2] = {0, 0};
  GIOChannel *chan[2] = {nullptr, nullptr};
  std::deque<std::string> backlog; // JSON events
  bool announced_exit = false;
};

struct Subscriber {
  std::string room;
  PipelineManager::Listener listener;
};

struct PipelineManager::Private {
  PipelinesConfig cfg;
  std::map<std::string, std::unique_ptr<Child>> children; // running or recently ended
  std::deque<std::string> ended;                          // ids of ended children, oldest first
  std::map<unsigned, Subscriber> subscribers;
  unsigned next_sub = 1;
  unsigned serial = 0;

  void log(const char *level, const std::string &m)
  {
    cfg.log ? cfg.log(level, m) : default_log(level, m);
  }

  std::string child_json(const Child &c) const
  {
    std::string state = c.running ? (c.stopping ? "stopping" : "running") : "exited";
    std::string j = "{\"id\":" + json_quote(c.id) + ",\"name\":" + json_quote(c.name) +
        ",\"room\":" + json_quote(c.room) + ",\"peer_id\":" + json_quote(c.peer_id) +
        ",\"pid\":" + std::to_string(c.pid) + ",\"state\":\"" + state + "\"";
    if (!c.running) j += ",\"exit\":" + json_quote(exit_text(c));
    return j + "}";
  }

  static std::string exit_text(const Child &c)
  {
    int st = c.wait_status;
    if (WIFEXITED(st)) return "exit status " + std::to_string(WEXITSTATUS(st));
    if (WIFSIGNALED(st)) return std::string("killed by ") + strsignal(WTERMSIG(st));
    return "ended";
  }

  void emit(const Child &c, const std::string &json)
  {
    std::vector<Listener> targets;
    for (auto &[id, s] : subscribers)
      if (s.room.empty() || s.room == c.room) targets.push_back(s.listener);
    // Listeners may unsubscribe from inside (client gone); call copies.
    for (auto &l : targets) l(json);
  }

  void event(Child &c, const std::string &json, bool keep)
  {
    if (keep) {
      c.backlog.push_back(json);
      while (c.backlog.size() > cfg.backlog_lines) c.backlog.pop_front();
    }
    emit(c, json);
  }

  void line(Child &c, const char *stream, std::string text)
  {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.size() > 4096) text.resize(4096);
    std::string j = "{\"type\":\"pipeline_log\",\"id\":" + json_quote(c.id) +
        ",\"name\":" + json_quote(c.name) + ",\"room\":" + json_quote(c.room) + ",\"stream\":\"" +
        stream + "\",\"line\":" + json_quote(text) + "}";
    event(c, j, true);
  }

  void maybe_finish(Child &c)
  {
    if (c.running || c.open_streams > 0 || c.announced_exit) return;
    c.announced_exit = true;
    if (c.kill_timer) g_source_remove(c.kill_timer), c.kill_timer = 0;
    std::string why = exit_text(c);
    log("INFO",
        "pipeline " + c.id + " ended: " + why + (c.stopping ? " (stopped on request)" : ""));
    std::string j = "{\"type\":\"pipeline_exited\",\"id\":" + json_quote(c.id) +
        ",\"name\":" + json_quote(c.name) + ",\"room\":" + json_quote(c.room) +
        ",\"exit\":" + json_quote(why) + ",\"requested\":" + (c.stopping ? "true" : "false") + "}";
    event(c, j, true);
    ended.push_back(c.id);
    while (ended.size() > 20) {
      children.erase(ended.front());
      ended.pop_front();
    }
  }

  unsigned running_count() const
  {
    unsigned n = 0;
    for (auto &[id, c] : children) n += c->running ? 1 : 0;
    return n;
  }

  std::string signaling_url() const { return cfg.signaling_url; }
};

namespace {

struct IoCtx {
  PipelineManager::Private *p;
  std::string id;
  int which;           // 0 stdout, 1 stderr
  std::string partial; // the line being read (at most kMaxLine bytes of it)
  bool cut = false;    // the rest of an over-long line is skipped
};

constexpr std::size_t kMaxLine = 4096;      // kept of a line; the rest is dropped unread
constexpr std::size_t kReadPerCall = 65536; // then back to the main loop (see on_child_io)

/* A sender's output, split into lines of at most kMaxLine bytes without buffering more than that
 * (a line without an end used to grow in GIOChannel's buffer), and read at most kReadPerCall
 * bytes per call: a sender printing faster than the daemon turns lines into events kept this
 * loop going, and the event streams, written between calls, passed their bound unwritten. */
gboolean on_child_io(GIOChannel *chan, GIOCondition, gpointer data)
{
  auto *ctx = static_cast<IoCtx *>(data);
  auto it = ctx->p->children.find(ctx->id);
  if (it == ctx->p->children.end()) return G_SOURCE_REMOVE;
  Child &c = *it->second;
  const char *stream = ctx->which == 0 ? "stdout" : "stderr";
  char buf[16384];
  for (std::size_t total = 0; total < kReadPerCall;) {
    gsize n = 0;
    GIOStatus st = g_io_channel_read_chars(chan, buf, sizeof buf, &n, nullptr);
    total += n;
    for (const char *q = buf, *end = buf + n; q < end;) {
      auto *nl = static_cast<const char *>(memchr(q, '\n', end - q));
      const char *stop = nl ? nl : end;
      if (!ctx->cut) {
        std::size_t room = kMaxLine - ctx->partial.size();
        ctx->partial.append(q, std::min<std::size_t>(room, stop - q));
        ctx->cut = std::size_t(stop - q) > room;
      }
      if (nl) {
        ctx->p->line(c, stream, std::move(ctx->partial));
        ctx->partial.clear();
        ctx->cut = false;
      }
      q = nl ? nl + 1 : end;
    }
    if (st == G_IO_STATUS_NORMAL) continue;
    if (st == G_IO_STATUS_AGAIN) return G_SOURCE_CONTINUE;
    // EOF or an error: a last line without its newline still counts.
    if (!ctx->partial.empty()) ctx->p->line(c, stream, std::move(ctx->partial));
    ctx->partial.clear();
    c.io_watch[ctx->which] = 0;
    g_io_channel_shutdown(chan, FALSE, nullptr);
    g_io_channel_unref(c.chan[ctx->which]);
    c.chan[ctx->which] = nullptr;
    c.open_streams--;
    ctx->p->maybe_finish(c);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE; // more to read: the watch fires again at once
}

struct WatchCtx {
  PipelineManager::Private *p;
  std::string id;
};

void on_child_exit(GPid pid, gint status, gpointer data)
{
  auto *ctx = static_cast<WatchCtx *>(data);
  g_spawn_close_pid(pid);
  auto it = ctx->p->children.find(ctx->id);
  if (it == ctx->p->children.end()) return;
  Child &c = *it->second;
  c.child_watch = 0;
  c.running = false;
  c.wait_status = status;
  // Anything the sender left behind in its group goes too, so its pipes close.
  kill(-pid, SIGKILL);
  ctx->p->maybe_finish(c);
}

void child_setup(gpointer)
{
  setpgid(0, 0);                    // own group: stop kills the whole sender
  prctl(PR_SET_PDEATHSIG, SIGTERM); // and a daemon killed with -9 does not leave it behind
}

} // namespace

PipelineManager::PipelineManager(PipelinesConfig cfg) : priv_(std::make_unique<Private>())
{
  priv_->cfg = std::move(cfg);
  auto &d = priv_->cfg.dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
}

PipelineManager::~PipelineManager()
{
  stop_all();
  priv_->subscribers.clear();
  for (auto &[id, c] : priv_->children) {
    for (int k = 0; k < 2; k++) {
      if (c->io_watch[k]) g_source_remove(c->io_watch[k]);
      if (c->chan[k]) g_io_channel_unref(c->chan[k]);
    }
    if (c->child_watch) g_source_remove(c->child_watch);
    if (c->kill_timer) g_source_remove(c->kill_timer);
  }
}

const PipelinesConfig &PipelineManager::config() const
{
  return priv_->cfg;
}
void PipelineManager::set_signaling_url(std::string url)
{
  priv_->cfg.signaling_url = std::move(url);
}

ApiReply PipelineManager::list() const
{
  const auto &cfg = priv_->cfg;
  std::string j = "{\"pipelines\":[";
  if (!cfg.dir.empty()) {
    std::vector<std::pair<std::string, std::string>> found;
    if (GDir *d = g_dir_open(cfg.dir.c_str(), 0, nullptr)) {
      while (const char *f = g_dir_read_name(d)) {
        std::string file = f;
        const std::string ext = ".pipeline";
        if (file.size() <= ext.size() || file.compare(file.size() - ext.size(), ext.size(), ext))
          continue;
        std::string name = file.substr(0, file.size() - ext.size());
        if (!pipeline_name_ok(name)) continue;
        g_autofree char *path = g_build_filename(cfg.dir.c_str(), f, nullptr);
        g_autofree char *text = nullptr;
        GStatBuf st;
        // Symlinks are skipped (and refused by start) so nothing outside the directory runs.
        if (g_lstat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
            !g_file_get_contents(path, &text, nullptr, nullptr))
          continue;
        found.emplace_back(name, pipeline_description(text));
      }
      g_dir_close(d);
    }
    std::sort(found.begin(), found.end());
    for (size_t k = 0; k < found.size(); k++)
      j += (k ? "," : "") + std::string("{\"name\":") + json_quote(found[k].first) +
          ",\"description\":" + json_quote(found[k].second) + "}";
  }
  // "running": started and not yet reaped; "recent": the last ones that ended.
  for (bool live : {true, false}) {
    j += live ? "],\"running\":[" : "],\"recent\":[";
    bool first = true;
    for (auto &[id, c] : priv_->children) {
      if (c->running != live) continue;
      j += (first ? "" : ",") + priv_->child_json(*c);
      first = false;
    }
  }
  j += "],\"max_running\":" + std::to_string(cfg.max_running) + "}";
  return {200, j};
}

ApiReply PipelineManager::start(std::string_view name, std::string_view body)
{
  auto &p = *priv_;
  const auto &cfg = p.cfg;
  if (!pipeline_name_ok(name))
    return error_reply(400, "bad_name",
                       "pipeline names are 1-64 letters, digits, '-' or '_' (no paths, dots or "
                       "other characters)");
  if (cfg.dir.empty())
    return error_reply(404, "no_pipelines_dir", "the daemon was started without --pipelines-dir");
  g_autofree char *path =
      g_build_filename(cfg.dir.c_str(), (std::string(name) + ".pipeline").c_str(), nullptr);
  GStatBuf st;
  // lstat: a symlink could point outside the directory, so only plain files count.
  if (g_lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return error_reply(404, "unknown_pipeline",
                       "no pipeline named '" + std::string(name) + "' in the pipelines directory");

  std::string room, peer_id;
  {
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = nullptr;
    std::string b(body);
    if (b.find_first_not_of(" \t\r\n") == std::string::npos) b = "{}";
    // Bounded first: json-glib's recursion crashed on a body of a million '['.
    if (auto bad = protocol::check_json(b))
      return error_reply(400, bad->code, "request body: " + bad->message);
    if (!json_parser_load_from_data(parser, b.data(), b.size(), &err))
      return error_reply(400, "bad_json", std::string("request body is not JSON: ") + err->message);
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root))
      return error_reply(400, "bad_json",
                         "request body must be a JSON object like {\"room\":\"default\"}");
    JsonObject *o = json_node_get_object(root);
    auto get = [&](const char *key, std::string *out) -> bool {
      JsonNode *n = json_object_get_member(o, key);
      if (!n || JSON_NODE_HOLDS_NULL(n)) return true;
      if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) return false;
      *out = json_node_get_string(n);
      return true;
    };
    if (!get("room", &room) || !get("peer_id", &peer_id))
      return error_reply(400, "bad_field", "'room' and 'peer_id' must be strings");
  }
  if (room.empty()) room = "default";
  if (!room_ok(room))
    return error_reply(400, "bad_room", "room names are 1-64 letters, digits, '.', '-' or '_'");
  if (!peer_id.empty() && !room_ok(peer_id))
    return error_reply(400, "bad_peer_id", "peer ids are 1-64 letters, digits, '.', '-' or '_'");
  if (p.running_count() >= cfg.max_running)
    return error_reply(429, "too_many",
                       "already " + std::to_string(cfg.max_running) +
                           " pipelines running (--max-pipelines); stop one first");

  g_autofree char *text = nullptr;
  gsize text_len = 0;
  if (!g_file_get_contents(path, &text, &text_len, nullptr))
    return error_reply(500, "unreadable", "cannot read the pipeline file");
  auto words = pipeline_words(std::string(text, text_len));
  if (words.empty())
    return error_reply(422, "empty_pipeline", "the pipeline file has no pipeline in it");

  std::string id;
  do id = std::string(name) + "-" + std::to_string(++p.serial);
  while (p.children.count(id));
  if (peer_id.empty()) peer_id = id;
  if (cfg.signaling_url.empty())
    return error_reply(503, "no_signaling_url", "the daemon has no signaling URL for children yet");

  std::vector<char *> argv;
  argv.push_back(const_cast<char *>(cfg.launcher.c_str()));
  argv.push_back(const_cast<char *>("-e"));
  for (auto &w : words) argv.push_back(w.data());
  argv.push_back(nullptr);

  char **envp = g_get_environ();
  // rtcpeer in a pipeline file has no token property set, so the child gets in with the
  // daemon's child credential in the URL (accepted on /ws from loopback only); the user's token
  // never goes into a URL. POINTCAST_TOKEN carries the real one for programs that want it.
  std::string url = cfg.signaling_url;
  if (!cfg.url_token.empty() && url.find("token=") == std::string::npos) {
    g_autofree char *t = g_uri_escape_string(cfg.url_token.c_str(), nullptr, FALSE);
    url += (url.find('?') == std::string::npos ? "?token=" : "&token=") + std::string(t);
  }
  envp = g_environ_setenv(envp, "POINTCAST_SIGNALING", url.c_str(), TRUE);
  envp = g_environ_setenv(envp, "POINTCAST_ROOM", room.c_str(), TRUE);
  envp = g_environ_setenv(envp, "POINTCAST_PEER_ID", peer_id.c_str(), TRUE);
  if (!cfg.token.empty()) envp = g_environ_setenv(envp, "POINTCAST_TOKEN", cfg.token.c_str(), TRUE);
  envp = g_environ_setenv(envp, "GST_DEBUG_NO_COLOR", "1", TRUE);

  auto child = std::make_unique<Child>();
  Child &c = *child;
  c.id = id;
  c.name = std::string(name);
  c.room = room;
  c.peer_id = peer_id;
  int out_fd = -1, err_fd = -1;
  g_autoptr(GError) err = nullptr;
  // Run where `./pointcast launch` runs: the folder above pipelines/, so relative paths in the
  // files (data/ball.png) resolve the same way.
  g_autofree char *cwd = g_path_get_dirname(cfg.dir.c_str());
  gboolean ok = g_spawn_async_with_pipes(
      cwd, argv.data(), envp,
      static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                               G_SPAWN_STDIN_FROM_DEV_NULL),
      child_setup, nullptr, &c.pid, nullptr, &out_fd, &err_fd, &err);
  g_strfreev(envp);
  if (!ok) {
    p.log("ERROR", "cannot start pipeline " + id + ": " + err->message);
    return error_reply(500, "spawn_failed",
                       std::string("cannot start ") + cfg.launcher + ": " + err->message);
  }
  c.started_us = g_get_monotonic_time();
  p.children[id] = std::move(child);
  for (int k = 0; k < 2; k++) {
    int fd = k == 0 ? out_fd : err_fd;
    c.chan[k] = g_io_channel_unix_new(fd);
    g_io_channel_set_close_on_unref(c.chan[k], TRUE);
    g_io_channel_set_encoding(c.chan[k], nullptr, nullptr);
    g_io_channel_set_flags(c.chan[k], G_IO_FLAG_NONBLOCK, nullptr);
    c.open_streams++;
    c.io_watch[k] = g_io_add_watch_full(
        c.chan[k], G_PRIORITY_DEFAULT, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR),
        on_child_io, new IoCtx{&p, id, k}, [](gpointer d) { delete static_cast<IoCtx *>(d); });
  }
  c.child_watch =
      g_child_watch_add_full(G_PRIORITY_DEFAULT, c.pid, on_child_exit, new WatchCtx{&p, id},
                             [](gpointer d) { delete static_cast<WatchCtx *>(d); });
  p.log("INFO",
        "started pipeline " + id + " (pid " + std::to_string(c.pid) + ") in room " + room +
            " as peer " + peer_id);
  std::string started = p.child_json(c);
  p.event(c, "{\"type\":\"pipeline_started\",\"pipeline\":" + started + "}", true);
  return {201, started};
}

ApiReply PipelineManager::stop(std::string_view id)
{
  auto &p = *priv_;
  auto it = p.children.find(std::string(id));
  if (!pipeline_name_ok(id) || it == p.children.end())
    return error_reply(404, "unknown_id", "no pipeline with id '" + std::string(id) + "'");
  Child &c = *it->second;
  if (!c.running) return {200, p.child_json(c)};
  if (!c.stopping) {
    c.stopping = true;
    p.log("INFO", "stopping pipeline " + c.id);
    // gst-launch -e turns SIGINT into EOS, so files and peers are closed cleanly.
    kill(-c.pid, SIGINT);
    struct KillCtx {
      PipelineManager::Private *p;
      std::string id;
    };
    c.kill_timer = g_timeout_add_full(
        G_PRIORITY_DEFAULT, p.cfg.stop_grace_ms,
        [](gpointer d) -> gboolean {
          auto *k = static_cast<KillCtx *>(d);
          auto it = k->p->children.find(k->id);
          if (it != k->p->children.end() && it->second->running) {
            it->second->kill_timer = 0;
            k->p->log("WARNING", "pipeline " + k->id + " did not stop after SIGINT; killing it");
            kill(-it->second->pid, SIGKILL);
          }
          return G_SOURCE_REMOVE;
        },
        new KillCtx{&p, c.id}, [](gpointer d) { delete static_cast<KillCtx *>(d); });
  }
  return {202, p.child_json(c)};
}

void PipelineManager::stop_all()
{
  auto &p = *priv_;
  std::vector<Child *> live;
  for (auto &[id, c] : p.children)
    if (c->running) live.push_back(c.get());
  if (live.empty()) return;
  for (Child *c : live) kill(-c->pid, SIGINT);
  // Reap synchronously: this runs when the daemon is going away and the main loop may be gone.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(p.cfg.stop_grace_ms);
  for (;;) {
    bool any = false;
    for (Child *c : live) {
      if (!c->running) continue;
      int status = 0;
      pid_t r = waitpid(c->pid, &status, WNOHANG);
      if (r == c->pid || (r < 0 && errno == ECHILD)) {
        c->running = false;
        c->wait_status = status;
        if (c->child_watch) g_source_remove(c->child_watch), c->child_watch = 0;
        kill(-c->pid, SIGKILL);
      } else {
        any = true;
      }
    }
    if (!any) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (Child *c : live) {
        if (!c->running) continue;
        kill(-c->pid, SIGKILL);
        int status = 0;
        waitpid(c->pid, &status, 0);
        c->running = false;
        c->wait_status = status;
        if (c->child_watch) g_source_remove(c->child_watch), c->child_watch = 0;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (Child *c : live)
    p.log("INFO", "pipeline " + c->id + " stopped (" + Private::exit_text(*c) + ")");
}

unsigned PipelineManager::subscribe(std::string room, Listener listener, bool replay)
{
  auto &p = *priv_;
  unsigned id = p.next_sub++;
  if (replay) {
    for (auto &[cid, c] : p.children) {
      if (!room.empty() && c->room != room) continue;
      for (auto &j : c->backlog) listener(j);
    }
  }
  p.subscribers[id] = Subscriber{std::move(room), std::move(listener)};
  return id;
}

void PipelineManager::unsubscribe(unsigned id)
{
  priv_->subscribers.erase(id);
}
size_t PipelineManager::subscribers() const
{
  return priv_->subscribers.size();
}
std::weak_ptr<void> PipelineManager::lifetime() const
{
  return alive_;
}

/* ------------------------------------------------------------------------------------------- */

namespace {

void reply(SoupServerMessage *msg, const ApiReply &r)
{
  soup_server_message_set_status(msg, r.status, nullptr);
  auto *h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "Cache-Control", "no-store");
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, r.json.data(),
                                   r.json.size());
}

bool authorized(PipelineManager *mgr, SoupServerMessage *msg, GHashTable *query)
{
  const std::string &token = mgr->config().token;
  if (token.empty() ||
      auth::presents(msg, token, auth::kQuery | auth::kXHeader | auth::kBearer, query))
    return true;
  reply(msg,
        error_reply(
            401, "unauthorized",
            "a valid token is required (?token=, Authorization: Bearer, or X-Pointcast-Token)"));
  return false;
}

// ws(s)://host:port/ws of this server as seen from a child on the same machine.
void ensure_signaling_url(SoupServer *server, PipelineManager *mgr)
{
  if (!mgr->config().signaling_url.empty()) return;
  GSList *uris = soup_server_get_uris(server);
  if (!uris) return;
  GUri *u = static_cast<GUri *>(uris->data);
  std::string host = g_uri_get_host(u) ? g_uri_get_host(u) : "127.0.0.1";
  if (host == "0.0.0.0" || host.empty())
    host = "127.0.0.1";
  else if (host == "::")
    host = "[::1]";
  else if (host.find(':') != std::string::npos && host[0] != '[')
    host = "[" + host + "]";
  bool tls = g_strcmp0(g_uri_get_scheme(u), "https") == 0;
  mgr->set_signaling_url(std::string(tls ? "wss://" : "ws://") + host + ":" +
                         std::to_string(g_uri_get_port(u)) + "/ws");
  g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
}

} // namespace

void handle_pipelines(PipelineManager *mgr, SoupServer *server, SoupServerMessage *msg,
                      const char *path, GHashTable *query, bool check_token)
{
  if (check_token && !authorized(mgr, msg, query)) return;
  const char *method = soup_server_message_get_method(msg);
  // libsoup hands over the decoded path (it refuses dot segments and NUL itself with 400), so
  // a name holding an encoded '/' arrives as several segments: join them back and let the name
  // check refuse it.
  std::string p = path;
  std::vector<std::string> seg;
  for (size_t i = 1; i <= p.size();) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    seg.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  // seg[0] = "api", seg[1] = "pipelines"
  if (seg.size() >= 3 && seg.back().empty()) seg.pop_back(); // trailing slash
  auto join = [&](size_t from, size_t to) {
    std::string out;
    for (size_t k = from; k < to; k++) out += (k > from ? "/" : "") + seg[k];
    return out;
  };
  if (seg.size() == 2) {
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
      reply(msg, error_reply(405, "method_not_allowed", "use GET on /api/pipelines"));
      return;
    }
    reply(msg, mgr->list());
    return;
  }
  if (!strcmp(method, "POST")) {
    if (seg.size() < 4 || seg.back() != "start") {
      reply(msg,
            error_reply(404, "not_found", "start a pipeline with POST /api/pipelines/NAME/start"));
      return;
    }
    std::string name = join(2, seg.size() - 1);
    if (!pipeline_name_ok(name)) {
      reply(msg,
            error_reply(400, "bad_name",
                        "pipeline names are 1-64 letters, digits, '-' or '_' (no paths, dots or "
                        "other characters)"));
      return;
    }
    ensure_signaling_url(server, mgr);
    auto *body = soup_server_message_get_request_body(msg);
    g_autoptr(GBytes) bytes = soup_message_body_flatten(body);
    gsize len = 0;
    const char *data_ptr = static_cast<const char *>(g_bytes_get_data(bytes, &len));
    reply(msg, mgr->start(name, std::string_view(data_ptr ? data_ptr : "", len)));
    return;
  }
  if (!strcmp(method, "DELETE")) {
    std::string id = join(2, seg.size());
    if (!pipeline_name_ok(id)) {
      reply(msg, error_reply(400, "bad_id", "pipeline ids are letters, digits, '-' or '_'"));
      return;
    }
    reply(msg, mgr->stop(id));
    return;
  }
  reply(msg,
        error_reply(405, "method_not_allowed",
                    "use GET /api/pipelines, POST /api/pipelines/NAME/start or "
                    "DELETE /api/pipelines/ID"));
}

struct Stream {
  PipelineManager *mgr;
  std::weak_ptr<void> mgr_alive;
  SoupServerMessage *msg;
  unsigned sub = 0;
  guint keepalive = 0;
  size_t unsent = 0;   // queued (pending or appended) but not yet written to the socket
  std::string pending; // events of this main-loop iteration, appended as one chunk
  guint flusher = 0;
  bool dropped = false;
  GSource *hangup = nullptr;
};

/* The response body does not accumulate (nothing sent is kept), and what a subscriber has not
 * read yet is bounded: a client that stops reading is cut off instead of buffered without end.
 * Events are appended once per main-loop iteration as one chunk: a sender printing 30k lines a
 * second made as many chunks and writes, and under AddressSanitizer the writes fell so far behind
 * that a subscriber reading as fast as it could passed the bound. */
void stream_send(Stream *s, const std::string &chunk)
{
  if (s->dropped) return;
  if (s->unsent + chunk.size() > s->mgr->config().max_stream_backlog) {
    s->dropped = true;
    if (s->mgr->config().log)
      s->mgr->config().log("WARNING", "an /api/events subscriber stopped reading; stream closed");
    if (GSocket *sock = soup_server_message_get_socket(s->msg))
      g_socket_shutdown(sock, TRUE, TRUE, nullptr);
    return;
  }
  s->unsent += chunk.size();
  s->pending += chunk;
  if (s->flusher) return;
  // Default priority (an idle source would starve behind a busy sender's output).
  s->flusher = g_timeout_add(
      0,
      [](gpointer d) -> gboolean {
        auto *st = static_cast<Stream *>(d);
        st->flusher = 0;
        if (st->dropped) return G_SOURCE_REMOVE;
        auto *body = soup_server_message_get_response_body(st->msg);
        soup_message_body_append(body, SOUP_MEMORY_COPY, st->pending.data(), st->pending.size());
        st->pending.clear();
        soup_server_message_unpause(st->msg);
        return G_SOURCE_REMOVE;
      },
      s);
}

void stream_close(gpointer data)
{
  auto *s = static_cast<Stream *>(data);
  if (s->sub && !s->mgr_alive.expired()) s->mgr->unsubscribe(s->sub);
  if (s->keepalive) g_source_remove(s->keepalive);
  if (s->flusher) g_source_remove(s->flusher);
  if (s->hangup) {
    g_source_destroy(s->hangup);
    g_source_unref(s->hangup);
  }
  delete s;
}

void handle_events(PipelineManager *mgr, SoupServerMessage *msg, GHashTable *query,
                   bool check_token)
{
  if (check_token && !authorized(mgr, msg, query)) return;
  if (strcmp(soup_server_message_get_method(msg), "GET")) {
    reply(msg, error_reply(405, "method_not_allowed", "use GET on /api/events"));
    return;
  }
  std::string room;
  if (const char *r =
          query ? static_cast<const char *>(g_hash_table_lookup(query, "room")) : nullptr) {
    room = r;
    if (!room_ok(room)) {
      reply(msg,
            error_reply(400, "bad_room", "room names are 1-64 letters, digits, '.', '-' or '_'"));
      return;
    }
  }
  if (mgr->subscribers() >= mgr->config().max_subscribers) {
    reply(msg,
          error_reply(503, "too_many_subscribers",
                      "already " + std::to_string(mgr->config().max_subscribers) +
                          " event streams open (--max-event-subscribers)"));
    return;
  }
  soup_server_message_set_status(msg, 200, nullptr);
  auto *h = soup_server_message_get_response_headers(msg);
  soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
  soup_message_headers_set_content_type(h, "text/event-stream", nullptr);
  soup_message_headers_replace(h, "Cache-Control", "no-store");
  soup_message_body_set_accumulate(soup_server_message_get_response_body(msg), FALSE);
  auto *s = new Stream{mgr, mgr->lifetime(), msg};
  // The message outlives nothing of ours: when it finishes (client gone, daemon exiting), drop
  // the subscription.
  g_object_set_data_full(G_OBJECT(msg), "pointcast-stream", s, stream_close);
  g_signal_connect(msg, "wrote-body-data",
                   G_CALLBACK(+[](SoupServerMessage *, guint n, gpointer d) {
                     auto *st = static_cast<Stream *>(d);
                     st->unsent -= std::min<size_t>(st->unsent, n);
                   }),
                   s);
  // A subscriber that hangs up is noticed at once (libsoup would only notice on the next write,
  // up to 15 s later, and the stream would hold a --max-event-subscribers place until then).
  if (GSocket *sock = soup_server_message_get_socket(msg)) {
    s->hangup = g_socket_create_source(sock, GIOCondition(G_IO_IN | G_IO_HUP | G_IO_ERR), nullptr);
    g_source_set_callback(
        s->hangup, G_SOURCE_FUNC(+[](GSocket *sk, GIOCondition, gpointer d) -> gboolean {
          auto *st = static_cast<Stream *>(d);
          char c;
          // Peeked, never read: under TLS the bytes belong to the TLS layer.
          ssize_t n = recv(g_socket_get_fd(sk), &c, 1, MSG_PEEK | MSG_DONTWAIT);
          if (n < 0 && (errno == EAGAIN || errno == EINTR)) return G_SOURCE_CONTINUE;
          if (n < 0) n = 0; // a socket error: gone as well
          if (n == 0) {
            // Gone: free the place now; completing the body lets libsoup finish the message.
            if (st->sub && !st->mgr_alive.expired()) st->mgr->unsubscribe(st->sub);
            st->sub = 0;
            st->dropped = true;
            soup_message_body_complete(soup_server_message_get_response_body(st->msg));
            soup_server_message_unpause(st->msg);
          }
          // Released here, so stream_close finds nothing left to destroy.
          g_source_destroy(st->hangup);
          g_source_unref(st->hangup);
          st->hangup = nullptr;
          return G_SOURCE_REMOVE;
        }),
        s, nullptr);
    g_source_attach(s->hangup, g_main_context_get_thread_default());
  }
  stream_send(s, "retry: 2000\n\n");
  s->sub = mgr->subscribe(
      room, [s](const std::string &json) { stream_send(s, "data: " + json + "\n\n"); }, true);
  s->keepalive = g_timeout_add_seconds(
      15,
      [](gpointer d) -> gboolean {
        stream_send(static_cast<Stream *>(d), ": keepalive\n\n");
        return G_SOURCE_CONTINUE;
      },
      s);
  g_signal_connect(msg, "finished", G_CALLBACK(+[](SoupServerMessage *m, gpointer) {
                     g_object_set_data(G_OBJECT(m), "pointcast-stream", nullptr);
                   }),
                   nullptr);
}

void handle_other(SoupServerMessage *msg)
{
  reply(msg,
        error_reply(404, "not_found",
                    "unknown API path; see GET /api/pipelines, POST /api/pipelines/NAME/start, "
                    "DELETE /api/pipelines/ID, GET /api/events"));
}

void pipelines_attach(SoupServer *server, PipelineManager *mgr)
{
  soup_server_add_handler(
      server, "/api",
      [](SoupServer *, SoupServerMessage *msg, const char *, GHashTable *, gpointer) {
        handle_other(msg);
      },
      nullptr, nullptr);
  soup_server_add_handler(
      server, "/api/pipelines",
      [](SoupServer *srv, SoupServerMessage *msg, const char *path, GHashTable *query,
         gpointer data) {
        handle_pipelines(static_cast<PipelineManager *>(data), srv, msg, path, query, true);
      },
      mgr, nullptr);
  soup_server_add_handler(
      server, "/api/events",
      [](SoupServer *, SoupServerMessage *msg, const char *, GHashTable *query, gpointer data) {
        handle_events(static_cast<PipelineManager *>(data), msg, query, true);
      },
      mgr, nullptr);
}

} // namespace pointcast
