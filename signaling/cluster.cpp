// SPDX-License-Identifier: LGPL-2.1-or-later
#include "cluster.h"

#include "log.h"

#include <hiredis/adapters/glib.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace pointcast::signaling {

namespace {
const char *kModule = "cluster";

constexpr int kClaimTtlSeconds = 30;
constexpr gint64 kClaimRefreshUs = 10 * G_USEC_PER_SEC;
constexpr int kPresenceTtlMs = 3000; // a dead daemon is noticed within this plus one check (1 s)
constexpr unsigned kMaxBackoffMs = 1000;
constexpr gint64 kReconnectGraceUs = 5 * G_USEC_PER_SEC;
constexpr std::size_t kMaxUnsentBytes = 64 << 20; // relays waiting for Redis; past it: dropped

// Claim the id, record the member, announce it: one atomic step, so the announcements reach
// every daemon in the order the claims were decided.
const char *kJoinScript = R"(
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[4]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1)";
const char *kLeaveScript = R"(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1)";
// A dead daemon's state: its claims (those still its own) and its member hash. -1: it is alive.
const char *kReapScript = R"(
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
redis.call('SREM', KEYS[1], ARGV[1])
local f = redis.call('HKEYS', KEYS[2])
for _, k in ipairs(f) do
  local ck = ARGV[2] .. k
  if redis.call('GET', ck) == ARGV[1] then redis.call('DEL', ck) end
end
redis.call('DEL', KEYS[2])
return #f)";
// Presence, and whether the instance set still lists us (0: we were taken for dead).
const char *kBeatScript = R"(
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
return redis.call('SISMEMBER', KEYS[2], ARGV[1]))";
// Our whole member hash rebuilt, then our entry in the instance set, in one step: a reader
// never sees a listed daemon with a partial hash. Returns the 1-based indexes of lost claims.
// KEYS: members hash, instances; ARGV: inst, claim prefix, ttl, channel, event, then pairs.
const char *kRepublishScript = R"(
redis.call('DEL', KEYS[1])
local lost = {}
for i = 6, #ARGV, 2 do
  local ck = ARGV[2] .. ARGV[i]
  local ok = redis.call('SET', ck, ARGV[1], 'NX', 'EX', ARGV[3])
  if not ok and redis.call('GET', ck) == ARGV[1] then
    redis.call('EXPIRE', ck, ARGV[3])
    ok = true
  end
  if ok then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) else lost[#lost + 1] = (i - 4) / 2 end
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return lost)";
// A daemon's members, or nil while the instance set does not list it: it was reaped and is
// (if alive) about to republish, so its hash is not the truth yet.
const char *kLoadScript = R"(
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('HGETALL', KEYS[2]))";

bool valid_instance(std::string_view s)
{
  return !s.empty() && s.size() <= 32 &&
      std::all_of(s.begin(), s.end(), [](char c) { return g_ascii_isxdigit(c); });
}

// Strict small decimal, for the lengths in our headers.
bool parse_len(std::string_view s, std::size_t *out)
{
  if (s.empty() || s.size() > 6) return false;
  std::size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

// "<tokens separated by spaces>\n<payload>": header tokens and the payload, or false.
bool split_header(const char *p, std::size_t n, std::vector<std::string_view> *tokens,
                  std::string_view *payload)
{
  std::string_view all(p, n);
  std::size_t nl = all.find('\n');
  if (nl == std::string_view::npos || nl > 128) return false;
  std::string_view head = all.substr(0, nl);
  *payload = all.substr(nl + 1);
  tokens->clear();
  while (!head.empty() && tokens->size() < 8) {
    std::size_t sp = head.find(' ');
    tokens->push_back(head.substr(0, sp));
    if (sp == std::string_view::npos) break;
    head.remove_prefix(sp + 1);
  }
  return !tokens->empty();
}

void destroy_source(GSource **src)
{
  if (!*src) return;
  // The adapter's dispatch reads revents again after a write: none left for a freed context.
  reinterpret_cast<RedisSource *>(*src)->poll_fd.revents = 0;
  g_source_destroy(*src);
  g_source_unref(*src);
  *src = nullptr;
}
} // namespace

