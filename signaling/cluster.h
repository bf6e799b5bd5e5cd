// SPDX-License-Identifier: LGPL-2.1-or-later
/* Daemons sharing rooms through Redis (--redis redis://host:port[/db]). Each daemon has a random
 * instance id. In Redis, under the prefix "pointcast:<db>:":
 *   alive:<inst>    presence, PX 3000, refreshed every second; gone = the daemon is dead
 *   instances       set of instance ids
 *   members:<inst>  hash: <len(room)>:<room><id> -> <0|1 hidden><client_type>
 *   id:<len>:<room><id>  the cluster-wide claim of a client id in a room (SET NX, EX 30,
 *                   refreshed every 10 s); a second daemon's claim fails: duplicate_client_id
 * Pub/sub channels (all payloads go through Rooms::remote_* checks on arrival):
 *   members         "J <inst> <len(room)> <len(id)> <hidden>\n<room><id><type>",
 *                   "L <inst> <len(room)>\n<room><id>", "S <inst>\n" (reload my members)
 *   inst:<inst>     targeted: "T <inst> <len(room)> <len(to)> <len(json)>\n<room><to><json>"...
 *                   a duplicate id's holder: "P <inst> <len(room)> <len(id)>\n<room><id>" (probe
 *                   your client id), "A ..." the same (it answered; see Rooms' probes)
 *   room:<room>     broadcast: "B <inst> <len(json)>\n<json>"...
 *                   (one or more records per PUBLISH: a main-loop iteration's relays are
 *                   batched per channel, in order)
 * Joins and leaves are Lua scripts (claim + hash + publish in one atomic step), so every daemon
 * sees them in the order Redis decided the claims. Redis down: local rooms keep working, the
 * daemon reconnects with backoff and then re-announces its members. */
#pragma once

#include "server.h"

#include <hiredis/async.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace pointcast::signaling {

struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
};
// redis://host[:port][/db]; false with *error when it is not one.
bool parse_redis_url(const std::string &url, RedisAddress *out, std::string *error);

class RedisCluster final : public ClusterLink {
public:
  RedisCluster(Server &server, RedisAddress addr);
  ~RedisCluster() override;
  RedisCluster(const RedisCluster &) = delete;
  RedisCluster &operator=(const RedisCluster &) = delete;

  void start();
  // Clean exit: the other daemons drop this one's members at once, not after the expiry.
  void stop();

  const std::string &instance() const override { return inst_; }
  bool claim(const std::string &room, const std::string &id, const std::string &type, bool hidden,
             Handle client) override;
  void left(const std::string &room, const std::string &id) override;
  void room_used(const std::string &room, bool used) override;
  void send(const std::string &instance, const std::string &room, const std::string &to,
            const std::string &text) override;
  void broadcast(const std::string &room, const std::string &text) override;
  void probe(const std::string &instance, const std::string &room, const std::string &id,
             bool alive) override;
  std::string prometheus() const override;

  struct Call; // a reply callback's context
  struct FlushSource;

private:
  void connect();
  void teardown(const char *why);
  void schedule_retry();
  void online();
  void heartbeat();
  void check_instances();
  void republish();
  void load_instance(const std::string &inst);
  void load_all(); // every other daemon's members, from the instance set
  void on_sub(redisReply *r);
  void queue(const std::string &channel, const char *head, std::size_t head_len, std::string_view a,
             std::string_view b, std::string_view text);
  void flush_batches();
  void on_member_event(const char *p, std::size_t n);
  void command(std::vector<std::string> args, void (*done)(RedisCluster &, redisReply *, Call &),
               Call *ctx = nullptr);
  void eval_join(const std::string &room, const std::string &id, const std::string &type,
                 bool hidden, Handle client);
  void eval_leave(const std::string &room, const std::string &id);
  static std::string field(const std::string &room, const std::string &id);

  Server &server_;
  RedisAddress addr_;
  std::string inst_;
  std::string pfx_; // "pointcast:<db>:"
  std::string ch_members_, ch_inbox_, ch_room_;
  std::string chan_buf_;                                   // reused by every relayed message
  std::vector<std::pair<std::string, std::string>> batch_; // channel, records: one PUBLISH each
  GSource *flusher_ = nullptr;
  std::size_t batch_bytes_ = 0;
  std::uint64_t batches_ = 0;
  redisAsyncContext *cmd_ = nullptr, *sub_ = nullptr;
  GSource *cmd_src_ = nullptr, *sub_src_ = nullptr;
  std::vector<GSource *> dead_sources_; // of contexts hiredis is freeing
  bool cmd_ready_ = false, sub_ready_ = false, online_ = false, stopping_ = false;
  gint64 resync_until_us_ = 0; // until then each heartbeat re-reads the others' members
  guint retry_timer_ = 0, beat_timer_ = 0, connect_timer_ = 0, teardown_idle_ = 0;
  unsigned backoff_ms_ = 100;
  bool outage_logged_ = false;
  gint64 judge_after_us_ = 0; // no death verdicts until then (just reconnected)
  gint64 last_claim_refresh_us_ = 0;
  gint64 last_republish_us_ = 0; // one republish for a burst of late "dropped" beats
  std::set<std::string> known_;  // other instances seen
  std::vector<std::pair<std::string, std::string>> pending_leaves_; // while offline
  std::uint64_t published_ = 0, received_ = 0, unsent_ = 0, reconnects_ = 0, dead_found_ = 0;
  std::uint64_t claims_lost_ = 0;

  friend struct Callbacks;
};

} // namespace pointcast::signaling