bool parse_redis_url(const std::string &url, RedisAddress *out, std::string *error)
{
  g_autoptr(GUri) u = g_uri_parse(url.c_str(), G_URI_FLAGS_NONE, nullptr);
  if (!u || g_strcmp0(g_uri_get_scheme(u), "redis")) {
    *error = "--redis " + url + " is not a URL like redis://host:port[/db]";
    return false;
  }
  RedisAddress a;
  if (const char *h = g_uri_get_host(u); h && *h) a.host = h;
  if (g_uri_get_port(u) > 0) a.port = g_uri_get_port(u);
  std::string path = g_uri_get_path(u);
  if (!path.empty() && path != "/") {
    unsigned long db = 0;
    char *end = nullptr;
    db = std::strtoul(path.c_str() + 1, &end, 10);
    if (path[0] != '/' || !g_ascii_isdigit(path[1]) || *end || db > 1000) {
      *error = "--redis " + url + ": the path must be a database number (/0, /1, ...)";
      return false;
    }
    a.db = static_cast<int>(db);
  }
  if (g_uri_get_user(u) || g_uri_get_query(u)) {
    *error = "--redis " + url + ": user, password and query are not supported";
    return false;
  }
  *out = a;
  return true;
}

struct RedisCluster::FlushSource {
  GSource source;
  RedisCluster *self;
};

struct RedisCluster::Call {
  RedisCluster *self = nullptr;
  void (*done)(RedisCluster &, redisReply *, Call &) = nullptr;
  std::string a, b;
  Handle client = 0;
  gint64 sent_us = 0;
  bool on_null = false; // also called (with a null reply) when the connection went away
  std::vector<Rooms::RemoteEntry> entries; // republished members, for lost claims
};

struct Callbacks {
  static void reply(redisAsyncContext *, void *r, void *priv)
  {
    auto *call = static_cast<RedisCluster::Call *>(priv);
    // r is null when the connection went away: nothing to act on.
    if (call->done && (r || (call->on_null && !call->self->stopping_)))
      call->done(*call->self, static_cast<redisReply *>(r), *call);
    delete call;
  }
  static void sub(redisAsyncContext *ac, void *r, void *)
  {
    if (r) static_cast<RedisCluster *>(ac->data)->on_sub(static_cast<redisReply *>(r));
  }
  static void connected(const redisAsyncContext *ac, int status)
  {
    auto *self = static_cast<RedisCluster *>(ac->data);
    bool is_cmd = ac == self->cmd_;
    if (status != REDIS_OK) {
      // hiredis frees the context after this returns.
      // hiredis still runs the adapter's cleanup on the source after this: destroy it later.
      PC_LOG(Debug, kModule, "connect failed: %s", ac->errstr);
      GSource **src = is_cmd ? &self->cmd_src_ : &self->sub_src_;
      reinterpret_cast<RedisSource *>(*src)->poll_fd.revents = 0;
      self->dead_sources_.push_back(*src);
      *src = nullptr;
      (is_cmd ? self->cmd_ : self->sub_) = nullptr;
      self->teardown(ac->errstr);
      return;
    }
    if (is_cmd) {
      self->cmd_ready_ = true;
    } else {
      self->sub_ready_ = true;
    }
    // A TCP connection is not yet Redis (a proxy may accept anything): online once it answers.
    if (self->cmd_ready_ && self->sub_ready_) {
      auto *call = new RedisCluster::Call;
      call->self = self;
      call->done = [](RedisCluster &me, redisReply *r, RedisCluster::Call &) {
        if (r->type == REDIS_REPLY_STATUS && std::string_view(r->str, r->len) == "PONG")
          me.online();
        else
          me.teardown("no Redis answer to PING");
      };
      redisAsyncCommand(self->cmd_, Callbacks::reply, call, "PING");
    }
  }
  static void disconnected(const redisAsyncContext *ac, int)
  {
    auto *self = static_cast<RedisCluster *>(ac->data);
    std::string why = ac->err ? ac->errstr : "connection closed";
    if (ac == self->cmd_) {
      self->cmd_ = nullptr;
      destroy_source(&self->cmd_src_);
    } else if (ac == self->sub_) {
      self->sub_ = nullptr;
      destroy_source(&self->sub_src_);
    }
    if (!self->stopping_) self->teardown(why.c_str());
  }
};

RedisCluster::RedisCluster(Server &server, RedisAddress addr)
    : server_(server), addr_(std::move(addr)), inst_(random_hex(6))
{
  pfx_ = "pointcast:" + std::to_string(addr_.db) + ":";
  ch_members_ = pfx_ + "members";
  ch_inbox_ = pfx_ + "inst:" + inst_;
  ch_room_ = pfx_ + "room:";
  server_.rooms().set_cluster(this);
  // Relayed messages leave once per main-loop iteration, just before it polls.
  static GSourceFuncs funcs = {
      [](GSource *src, gint *timeout) -> gboolean {
        *timeout = -1;
        reinterpret_cast<FlushSource *>(src)->self->flush_batches();
        return FALSE;
      },
      nullptr,
      [](GSource *, GSourceFunc, gpointer) -> gboolean { return G_SOURCE_CONTINUE; },
      nullptr,
      nullptr,
      nullptr};
  flusher_ = g_source_new(&funcs, sizeof(FlushSource));
  reinterpret_cast<FlushSource *>(flusher_)->self = this;
  g_source_attach(flusher_, nullptr);
}

RedisCluster::~RedisCluster()
{
  stopping_ = true;
  g_source_destroy(flusher_);
  g_source_unref(flusher_);
  server_.rooms().set_cluster(nullptr);
  for (guint *t : {&retry_timer_, &beat_timer_, &connect_timer_, &teardown_idle_})
    if (*t) g_source_remove(*t);
  for (auto [ac, src] : {std::pair{&cmd_, &cmd_src_}, std::pair{&sub_, &sub_src_}}) {
    if (redisAsyncContext *c = *ac) {
      redisAsyncFree(c);
      *ac = nullptr;
    }
    destroy_source(src);
  }
  for (GSource *&src : dead_sources_) destroy_source(&src);
}

void RedisCluster::start()
{
  PC_LOG(Info, kModule, "instance %s, Redis at %s:%d db %d", inst_.c_str(), addr_.host.c_str(),
         addr_.port, addr_.db);
  connect();
  beat_timer_ = g_timeout_add(
      1000,
      [](gpointer p) -> gboolean {
        static_cast<RedisCluster *>(p)->heartbeat();
        return G_SOURCE_CONTINUE;
      },
      this);
}

void RedisCluster::connect()
{
  auto open = [&](redisAsyncContext **ac, GSource **src) {
    *ac = redisAsyncConnect(addr_.host.c_str(), addr_.port);
    if (!*ac) return false;
    if ((*ac)->err) {
      PC_LOG(Debug, kModule, "connect: %s", (*ac)->errstr);
      redisAsyncFree(*ac);
      *ac = nullptr;
      return false;
    }
    (*ac)->data = this;
    *src = redis_source_new(*ac);
    g_source_attach(*src, nullptr);
    redisAsyncSetConnectCallback(*ac, Callbacks::connected);
    redisAsyncSetDisconnectCallback(*ac, Callbacks::disconnected);
    return true;
  };
  if (!open(&cmd_, &cmd_src_) || !open(&sub_, &sub_src_)) {
    teardown("cannot open a connection");
    return;
  }
  // An address that never answers must not leave us waiting forever.
  connect_timer_ = g_timeout_add(
      2000,
      [](gpointer p) -> gboolean {
        auto *self = static_cast<RedisCluster *>(p);
        self->connect_timer_ = 0;
        if (!self->online_) self->teardown("connect timed out");
        return G_SOURCE_REMOVE;
      },
      this);
}

void RedisCluster::teardown(const char *why)
{
  if (stopping_) return;
  bool was_online = online_;
  online_ = cmd_ready_ = sub_ready_ = false;
  if (connect_timer_) {
    g_source_remove(connect_timer_);
    connect_timer_ = 0;
  }
  if (was_online || !outage_logged_) {
    PC_LOG(Warning, kModule,
           "Redis at %s:%d unreachable (%s): local rooms keep working, retrying with backoff",
           addr_.host.c_str(), addr_.port, why);
    outage_logged_ = true;
  }
  // Contexts cannot be freed from inside their own callbacks: do it from an idle.
  if (!teardown_idle_)
    teardown_idle_ = g_idle_add(
        [](gpointer p) -> gboolean {
          auto *self = static_cast<RedisCluster *>(p);
          self->teardown_idle_ = 0;
          for (auto [ac, src] :
               {std::pair{&self->cmd_, &self->cmd_src_}, std::pair{&self->sub_, &self->sub_src_}}) {
            if (redisAsyncContext *c = *ac) {
              redisAsyncFree(c); // calls disconnected() when it was connected
              if (*ac == c) *ac = nullptr;
            }
            destroy_source(src);
          }
          for (GSource *&src : self->dead_sources_) destroy_source(&src);
          self->dead_sources_.clear();
          self->schedule_retry();
          return G_SOURCE_REMOVE;
        },
        this);
}

void RedisCluster::schedule_retry()
{
  if (retry_timer_ || stopping_) return;
  PC_LOG(Debug, kModule, "reconnecting to Redis in %u ms", backoff_ms_);
  retry_timer_ = g_timeout_add(
      backoff_ms_,
      [](gpointer p) -> gboolean {
        auto *self = static_cast<RedisCluster *>(p);
        self->retry_timer_ = 0;
        self->reconnects_++;
        self->connect();
        return G_SOURCE_REMOVE;
      },
      this);
  backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
}

void RedisCluster::command(std::vector<std::string> args,
                           void (*done)(RedisCluster &, redisReply *, Call &), Call *ctx)
{
  if (!online_ || !cmd_) {
    unsent_++;
    if (ctx && ctx->on_null && done) done(*this, nullptr, *ctx);
    delete ctx;
    return;
  }
  flush_batches(); // relayed messages queued before this command go first
  std::vector<const char *> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto &a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  if (done && !ctx) ctx = new Call;
  if (ctx) {
    ctx->self = this;
    ctx->done = done;
  }
  if (redisAsyncCommandArgv(cmd_, ctx ? Callbacks::reply : nullptr, ctx, (int)argv.size(),
                            argv.data(), lens.data()) != REDIS_OK) {
    unsent_++;
    if (ctx && ctx->on_null && ctx->done) ctx->done(*this, nullptr, *ctx);
    delete ctx;
  }
}

std::string RedisCluster::field(const std::string &room, const std::string &id)
{
  return std::to_string(room.size()) + ":" + room + id;
}

void RedisCluster::online()
{
  if (connect_timer_) {
    g_source_remove(connect_timer_);
    connect_timer_ = 0;
  }
  bool first = judge_after_us_ == 0;
  online_ = true;
  backoff_ms_ = 100;
  outage_logged_ = false;
  // After an outage the others may still be reconnecting: give them time before judging them.
  judge_after_us_ = g_get_monotonic_time() + (first ? 1 : kReconnectGraceUs);
  PC_LOG(Info, kModule, "%s Redis at %s:%d as instance %s",
         first ? "connected to" : "reconnected to", addr_.host.c_str(), addr_.port, inst_.c_str());
  if (addr_.db) command({"SELECT", std::to_string(addr_.db)}, nullptr);

  // Subscriptions: the member events, our inbox, and every room we have members in.
  std::vector<std::string> chans = {"SUBSCRIBE", ch_members_, ch_inbox_};
  for (auto &r : server_.rooms().local_rooms()) chans.push_back(ch_room_ + r);
  std::vector<const char *> argv;
  std::vector<size_t> lens;
  for (auto &c : chans) {
    argv.push_back(c.data());
    lens.push_back(c.size());
  }
  redisAsyncCommandArgv(sub_, Callbacks::sub, nullptr, (int)argv.size(), argv.data(), lens.data());

  for (auto &[room, id] : pending_leaves_) eval_leave(room, id);
  pending_leaves_.clear();
  heartbeat();
  republish();
  // What the others hold now; read again each beat for a while (see heartbeat).
  resync_until_us_ = g_get_monotonic_time() + kReconnectGraceUs;
  load_all();
}

void RedisCluster::load_all()
{
  command({"SMEMBERS", pfx_ + "instances"}, [](RedisCluster &self, redisReply *r, Call &) {
    if (r->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < r->elements; i++) {
      redisReply *e = r->element[i];
      if (e->type != REDIS_REPLY_STRING) continue;
      std::string inst(e->str, e->len);
      if (inst == self.inst_ || !valid_instance(inst)) continue;
      self.known_.insert(inst);
      self.load_instance(inst);
    }
  });
}

void RedisCluster::republish()
{
  // Our hash is rebuilt from what we hold (members that left while Redis was away vanish).
  std::vector<Rooms::RemoteEntry> members = server_.rooms().local_members();
  std::vector<std::string> args = {"EVAL",
                                   kRepublishScript,
                                   "2",
                                   pfx_ + "members:" + inst_,
                                   pfx_ + "instances",
                                   inst_,
                                   pfx_ + "id:",
                                   std::to_string(kClaimTtlSeconds),
                                   ch_members_,
                                   "S " + inst_ + "\n"};
  args.reserve(args.size() + 2 * members.size());
  for (auto &m : members) {
    args.push_back(field(m.room, m.id));
    args.push_back((m.hidden ? "1" : "0") + m.type);
  }
  auto *call = new Call;
  call->entries = std::move(members);
  command(
      std::move(args),
      [](RedisCluster &self, redisReply *r, Call &c) {
        if (r->type == REDIS_REPLY_ERROR) {
          PC_LOG(Warning, kModule, "announcing the members failed in Redis: %s", r->str);
          return;
        }
        if (r->type != REDIS_REPLY_ARRAY) return;
        for (size_t i = 0; i < r->elements; i++) {
          redisReply *e = r->element[i];
          if (e->type != REDIS_REPLY_INTEGER || e->integer < 1 ||
              (std::size_t)e->integer > c.entries.size())
            continue;
          auto &m = c.entries[e->integer - 1];
          self.claims_lost_++;
          self.server_.rooms().claim_lost(m.room, m.id);
        }
        self.server_.apply_actions();
      },
      call);
  last_claim_refresh_us_ = last_republish_us_ = g_get_monotonic_time();
}

void RedisCluster::load_instance(const std::string &inst)
{
  auto *call = new Call;
  call->a = inst;
  command(
      {"EVAL", kLoadScript, "2", pfx_ + "instances", pfx_ + "members:" + inst, inst},
      [](RedisCluster &self, redisReply *r, Call &c) {
        if (r->type != REDIS_REPLY_ARRAY) return; // nil: not listed (see kLoadScript)
        std::vector<Rooms::RemoteEntry> entries;
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
          redisReply *f = r->element[i], *v = r->element[i + 1];
          if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || v->len < 2)
            continue;
          std::string_view fs(f->str, f->len);
          std::size_t colon = fs.find(':'), rl = 0;
          if (colon == std::string_view::npos || !parse_len(fs.substr(0, colon), &rl) ||
              rl > fs.size() - colon - 1)
            continue;
          Rooms::RemoteEntry e;
          e.room = fs.substr(colon + 1, rl);
          e.id = fs.substr(colon + 1 + rl);
          e.hidden = v->str[0] == '1';
          e.type.assign(v->str + 1, v->len - 1);
          entries.push_back(std::move(e));
        }
        self.server_.rooms().remote_sync(c.a, entries);
        self.server_.apply_actions();
      },
      call);
}

void RedisCluster::heartbeat()
{
  if (!online_) return;
  auto *beat = new Call;
  beat->sent_us = g_get_monotonic_time();
  command(
      {"EVAL", kBeatScript, "2", pfx_ + "alive:" + inst_, pfx_ + "instances", inst_,
       std::to_string(kPresenceTtlMs)},
      [](RedisCluster &self, redisReply *r, Call &c) {
        // Redis stalled for a while (every presence may have expired meanwhile): judge nobody
        // until the others' heartbeats are through again.
        gint64 now_us = g_get_monotonic_time();
        if (now_us - c.sent_us > G_USEC_PER_SEC) self.judge_after_us_ = now_us + kReconnectGraceUs;
        // 0: we are not in the set, so the others took us for dead (or Redis lost its data).
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 0 &&
            now_us - self.last_republish_us_ > G_USEC_PER_SEC) {
          PC_LOG(Warning, kModule,
                 "the cluster had dropped this daemon: announcing its members again");
          self.republish();
        }
      },
      beat);
  gint64 now = g_get_monotonic_time();
  if (now - last_claim_refresh_us_ >= kClaimRefreshUs) {
    last_claim_refresh_us_ = now;
    for (auto &m : server_.rooms().local_members())
      command({"EXPIRE", pfx_ + "id:" + field(m.room, m.id), std::to_string(kClaimTtlSeconds)},
              nullptr);
  }
  // Daemons reconnecting together may each publish their members before the other has
  // subscribed again: re-reading every hash for a few beats closes that gap.
  if (now < resync_until_us_) load_all();
  check_instances();
}

void RedisCluster::check_instances()
{
  if (g_get_monotonic_time() < judge_after_us_) return;
  std::set<std::string> all = known_;
  for (auto &i : server_.rooms().remote_instances()) all.insert(i);
  for (auto &inst : all) {
    // The script checks the presence and cleans up in one step: a daemon whose heartbeat lands
    // between a separate check and the cleanup is never taken for dead.
    auto *call = new Call;
    call->a = inst;
    command(
        {"EVAL", kReapScript, "3", pfx_ + "instances", pfx_ + "members:" + inst,
         pfx_ + "alive:" + inst, inst, pfx_ + "id:"},
        [](RedisCluster &self, redisReply *r, Call &c) {
          if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) return;
          // Redis just stalled: that daemon re-announces itself when its heartbeat lands.
          if (g_get_monotonic_time() < self.judge_after_us_) return;
          self.known_.erase(c.a);
          std::size_t before = self.server_.rooms().remote_clients();
          self.server_.rooms().remote_gone(c.a);
          self.server_.apply_actions();
          self.dead_found_++;
          PC_LOG(Warning, kModule,
                 "daemon %s is gone (its presence key expired or was removed): %zu client(s) left",
                 c.a.c_str(), before - self.server_.rooms().remote_clients());
        },
        call);
  }
}

void RedisCluster::eval_join(const std::string &room, const std::string &id,
                             const std::string &type, bool hidden, Handle client)
{
  std::string f = field(room, id);
  std::string ev = "J " + inst_ + " " + std::to_string(room.size()) + " " +
      std::to_string(id.size()) + (hidden ? " 1\n" : " 0\n") + room + id + type;
  auto *call = new Call;
  call->a = room;
  call->b = id;
  call->client = client;
  call->on_null = client != 0;
  command(
      {"EVAL", kJoinScript, "2", pfx_ + "id:" + f, pfx_ + "members:" + inst_, inst_, f,
       (hidden ? "1" : "0") + type, std::to_string(kClaimTtlSeconds), pfx_ + "members", ev},
      [](RedisCluster &self, redisReply *r, Call &c) {
        // No reply (Redis went away): the registration goes ahead locally and is announced
        // when Redis is back.
        bool lost = r && r->type == REDIS_REPLY_INTEGER && r->integer == 0;
        if (r && r->type == REDIS_REPLY_ERROR)
          PC_LOG(Warning, kModule, "join of %s failed in Redis: %s", c.b.c_str(), r->str);
        if (lost) self.claims_lost_++;
        Rooms &rooms = self.server_.rooms();
        if (c.client)
          rooms.claim_done(c.client, c.a, c.b, !lost, Clock::now());
        else if (lost)
          rooms.claim_lost(c.a, c.b);
        self.server_.apply_actions();
      },
      call);
}

void RedisCluster::eval_leave(const std::string &room, const std::string &id)
{
  std::string f = field(room, id);
  std::string ev = "L " + inst_ + " " + std::to_string(room.size()) + "\n" + room + id;
  command({"EVAL", kLeaveScript, "2", pfx_ + "id:" + f, pfx_ + "members:" + inst_, inst_, f,
           pfx_ + "members", ev},
          nullptr);
}

bool RedisCluster::claim(const std::string &room, const std::string &id, const std::string &type,
                         bool hidden, Handle client)
{
  // Offline: republish() announces it when Redis is back.
  if (!online_ || !cmd_) return false;
  eval_join(room, id, type, hidden, client);
  return true;
}

void RedisCluster::left(const std::string &room, const std::string &id)
{
  if (online_)
    eval_leave(room, id);
  else if (pending_leaves_.size() < 100000)
    pending_leaves_.emplace_back(room, id);
}

void RedisCluster::room_used(const std::string &room, bool used)
{
  if (!online_ || !sub_) return;
  std::string ch = ch_room_ + room;
  const char *argv[] = {used ? "SUBSCRIBE" : "UNSUBSCRIBE", ch.data()};
  size_t lens[] = {std::strlen(argv[0]), ch.size()};
  redisAsyncCommandArgv(sub_, Callbacks::sub, nullptr, 2, argv, lens);
}

/* The relay path. Relayed messages are batched per main-loop iteration: consecutive ones for the
 * same channel share one PUBLISH (under load, a whole iteration's worth for a daemon in one), so
 * Redis does one command for many messages. Order is kept: a batch only grows at its end, and
 * every other command flushes first. */
void RedisCluster::queue(const std::string &channel, const char *head, std::size_t head_len,
                         std::string_view a, std::string_view b, std::string_view text)
{
  if (!online_ || !cmd_) {
    unsent_++;
    return;
  }
  // A Redis that stops reading (stalled, not gone) must not grow our output without bound.
  if (sdslen(cmd_->c.obuf) + batch_bytes_ > kMaxUnsentBytes) {
    unsent_++;
    return;
  }
  published_++;
  constexpr std::size_t kMaxBatch = 256 * 1024;
  if (batch_.empty() || batch_.back().first != channel || batch_.back().second.size() > kMaxBatch)
    batch_.emplace_back(channel, std::string());
  std::string &out = batch_.back().second;
  out.append(head, head_len).append(a).append(b).append(text);
  batch_bytes_ += head_len + a.size() + b.size() + text.size();
}

void RedisCluster::flush_batches()
{
  if (batch_.empty()) return;
  std::vector<std::pair<std::string, std::string>> now;
  now.swap(batch_);
  batch_bytes_ = 0;
  for (auto &[chan, payload] : now) {
    if (!cmd_) break;
    const char *argv[] = {"PUBLISH", chan.data(), payload.data()};
    size_t lens[] = {7, chan.size(), payload.size()};
    if (redisAsyncCommandArgv(cmd_, nullptr, nullptr, 3, argv, lens) != REDIS_OK) unsent_++;
    batches_++;
  }
}

void RedisCluster::send(const std::string &instance, const std::string &room, const std::string &to,
                        const std::string &text)
{
  chan_buf_.assign(pfx_).append("inst:").append(instance);
  char head[96];
  int n = std::snprintf(head, sizeof head, "T %s %zu %zu %zu\n", inst_.c_str(), room.size(),
                        to.size(), text.size());
  queue(chan_buf_, head, n, room, to, text);
}

void RedisCluster::probe(const std::string &instance, const std::string &room,
                         const std::string &id, bool alive)
{
  chan_buf_.assign(pfx_).append("inst:").append(instance);
  char head[96];
  int n = std::snprintf(head, sizeof head, "%c %s %zu %zu\n", alive ? 'A' : 'P', inst_.c_str(),
                        room.size(), id.size());
  queue(chan_buf_, head, n, room, id, {});
}

void RedisCluster::broadcast(const std::string &room, const std::string &text)
{
  chan_buf_.assign(ch_room_).append(room);
  char head[64];
  int n = std::snprintf(head, sizeof head, "B %s %zu\n", inst_.c_str(), text.size());
  queue(chan_buf_, head, n, {}, {}, text);
}

void RedisCluster::on_sub(redisReply *r)
{
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
  redisReply *kind = r->element[0], *ch = r->element[1], *msg = r->element[2];
  if (kind->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING ||
      msg->type != REDIS_REPLY_STRING || std::string_view(kind->str, kind->len) != "message")
    return;
  received_++;
  std::string_view chan(ch->str, ch->len);
  std::vector<std::string_view> tok;
  std::string_view payload, rest(msg->str, msg->len);
  Rooms &rooms = server_.rooms();
  auto bad = [&](const char *why) {
    rooms.drop_remote(why);
    server_.apply_actions();
  };
  if (chan == ch_members_) {
    on_member_event(msg->str, msg->len);
    server_.apply_actions();
    return;
  }
  bool inbox = chan == ch_inbox_;
  if (!inbox && chan.substr(0, ch_room_.size()) != ch_room_) return;
  Time now = Clock::now();
  // One or more records; a malformed one ends the batch (nothing after it can be framed).
  while (!rest.empty()) {
    if (!split_header(rest.data(), rest.size(), &tok, &payload)) return bad("no header");
    std::size_t rl = 0, tl = 0, xl = 0;
    if (inbox && tok.size() == 4 && (tok[0] == "P" || tok[0] == "A")) {
      if (!valid_instance(tok[1]) || !parse_len(tok[2], &rl) || !parse_len(tok[3], &tl) ||
          rl + tl > payload.size())
        return bad("malformed probe");
      rooms.remote_probe(tok[1], payload.substr(0, rl), payload.substr(rl, tl), tok[0] == "A", now);
    } else if (inbox) {
      if (tok.size() != 5 || tok[0] != "T" || !valid_instance(tok[1]) || !parse_len(tok[2], &rl) ||
          !parse_len(tok[3], &tl) || !parse_len(tok[4], &xl) || rl + tl + xl > payload.size())
        return bad("malformed targeted message");
      rooms.remote_text(tok[1], payload.substr(0, rl), payload.substr(rl, tl),
                        payload.substr(rl + tl, xl), now);
    } else {
      if (tok.size() != 3 || tok[0] != "B" || !valid_instance(tok[1]) || !parse_len(tok[2], &xl) ||
          xl > payload.size())
        return bad("malformed broadcast");
      if (tok[1] == inst_) return; // our own batch
      rooms.remote_text(tok[1], chan.substr(ch_room_.size()), {}, payload.substr(0, xl), now);
    }
    rest = payload.substr(rl + tl + xl);
  }
  server_.apply_actions();
}

void RedisCluster::on_member_event(const char *p, std::size_t n)
{
  std::vector<std::string_view> tok;
  std::string_view payload;
  Rooms &rooms = server_.rooms();
  split_header(p, n, &tok, &payload);
  std::size_t rl = 0, il = 0;
  if (tok.size() < 2 || !valid_instance(tok[1])) {
    rooms.drop_remote("member event without a valid instance");
    return;
  }
  std::string inst(tok[1]);
  if (inst == inst_) return;
  if (tok[0] == "J" && tok.size() == 5 && parse_len(tok[2], &rl) && parse_len(tok[3], &il) &&
      rl + il <= payload.size() && (tok[4] == "0" || tok[4] == "1")) {
    if (rooms.remote_joined(inst, payload.substr(0, rl), payload.substr(rl, il),
                            payload.substr(rl + il), tok[4] == "1"))
      known_.insert(inst);
  } else if (tok[0] == "L" && tok.size() == 3 && parse_len(tok[2], &rl) && rl <= payload.size()) {
    rooms.remote_left(inst, payload.substr(0, rl), payload.substr(rl));
  } else if (tok[0] == "S" && tok.size() == 2) {
    known_.insert(inst);
    load_instance(inst);
  } else {
    rooms.drop_remote("malformed member event");
  }
}

void RedisCluster::stop()
{
  if (!online_) return;
  command({"DEL", pfx_ + "alive:" + inst_}, nullptr);
  command({"EVAL", kReapScript, "3", pfx_ + "instances", pfx_ + "members:" + inst_,
           pfx_ + "alive:" + inst_, inst_, pfx_ + "id:"},
          nullptr);
}

std::string RedisCluster::prometheus() const
{
  std::string out;
  auto metric = [&](const char *name, const char *type, const char *help, std::uint64_t v) {
    out += std::string("# HELP pointcast_signaling_") + name + " " + help +
        "\n# TYPE pointcast_signaling_" + name + " " + type + "\npointcast_signaling_" + name +
        " " + std::to_string(v) + "\n";
  };
  metric("cluster_redis_up", "gauge", "1 while this daemon is connected to Redis.", online_);
  metric("cluster_daemons", "gauge", "Daemons of the cluster this one knows of, itself included.",
         known_.size() + 1);
  metric("cluster_published_total", "counter", "Relayed messages published to other daemons.",
         published_);
  metric("cluster_publish_commands_total", "counter",
         "PUBLISH commands that carried them (consecutive messages share one).", batches_);
  metric("cluster_received_total", "counter", "Pub/sub messages received from Redis.", received_);
  metric("cluster_unsent_total", "counter", "Redis commands not sent: Redis was unreachable.",
         unsent_);
  metric("cluster_reconnects_total", "counter", "Attempts to reconnect to Redis.", reconnects_);
  metric("cluster_dead_daemons_total", "counter", "Daemons found dead (presence expired).",
         dead_found_);
  metric("cluster_claims_lost_total", "counter",
         "Registrations undone because another daemon held the id.", claims_lost_);
  return out;
}

} // namespace pointcast::signaling
