// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rooms.h"

#include "log.h"
#include "sdp.h"

#include <algorithm>
#include <cstdio>

namespace pointcast::signaling {

namespace proto = pointcast::protocol;
namespace code = pointcast::protocol::code;

namespace {
const char *kModule = "rooms";

double seconds(Clock::duration d)
{
  return std::chrono::duration<double>(d).count();
}

std::string fmt_seconds(std::chrono::milliseconds ms)
{
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", ms.count() / 1000.0);
  return buf;
}
} // namespace

namespace {
bool valid_name(std::string_view s)
{
  return !s.empty() && s.size() <= proto::kMaxIdLength && proto::utf8_valid(s) &&
      s.find('\0') == std::string_view::npos;
}
// Bounds the view of the other daemons, whatever they announce.
constexpr std::size_t kMaxRemoteMembers = 1000000;
} // namespace

struct Rooms::Address {
  std::string ip;
  std::size_t connections = 0;
  std::size_t pending_offers = 0;
  bool saved = false; // the fields below hold a closed connection's state
  double tokens = 0;
  Time refilled;
  double strikes = 0;
  Time struck;
};

struct Rooms::Client {
  Handle handle = 0;
  std::string remote;
  Address *addr = nullptr;
  bool needs_token = false;
  Time connected;
  bool registered = false;
  bool claiming = false;  // registration waits for the cluster-wide claim of its id
  bool waiting = false;   // registration waits for the probe of the id's holder (probes_)
  std::string claim_room; // the room of a claiming or waiting registration
  bool closing = false;
  std::string id;
  std::string type;
  Room *room = nullptr;
  double tokens = 0;
  Time refilled;
  double strikes = 0;
  Time struck;
  Time rate_error_sent;
  bool rate_error_ever = false;
};

struct Rooms::Room {
  std::string name;
  std::vector<Client *> members; // registration order
  std::unordered_map<std::string, Client *> by_id;
};

struct Rooms::Bridge {
  enum class State { Waiting, Answered, Done };
  std::uint64_t id = 0;
  std::string peer_id;
  std::string room;
  Handle answerer = 0; // 0: the answerer is on another daemon
  std::string answerer_id;
  std::string answerer_instance; // set when answerer == 0
  bool announced = false;        // the virtual peer was announced to the cluster
  State state = State::Waiting;
  Time deadline; // Waiting: answer due; Answered: end of candidate grace
  bool end_of_candidates = false;
  std::string answer_sdp;
  std::vector<proto::IceCandidate> candidates;
  Address *addr = nullptr; // the HTTP client's, while the offer is pending
};

Rooms::Rooms(Limits limits) : limits_(limits) {}
Rooms::~Rooms() = default;

std::size_t Rooms::clients() const
{
  return clients_.size();
}
std::size_t Rooms::registered_clients() const
{
  return registered_;
}
std::size_t Rooms::rooms() const
{
  return rooms_.size();
}
std::size_t Rooms::pending_offers() const
{
  return std::count_if(bridges_.begin(), bridges_.end(),
                       [](const auto &kv) { return kv.second->state != Bridge::State::Done; });
}

std::uint32_t Rooms::push_text(std::string s)
{
  actions_.texts.push_back(std::move(s));
  return static_cast<std::uint32_t>(actions_.texts.size() - 1);
}

Rooms::Address &Rooms::address(const std::string &ip)
{
  auto &slot = addresses_[ip];
  if (!slot) {
    slot = std::make_unique<Address>();
    slot->ip = ip;
  }
  return *slot;
}

void Rooms::connect(Handle h, Time now, std::string_view remote, std::string_view ip,
                    bool authenticated)
{
  auto c = std::make_unique<Client>();
  c->handle = h;
  c->remote = remote;
  c->connected = now;
  c->refilled = c->struck = now;
  c->needs_token = !authenticated && !token_.empty();
  double cap = std::max(limits_.max_messages_per_second * limits_.burst_seconds, 10.0);
  c->tokens = cap;
  Address &a = address(std::string(ip));
  c->addr = &a;
  if (a.saved) {
    // A reconnect picks up where the last connection from this address left off.
    c->tokens =
        std::min(cap, a.tokens + seconds(now - a.refilled) * limits_.max_messages_per_second);
    c->strikes = std::max(0.0, a.strikes - seconds(now - a.struck));
  }
  a.connections++;
  Client &ref = *c;
  metrics_.connections_total++;
  bool full = limits_.max_clients && clients_.size() >= limits_.max_clients;
  bool addr_full =
      limits_.max_connections_per_address && a.connections > limits_.max_connections_per_address;
  clients_[h] = std::move(c);
  PC_LOG(Debug, kModule, "connection %llu from %s", (unsigned long long)h, ref.remote.c_str());
  if (full) {
    reply_error(ref, code::kServerFull,
                "the server holds its maximum of " + std::to_string(limits_.max_clients) +
                    " clients");
    close(ref, kCloseTryAgain, "server full");
  } else if (addr_full) {
    metrics_.address_limit_total++;
    PC_LOG(Warning, kModule, "connection %llu from %s refused: %zu connections from that address",
           (unsigned long long)h, ref.remote.c_str(), a.connections - 1);
    reply_error(ref, code::kServerFull,
                "this address holds its maximum of " +
                    std::to_string(limits_.max_connections_per_address) +
                    " connections (--max-connections-per-address)");
    close(ref, kCloseTryAgain, "too many connections from this address");
  }
}

void Rooms::offer_settled(Bridge &b)
{
  if (b.addr) {
    b.addr->pending_offers--;
    b.addr = nullptr;
  }
}

void Rooms::reply_error(Client &c, const char *code, std::string message)
{
  metrics_.errors_total++;
  PC_LOG(Info, kModule, "client %s: error %s: %s",
         c.registered ? c.id.c_str() : ("#" + std::to_string(c.handle)).c_str(), code,
         message.c_str());
  actions_.sends.push_back({c.handle, push_text(proto::error_json(code, message))});
}

void Rooms::strike(Client &c, Time now, const char *why)
{
  c.strikes = std::max(0.0, c.strikes - seconds(now - c.struck)) + 1;
  c.struck = now;
  if (limits_.max_strikes > 0 && c.strikes > limits_.max_strikes && !c.closing) {
    metrics_.abuse_disconnects_total++;
    PC_LOG(Warning, kModule,
           "client %s (%s): disconnected after too many rejected messages (last: %s)",
           c.registered ? c.id.c_str() : ("#" + std::to_string(c.handle)).c_str(), c.remote.c_str(),
           why);
    close(c, kClosePolicy, "too many rejected messages");
  }
}

void Rooms::close(Client &c, std::uint16_t code, std::string reason)
{
  if (c.closing) return;
  c.closing = true;
  leave_room(c);
  actions_.closes.push_back({c.handle, code, std::move(reason)});
}

void Rooms::binary(Handle h, std::size_t size, Time now)
{
  auto it = clients_.find(h);
  if (it == clients_.end() || it->second->closing) return;
  Client &c = *it->second;
  metrics_.messages_received_total++;
  if (!probed_.empty()) alive(h, now);
  reply_error(c, code::kBinary, "binary frames are not part of the protocol; send JSON text");
  strike(c, now, code::kBinary);
}

void Rooms::text(Handle h, std::string_view text, Time now)
{
  auto it = clients_.find(h);
  if (it == clients_.end() || it->second->closing) return;
  Client &c = *it->second;
  metrics_.messages_received_total++;
  now_ = now;
  if (!probed_.empty()) alive(h, now);

  if (limits_.max_messages_per_second > 0) {
    double cap = std::max(limits_.max_messages_per_second * limits_.burst_seconds, 10.0);
    c.tokens =
        std::min(cap, c.tokens + seconds(now - c.refilled) * limits_.max_messages_per_second);
    c.refilled = now;
    if (c.tokens < 1) {
      // One error a second at most: answering every message would amplify the flood.
      if (!c.rate_error_ever || now - c.rate_error_sent >= std::chrono::seconds(1)) {
        c.rate_error_ever = true;
        c.rate_error_sent = now;
        char buf[96];
        std::snprintf(buf, sizeof buf, "over %g messages per second; message dropped",
                      limits_.max_messages_per_second);
        reply_error(c, code::kRateLimited, buf);
      }
      strike(c, now, code::kRateLimited);
      return;
    }
    c.tokens -= 1;
  }
  if (text.size() > limits_.max_message_bytes) {
    reply_error(c, code::kTooLarge,
                "message of " + std::to_string(text.size()) + " bytes is over the limit of " +
                    std::to_string(limits_.max_message_bytes));
    strike(c, now, code::kTooLarge);
    return;
  }

  proto::ParseResult r = proto::parse(text);
  if (!r.ok()) {
    reply_error(c, r.error.code.c_str(), std::move(r.error.message));
    strike(c, now, "invalid message");
    return;
  }
  proto::Message &msg = *r.message;
  if (c.needs_token) {
    auto *reg = std::get_if<proto::Register>(&msg);
    if (!reg || !reg->token || !proto::secret_equal(*reg->token, token_)) {
      PC_LOG(Warning, kModule, "connection %llu from %s refused: %s", (unsigned long long)c.handle,
             c.remote.c_str(), reg && reg->token ? "wrong token" : "no token");
      reply_error(c, code::kUnauthorized,
                  "this daemon requires a token: send it as \"token\" in the register message "
                  "or as \"Authorization: Bearer ...\" on the WebSocket request");
      close(c, kClosePolicy, "token required");
      return;
    }
    c.needs_token = false;
  }
  if (auto *reg = std::get_if<proto::Register>(&msg)) {
    on_register(c, *reg, now);
    return;
  }
  std::optional<std::string> target;
  bool has_from = false;
  if (auto *s = std::get_if<proto::Sdp>(&msg)) {
    target = s->target_id;
    has_from = s->from_id.has_value();
  } else if (auto *cand = std::get_if<proto::Candidate>(&msg)) {
    target = cand->target_id;
    has_from = cand->from_id.has_value();
  } else {
    reply_error(c, code::kUnknownType,
                std::string("\"") + proto::type_name(msg) + "\" is sent by the server, not to it");
    strike(c, now, "server message type");
    return;
  }
  if (c.waiting) {
    // Not queued: the outcome is not known yet, and a refused newcomer's messages must not
    // reach the room. Not a strike either: a client may well send right behind its register.
    reply_error(
        c, code::kNotRegistered,
        "registration as \"" + c.id +
            "\" waits for the connection holding that id to answer a ping; message dropped");
    return;
  }
  if (!c.registered) {
    reply_error(c, code::kNotRegistered, "send {\"type\":\"register\",...} first");
    strike(c, now, code::kNotRegistered);
    return;
  }
  relay(c, text, msg, target, has_from, now);
}

void Rooms::on_register(Client &c, proto::Register &reg, Time now)
{
  if (c.registered || c.claiming || c.waiting) {
    reply_error(c, code::kAlreadyRegistered,
                c.claiming || c.waiting
                    ? "a registration as \"" + c.id + "\" is in progress"
                    : "already registered as \"" + c.id + "\" in room \"" + c.room->name + "\"");
    strike(c, now, code::kAlreadyRegistered);
    return;
  }
  auto rit = rooms_.find(reg.room_id);
  Room *room = rit == rooms_.end() ? nullptr : rit->second.get();
  std::string key = reg.room_id + '\n' + reg.client_id;
  if (probes_.count(key)) {
    // Racing newcomers: the first one waits for the probe, the others are refused.
    reply_error(c, code::kDuplicateId,
                "client_id \"" + reg.client_id + "\" is already in room \"" + reg.room_id +
                    "\" (its connection is being checked for another registration)");
    strike(c, now, code::kDuplicateId);
    return;
  }
  if (room && room->by_id.count(reg.client_id)) {
    if (limits_.duplicate_probe.count() > 0) {
      /* The holder may be a connection that vanished without a close (a restarted pod): ping
       * it. It keeps the id if it is heard from in time (a live holder cannot be taken over);
       * else it is dropped and this registration goes ahead (end_probe). */
      Client &holder = *room->by_id.at(reg.client_id);
      Probe p;
      p.holder = holder.handle;
      p.deadline = now + limits_.duplicate_probe;
      actions_.probes.push_back(holder.handle);
      start_probe(c, reg, std::move(p), holder.remote);
      return;
    }
    reply_error(c, code::kDuplicateId,
                "client_id \"" + reg.client_id + "\" is already in room \"" + reg.room_id + "\"");
    strike(c, now, code::kDuplicateId);
    return;
  }
  const std::map<std::string, RemoteMember> *remote = nullptr;
  if (cluster_) {
    if (auto it = remote_.find(reg.room_id); it != remote_.end()) remote = &it->second;
    if (remote && remote->count(reg.client_id)) {
      const RemoteMember &m = remote->at(reg.client_id);
      if (limits_.duplicate_probe.count() > 0 && !m.hidden) {
        // The holder's daemon probes it; the answer (alive, or the member's leave) comes back
        // through Redis: a second allowance for those trips.
        Probe p;
        p.holder_instance = m.instance;
        p.deadline = now + 2 * limits_.duplicate_probe;
        cluster_->probe(m.instance, reg.room_id, reg.client_id, false);
        start_probe(c, reg, std::move(p), "daemon " + m.instance);
        return;
      }
      reply_error(c, code::kDuplicateId,
                  "client_id \"" + reg.client_id + "\" is already in room \"" + reg.room_id +
                      "\" (on another daemon of the cluster)");
      strike(c, now, code::kDuplicateId);
      return;
    }
  }
  if (auto b = bridge_by_peer.find(reg.client_id); b != bridge_by_peer.end()) {
    if (bridges_.at(b->second)->room == reg.room_id) {
      reply_error(c, code::kDuplicateId,
                  "client_id \"" + reg.client_id + "\" is an HTTP offer's peer in room \"" +
                      reg.room_id + "\"");
      strike(c, now, code::kDuplicateId);
      return;
    }
  }
  std::size_t in_room = (room ? room->members.size() : 0);
  if (remote)
    for (auto &[id, m] : *remote) in_room += !m.hidden;
  if (limits_.max_peers_per_room && in_room >= limits_.max_peers_per_room) {
    reply_error(c, code::kRoomFull,
                "room \"" + reg.room_id + "\" holds its maximum of " +
                    std::to_string(limits_.max_peers_per_room) + " peers");
    strike(c, now, code::kRoomFull);
    return;
  }
  if (cluster_) {
    if (claiming_.count(key)) {
      reply_error(c, code::kDuplicateId,
                  "client_id \"" + reg.client_id + "\" is being registered in room \"" +
                      reg.room_id + "\" by another connection");
      strike(c, now, code::kDuplicateId);
      return;
    }
    if (cluster_->claim(reg.room_id, reg.client_id, reg.client_type, false, c.handle)) {
      c.claiming = true;
      c.claim_room = std::move(reg.room_id);
      c.id = std::move(reg.client_id);
      c.type = std::move(reg.client_type);
      claiming_.emplace(std::move(key), c.handle);
      return;
    }
  }
  complete_register(c, std::move(reg.room_id), std::move(reg.client_id),
                    std::move(reg.client_type));
}

void Rooms::start_probe(Client &c, proto::Register &reg, Probe p, const std::string &holder)
{
  metrics_.duplicate_probes_total++;
  std::string key = reg.room_id + '\n' + reg.client_id;
  p.newcomer = c.handle;
  p.room = reg.room_id;
  p.id = reg.client_id;
  if (p.holder) probed_[p.holder] = key;
  probes_[key] = std::move(p);
  c.waiting = true;
  c.claim_room = std::move(reg.room_id);
  c.id = std::move(reg.client_id);
  c.type = std::move(reg.client_type);
  PC_LOG(Info, kModule,
         "%s registers again in room %s from %s: probing the id's holder (%s), which keeps it if "
         "heard from within %s s",
         c.id.c_str(), c.claim_room.c_str(), c.remote.c_str(), holder.c_str(),
         fmt_seconds(limits_.duplicate_probe).c_str());
}

void Rooms::alive(Handle h, Time now)
{
  auto it = probed_.find(h);
  if (it == probed_.end()) return;
  std::string key = it->second;
  end_probe(key, ProbeEnd::Alive, now);
}

bool Rooms::remote_probe(std::string_view inst, std::string_view room_name, std::string_view id,
                         bool alive, Time now)
{
  if (!cluster_) return false;
  if (!valid_name(inst) || !valid_name(room_name) || !valid_name(id))
    return drop_remote("probe with an invalid instance, room or id");
  if (inst == cluster_->instance()) return true;
  std::string key = std::string(room_name) + '\n' + std::string(id);
  auto pit = probes_.find(key);
  if (alive) {
    // Late (after our deadline) or never asked: nothing waits for it.
    if (pit == probes_.end() || pit->second.holder || pit->second.holder_instance != inst)
      return false;
    end_probe(key, ProbeEnd::Alive, now);
    return true;
  }
  if (!limits_.duplicate_probe.count()) return false; // the asker's deadline refuses it
  auto rit = rooms_.find(key.substr(0, room_name.size()));
  if (rit == rooms_.end()) return false; // its view is behind: our leave is on its way
  auto hit = rit->second->by_id.find(std::string(id));
  if (hit == rit->second->by_id.end()) return false;
  // Already probed for someone else: one newcomer per id, the asker's deadline refuses it.
  if (pit != probes_.end()) return true;
  if (probes_.size() >= kMaxRemoteMembers) return drop_remote("too many probes");
  Client &holder = *hit->second;
  Probe p;
  p.holder = holder.handle;
  p.asker = std::string(inst);
  p.room = std::string(room_name);
  p.id = std::string(id);
  p.deadline = now + limits_.duplicate_probe;
  probed_[holder.handle] = key;
  probes_[key] = std::move(p);
  actions_.probes.push_back(holder.handle);
  metrics_.duplicate_probes_total++;
  PC_LOG(Info, kModule, "%s registers again in room %s on daemon %.*s: probing its holder (%s)",
         holder.id.c_str(), holder.room->name.c_str(), (int)inst.size(), inst.data(),
         holder.remote.c_str());
  return true;
}

void Rooms::end_probe(std::string key, ProbeEnd how, Time now)
{
  auto it = probes_.find(key);
  if (it == probes_.end()) return;
  Probe p = std::move(it->second);
  probes_.erase(it);
  if (auto h = probed_.find(p.holder); h != probed_.end() && h->second == key) probed_.erase(h);
  if (how == ProbeEnd::Alive && !p.asker.empty() && cluster_)
    cluster_->probe(p.asker, p.room, p.id, true);
  auto nit = clients_.find(p.newcomer);
  Client *n = p.newcomer && nit != clients_.end() ? nit->second.get() : nullptr;
  if (how == ProbeEnd::Silent && p.holder) {
    auto hit = clients_.find(p.holder);
    Client *h = hit == clients_.end() ? nullptr : hit->second.get();
    if (h && h->registered && h->id == p.id && h->room->name == p.room) {
      metrics_.duplicate_replaced_total++;
      PC_LOG(Warning, kModule,
             "%s (%s) in room %s: no answer to a ping within %s s; dropped, the id goes to the "
             "new registration from %s",
             h->id.c_str(), h->remote.c_str(), p.room.c_str(),
             fmt_seconds(limits_.duplicate_probe).c_str(),
             n ? n->remote.c_str() : ("daemon " + p.asker).c_str());
      // A remote asker registers once our leave reaches it (the claim is freed first).
      close(*h, kCloseReplaced, "silent; its client_id was registered again");
    }
  }
  if (!n || !n->waiting || n->closing) return;
  n->waiting = false;
  proto::Register reg;
  reg.room_id = std::move(n->claim_room);
  reg.client_id = std::move(n->id);
  reg.client_type = std::move(n->type);
  n->id.clear();
  if (how == ProbeEnd::Alive || how == ProbeEnd::Unanswered) {
    reply_error(*n, code::kDuplicateId,
                "client_id \"" + reg.client_id + "\" is already in room \"" + reg.room_id +
                    (how == ProbeEnd::Alive
                         ? "\" (its connection answered)"
                         : "\" (on another daemon of the cluster, which did not let it go)"));
    strike(*n, now, code::kDuplicateId);
    return;
  }
  on_register(*n, reg, now); // the id is free now: the usual checks (room full, cluster claim)
}

void Rooms::claim_done(Handle h, std::string_view room_name, std::string_view id, bool ok, Time now)
{
  if (!h) return; // a virtual peer's
  std::string key = std::string(room_name) + '\n' + std::string(id);
  if (auto it = claiming_.find(key); it != claiming_.end() && it->second == h) claiming_.erase(it);
  auto it = clients_.find(h);
  Client *c = it == clients_.end() ? nullptr : it->second.get();
  if (!c || !c->claiming || c->closing || c->id != id || c->claim_room != room_name) {
    // Gone while the claim was under way: give the id back.
    if (ok && cluster_) cluster_->left(std::string(room_name), std::string(id));
    return;
  }
  c->claiming = false;
  if (!ok) {
    reply_error(*c, code::kDuplicateId,
                "client_id \"" + c->id + "\" is already in room \"" + c->claim_room +
                    "\" (on another daemon of the cluster)");
    strike(*c, now, code::kDuplicateId);
    return;
  }
  complete_register(*c, std::move(c->claim_room), std::string(id), c->type);
}

void Rooms::complete_register(Client &c, std::string room_id, std::string client_id,
                              std::string client_type)
{
  proto::Register reg;
  reg.room_id = std::move(room_id);
  reg.client_id = std::move(client_id);
  reg.client_type = std::move(client_type);
  auto rit = rooms_.find(reg.room_id);
  Room *room = rit == rooms_.end() ? nullptr : rit->second.get();
  const std::map<std::string, RemoteMember> *remote = nullptr;
  if (cluster_)
    if (auto it = remote_.find(reg.room_id); it != remote_.end()) remote = &it->second;
  std::size_t in_room = (room ? room->members.size() : 0);
  if (remote)
    for (auto &[id, m] : *remote) in_room += !m.hidden;
  if (!room) {
    auto r = std::make_unique<Room>();
    r->name = reg.room_id;
    room = r.get();
    rooms_.emplace(reg.room_id, std::move(r));
    if (cluster_) cluster_->room_used(room->name, true);
  }
  proto::Registered reply{reg.client_id, reg.room_id, {}};
  reply.peers.reserve(in_room);
  for (Client *m : room->members) reply.peers.push_back({m->id, m->type});
  if (remote)
    for (auto &[id, m] : *remote)
      if (!m.hidden && id != reg.client_id) reply.peers.push_back({id, m.type});

  c.registered = true;
  c.id = std::move(reg.client_id);
  c.type = std::move(reg.client_type);
  c.room = room;
  room->members.push_back(&c);
  room->by_id.emplace(c.id, &c);
  registered_++;
  metrics_.registrations_total++;
  PC_LOG(Info, kModule, "%s (%s) registered in room %s from %s, %zu peer(s) there", c.id.c_str(),
         c.type.c_str(), room->name.c_str(), c.remote.c_str(), reply.peers.size());

  actions_.sends.push_back({c.handle, push_text(proto::serialize(reply))});
  if (room->members.size() > 1) {
    std::uint32_t t = push_text(proto::serialize(proto::PeerJoined{c.id, c.type}));
    for (Client *m : room->members)
      if (m != &c) actions_.sends.push_back({m->handle, t});
  }
}

void Rooms::relay(Client &c, std::string_view raw, const proto::Message &msg,
                  const std::optional<std::string> &target, bool has_from, Time now)
{
  auto make_text = [&]() {
    if (!has_from) return proto::append_from_id(raw, c.id);
    // The sender put its own from_id in: the server's word replaces it.
    proto::Message copy = msg;
    if (auto *s = std::get_if<proto::Sdp>(&copy))
      s->from_id = c.id;
    else if (auto *k = std::get_if<proto::Candidate>(&copy))
      k->from_id = c.id;
    return proto::serialize(copy);
  };
  Room &room = *c.room;
  if (!target) {
    std::size_t n = room.members.size() - 1;
    std::size_t far = 0;
    if (cluster_)
      if (auto it = remote_.find(room.name); it != remote_.end())
        for (auto &[id, m] : it->second) far += !m.hidden;
    if (n + far == 0) return;
    std::uint32_t t = push_text(make_text());
    for (Client *m : room.members)
      if (m != &c) actions_.sends.push_back({m->handle, t});
    if (far) cluster_->broadcast(room.name, actions_.texts[t]);
    n += far;
    metrics_.messages_relayed_total += n;
    PC_LOG(Debug, kModule, "%s from %s broadcast to %zu peer(s) in room %s", proto::type_name(msg),
           c.id.c_str(), n, room.name.c_str());
    return;
  }
  if (*target == c.id) {
    reply_error(c, code::kUnknownTarget, "target_id is the sender itself");
    strike(c, now, code::kUnknownTarget);
    return;
  }
  if (auto it = room.by_id.find(*target); it != room.by_id.end()) {
    actions_.sends.push_back({it->second->handle, push_text(make_text())});
    metrics_.messages_relayed_total++;
    PC_LOG(Debug, kModule, "%s %s -> %s in room %s", proto::type_name(msg), c.id.c_str(),
           target->c_str(), room.name.c_str());
    return;
  }
  if (auto b = bridge_by_peer.find(*target); b != bridge_by_peer.end()) {
    Bridge &bridge = *bridges_.at(b->second);
    if (bridge.room == room.name && bridge.answerer == c.handle) {
      to_bridge(&c, bridge, msg, now);
      return;
    }
  }
  if (cluster_) {
    if (auto it = remote_.find(room.name); it != remote_.end()) {
      if (auto m = it->second.find(*target); m != it->second.end()) {
        cluster_->send(m->second.instance, room.name, *target, make_text());
        metrics_.messages_relayed_total++;
        return;
      }
    }
  }
  reply_error(c, code::kUnknownTarget, "no peer \"" + *target + "\" in room \"" + room.name + "\"");
  strike(c, now, code::kUnknownTarget);
}

void Rooms::to_bridge(Client *c, Bridge &b, const proto::Message &msg, Time now)
{
  metrics_.messages_relayed_total++;
  if (b.state == Bridge::State::Done)
    return; // late candidates after the HTTP answer went out: nothing left to do with them
  if (auto *s = std::get_if<proto::Sdp>(&msg)) {
    if (s->sdp.type != "answer") {
      if (c) {
        reply_error(*c, code::kBadField,
                    "\"" + b.peer_id + "\" is an HTTP offer; it takes an answer only");
        strike(*c, now, code::kBadField);
      }
      return;
    }
    if (b.state == Bridge::State::Answered) return; // a repeated answer changes nothing
    b.answer_sdp = s->sdp.sdp;
    PC_LOG(Info, kModule, "HTTP offer %s answered by %s", b.peer_id.c_str(), b.answerer_id.c_str());
    bool complete = b.end_of_candidates || (s->trickle && !*s->trickle) ||
        b.answer_sdp.find("a=end-of-candidates") != std::string::npos;
    if (complete) {
      finish_bridge(b, 200, {});
    } else {
      b.state = Bridge::State::Answered;
      b.deadline = now + limits_.candidate_grace;
    }
    return;
  }
  const auto &cand = std::get<proto::Candidate>(msg).candidate;
  if (cand.candidate.empty()) {
    b.end_of_candidates = true;
    if (b.state == Bridge::State::Answered) finish_bridge(b, 200, {});
    return;
  }
  // Merged into the HTTP answer: bounded in count and size (a real candidate line is ~100-200
  // bytes), so a pending offer holds at most 256 KiB of them, not 256 messages of 64 KiB.
  constexpr std::size_t kMaxCandidateBytes = 1024;
  if (cand.candidate.size() > kMaxCandidateBytes) {
    PC_LOG(Warning, kModule, "candidate of %zu bytes from %s for %s dropped (limit %zu)",
           cand.candidate.size(), c ? c->id.c_str() : "another daemon", b.peer_id.c_str(),
           kMaxCandidateBytes);
    return;
  }
  if (b.candidates.size() < 256) b.candidates.push_back(cand);
}

void Rooms::finish_bridge(Bridge &b, int status, std::string reason)
{
  offer_settled(b);
  OfferResult res;
  res.offer_id = b.id;
  res.status = status;
  if (status == 200) {
    res.answer_sdp = merge_candidates(b.answer_sdp, b.candidates);
    metrics_.http_offers_answered_total++;
    b.state = Bridge::State::Done;
    b.candidates.clear();
    b.answer_sdp.clear();
    actions_.offers.push_back(std::move(res));
    return;
  }
  metrics_.http_offers_failed_total++;
  PC_LOG(Warning, kModule, "HTTP offer %s failed: %s", b.peer_id.c_str(), reason.c_str());
  res.reason = std::move(reason);
  actions_.offers.push_back(std::move(res));
  // The answerer may have started a session for the virtual peer: tell it the peer is gone.
  tell_answerer_left(b);
  erase_bridge(b);
}

void Rooms::tell_answerer_left(Bridge &b)
{
  if (!b.answerer) {
    if (cluster_)
      cluster_->send(b.answerer_instance, b.room, b.answerer_id,
                     proto::serialize(proto::PeerLeft{b.peer_id}));
    return;
  }
  if (auto it = clients_.find(b.answerer); it != clients_.end() && !it->second->closing)
    actions_.sends.push_back({b.answerer, push_text(proto::serialize(proto::PeerLeft{b.peer_id}))});
}

void Rooms::erase_bridge(Bridge &b)
{
  if (b.announced && cluster_) cluster_->left(b.room, b.peer_id);
  bridge_by_peer.erase(b.peer_id);
  bridges_.erase(b.id); // b is gone
}

void Rooms::leave_room(Client &c)
{
  if (!c.registered) return;
  Room *room = c.room;
  c.registered = false;
  c.room = nullptr;
  registered_--;
  room->by_id.erase(c.id);
  room->members.erase(std::find(room->members.begin(), room->members.end(), &c));
  PC_LOG(Info, kModule, "%s left room %s, %zu peer(s) remain", c.id.c_str(), room->name.c_str(),
         room->members.size());
  if (cluster_) cluster_->left(room->name, c.id);
  if (!room->members.empty()) {
    std::uint32_t t = push_text(proto::serialize(proto::PeerLeft{c.id}));
    for (Client *m : room->members) actions_.sends.push_back({m->handle, t});
  }
  // Offers this client was answering cannot complete any more.
  std::vector<Bridge *> mine;
  for (auto &[id, b] : bridges_)
    if (b->answerer == c.handle) mine.push_back(b.get());
  for (Bridge *b : mine) {
    if (b->state == Bridge::State::Done) {
      erase_bridge(*b);
    } else {
      finish_bridge(*b, 503, "answering peer \"" + c.id + "\" left before answering");
    }
  }
  if (room->members.empty()) {
    if (cluster_) cluster_->room_used(room->name, false);
    rooms_.erase(room->name);
  }
}

void Rooms::disconnect(Handle h, Time now)
{
  auto it = clients_.find(h);
  if (it == clients_.end()) return;
  PC_LOG(Debug, kModule, "connection %llu closed", (unsigned long long)h);
  Client &c = *it->second;
  leave_room(c);
  if (c.waiting) { // a newcomer gave up: the holder keeps its id
    std::string key = c.claim_room + '\n' + c.id;
    if (auto p = probes_.find(key); p != probes_.end() && p->second.newcomer == h) {
      if (auto q = probed_.find(p->second.holder); q != probed_.end() && q->second == key)
        probed_.erase(q);
      probes_.erase(p);
    }
  }
  std::string probed;
  if (auto p = probed_.find(h); p != probed_.end()) probed = p->second;
  if (Address *a = c.addr) {
    a->connections--;
    a->saved = true;
    a->tokens = c.tokens;
    a->refilled = c.refilled;
    a->strikes = c.strikes;
    a->struck = c.struck;
  }
  clients_.erase(it);
  // A holder being probed is gone: the waiting newcomer gets its id now.
  if (!probed.empty()) end_probe(probed, ProbeEnd::Gone, now);
}

void Rooms::tick(Time now)
{
  // Address entries with nothing open, whose saved bucket has refilled and strikes decayed.
  double cap = std::max(limits_.max_messages_per_second * limits_.burst_seconds, 10.0);
  double refill = limits_.max_messages_per_second > 0 ? cap / limits_.max_messages_per_second : 0;
  for (auto it = addresses_.begin(); it != addresses_.end();) {
    Address &a = *it->second;
    bool recovered =
        !a.saved || (seconds(now - a.refilled) >= refill && seconds(now - a.struck) >= a.strikes);
    if (a.connections == 0 && a.pending_offers == 0 && recovered)
      it = addresses_.erase(it);
    else
      ++it;
  }
  now_ = now;
  std::vector<std::pair<std::string, bool>> probes_due;
  for (auto &[key, p] : probes_)
    if (now >= p.deadline) probes_due.emplace_back(key, p.holder != 0);
  for (auto &[key, local] : probes_due)
    end_probe(key, local ? ProbeEnd::Silent : ProbeEnd::Unanswered, now);
  std::vector<Client *> idle;
  for (auto &[h, c] : clients_)
    if (!c->registered && !c->closing && now - c->connected >= limits_.register_timeout)
      idle.push_back(c.get());
  for (Client *c : idle) {
    PC_LOG(Info, kModule, "connection %llu from %s closed: not registered within %s s",
           (unsigned long long)c->handle, c->remote.c_str(),
           fmt_seconds(limits_.register_timeout).c_str());
    reply_error(*c, code::kNotRegistered,
                "not registered within " + fmt_seconds(limits_.register_timeout) + " s");
    close(*c, kCloseIdle, "not registered in time");
  }
  std::vector<Bridge *> due;
  for (auto &[id, b] : bridges_)
    if (b->state != Bridge::State::Done && now >= b->deadline) due.push_back(b.get());
  for (Bridge *b : due) {
    if (b->state == Bridge::State::Answered)
      finish_bridge(*b, 200, {});
    else
      finish_bridge(*b, 503,
                    "no answer from \"" + b->answerer_id + "\" within " +
                        fmt_seconds(limits_.offer_timeout) + " s");
  }
}

OfferStart Rooms::begin_offer(std::string_view room_name, std::string_view sdp,
                              std::string_view target, Time now, std::string_view ip)
{
  OfferStart res;
  metrics_.http_offers_total++;
  auto fail = [&](int status, std::string reason) {
    metrics_.http_offers_failed_total++;
    PC_LOG(Warning, kModule, "HTTP offer to room %.*s refused: %s", (int)room_name.size(),
           room_name.data(), reason.c_str());
    res.status = status;
    res.reason = std::move(reason);
    return res;
  };
  Address &addr = address(std::string(ip));
  // Each pending offer holds an HTTP request open: bounded overall and per address.
  if (limits_.max_pending_offers && pending_offers() >= limits_.max_pending_offers)
    return fail(503,
                "the daemon holds its maximum of " + std::to_string(limits_.max_pending_offers) +
                    " pending offers (--max-pending-offers); try again shortly");
  if (limits_.max_pending_offers_per_address &&
      addr.pending_offers >= limits_.max_pending_offers_per_address)
    return fail(429,
                "this address has " + std::to_string(addr.pending_offers) +
                    " offers pending (--max-pending-offers-per-address); wait for their answers");
  std::string rname(room_name);
  auto rit = rooms_.find(rname);
  Room *room = rit == rooms_.end() ? nullptr : rit->second.get();
  // Other daemons' members can answer too; the local ones are asked first in each tier.
  const std::map<std::string, RemoteMember> *remote = nullptr;
  if (cluster_)
    if (auto it = remote_.find(rname); it != remote_.end() && !it->second.empty())
      remote = &it->second;
  if (!room && !remote) return fail(503, "no peer is registered in room \"" + rname + "\"");
  Client *answerer = nullptr;
  const std::pair<const std::string, RemoteMember> *far = nullptr;
  if (!target.empty()) {
    std::string t(target);
    if (room)
      if (auto it = room->by_id.find(t); it != room->by_id.end()) answerer = it->second;
    if (!answerer && remote)
      if (auto it = remote->find(t); it != remote->end() && !it->second.hidden) far = &*it;
    if (!answerer && !far) return fail(404, "no peer \"" + t + "\" in room \"" + rname + "\"");
  }
  auto pick = [&](auto pred) {
    if (answerer || far) return;
    if (room)
      for (Client *m : room->members)
        if (!answerer && pred(m->type)) answerer = m;
    if (!answerer && remote)
      for (auto &kv : *remote)
        if (!far && !kv.second.hidden && pred(kv.second.type)) far = &kv;
  };
  pick([](const std::string &t) { return t == "answerer" || t == "receiver"; });
  pick([](const std::string &t) { return t != "browser"; });
  if (!answerer && !far)
    return fail(503,
                "no answering peer in room \"" + rname +
                    "\" (only browsers are registered; an answerer registers with a "
                    "client_type other than \"browser\")");

  auto b = std::make_unique<Bridge>();
  b->id = next_offer_++;
  b->peer_id = "http-" + std::to_string(b->id);
  // In a cluster every daemon counts its own offers: the instance keeps the names apart.
  if (cluster_) b->peer_id += "-" + cluster_->instance();
  auto taken = [&](const std::string &id) {
    return (room && room->by_id.count(id)) || (remote && remote->count(id));
  };
  while (taken(b->peer_id)) b->peer_id += "x";
  b->room = rname;
  if (answerer) {
    b->answerer = answerer->handle;
    b->answerer_id = answerer->id;
  } else {
    b->answerer_id = far->first;
    b->answerer_instance = far->second.instance;
  }
  b->deadline = now + limits_.offer_timeout;
  b->addr = &addr;
  addr.pending_offers++;
  proto::Sdp offer;
  offer.from_id = b->peer_id;
  offer.sdp = {"offer", std::string(sdp)};
  offer.trickle = false;
  if (answerer) {
    actions_.sends.push_back({answerer->handle, push_text(proto::serialize(offer))});
  } else {
    // The answerer's daemon must know the virtual peer to route the answer back here.
    b->announced = true;
    cluster_->claim(rname, b->peer_id, "http", true, 0);
    cluster_->send(b->answerer_instance, rname, b->answerer_id, proto::serialize(offer));
  }
  metrics_.messages_relayed_total++;
  PC_LOG(Info, kModule, "HTTP offer %s sent to %s in room %s%s", b->peer_id.c_str(),
         b->answerer_id.c_str(), rname.c_str(), answerer ? "" : " (on another daemon)");
  res.offer_id = b->id;
  res.peer_id = b->peer_id;
  res.answerer = b->answerer_id;
  bridge_by_peer.emplace(b->peer_id, b->id);
  bridges_.emplace(b->id, std::move(b));

  // Finished bridges are kept for late candidates and WHIP DELETE; bound how many.
  constexpr std::size_t kKeepDone = 1024;
  std::size_t done = bridges_.size() - pending_offers();
  for (auto it = bridges_.begin(); done > kKeepDone && it != bridges_.end();) {
    if (it->second->state == Bridge::State::Done) {
      Bridge &old = *it->second;
      ++it;
      erase_bridge(old);
      done--;
    } else {
      ++it;
    }
  }
  return res;
}

void Rooms::end_offer(std::uint64_t offer_id)
{
  auto it = bridges_.find(offer_id);
  if (it == bridges_.end() || it->second->state == Bridge::State::Done) return;
  Bridge &b = *it->second;
  PC_LOG(Info, kModule, "HTTP offer %s abandoned by the HTTP client", b.peer_id.c_str());
  offer_settled(b);
  metrics_.http_offers_failed_total++;
  tell_answerer_left(b);
  erase_bridge(b);
}

bool Rooms::end_session(std::string_view peer_id)
{
  auto it = bridge_by_peer.find(std::string(peer_id));
  if (it == bridge_by_peer.end()) return false;
  Bridge &b = *bridges_.at(it->second);
  if (b.state != Bridge::State::Done) return false;
  PC_LOG(Info, kModule, "HTTP session %s ended (DELETE)", b.peer_id.c_str());
  tell_answerer_left(b);
  erase_bridge(b);
  return true;
}

// ---- cluster: what the other daemons tell this one (untrusted: each input is checked) ----

bool Rooms::drop_remote(const char *why)
{
  cluster_dropped_++;
  Time now = Clock::now();
  // A flood of bad input must not become a flood of log lines.
  if (now - last_drop_log_ >= std::chrono::seconds(1)) {
    last_drop_log_ = now;
    PC_LOG(Warning, kModule, "dropped a message from the cluster: %s (%llu dropped so far)", why,
           (unsigned long long)cluster_dropped_);
  }
  return false;
}

bool Rooms::remote_joined(std::string_view inst, std::string_view room_name, std::string_view id,
                          std::string_view type, bool hidden)
{
  if (!cluster_) return false;
  if (!valid_name(inst) || !valid_name(room_name) || !valid_name(id) || !valid_name(type))
    return drop_remote("join with an invalid instance, room, id or type");
  if (inst == cluster_->instance()) return true; // our own, echoed back
  std::string rname(room_name), cid(id);
  auto lit = rooms_.find(rname);
  Room *room = lit == rooms_.end() ? nullptr : lit->second.get();
  if (room && room->by_id.count(cid))
    return drop_remote("join of an id a local client holds in that room");
  auto &members = remote_[rname];
  if (auto it = members.find(cid); it != members.end()) {
    if (it->second.instance != inst) return drop_remote("join of an id another daemon holds");
    return true; // already known (a re-announcement)
  }
  if (remote_total_ >= kMaxRemoteMembers) return drop_remote("too many remote members");
  if (!hidden && limits_.max_peers_per_room) {
    std::size_t n = room ? room->members.size() : 0;
    for (auto &[k, m] : members) n += !m.hidden;
    if (n >= limits_.max_peers_per_room) {
      if (members.empty()) remote_.erase(rname);
      return drop_remote("join into a full room");
    }
  }
  members.emplace(cid, RemoteMember{std::string(inst), std::string(type), hidden});
  remote_total_++;
  if (!hidden) remote_visible_++;
  PC_LOG(Info, kModule, "%s (%s) registered in room %s on daemon %.*s", cid.c_str(),
         std::string(type).c_str(), rname.c_str(), (int)inst.size(), inst.data());
  if (room && !hidden) {
    std::uint32_t t = push_text(proto::serialize(proto::PeerJoined{cid, std::string(type)}));
    for (Client *m : room->members) actions_.sends.push_back({m->handle, t});
  }
  return true;
}

void Rooms::remote_left(std::string_view inst, std::string_view room_name, std::string_view id)
{
  auto rit = remote_.find(std::string(room_name));
  if (rit == remote_.end()) return;
  auto it = rit->second.find(std::string(id));
  if (it == rit->second.end() || it->second.instance != inst) return;
  bool hidden = it->second.hidden;
  std::string cid = it->first;
  rit->second.erase(it);
  remote_total_--;
  if (!hidden) remote_visible_--;
  if (rit->second.empty()) remote_.erase(rit);
  PC_LOG(Info, kModule, "%s left room %.*s on daemon %.*s", cid.c_str(), (int)room_name.size(),
         room_name.data(), (int)inst.size(), inst.data());
  if (hidden) {
    auto a = remote_bridge_answerer_.find(std::string(room_name) + '\n' + cid);
    if (a != remote_bridge_answerer_.end()) {
      if (auto c = clients_.find(a->second); c != clients_.end() && !c->second->closing)
        actions_.sends.push_back({a->second, push_text(proto::serialize(proto::PeerLeft{cid}))});
      remote_bridge_answerer_.erase(a);
    }
  }
  auto lit = rooms_.find(std::string(room_name));
  if (lit != rooms_.end() && !hidden) {
    std::uint32_t t = push_text(proto::serialize(proto::PeerLeft{cid}));
    for (Client *m : lit->second->members) actions_.sends.push_back({m->handle, t});
  }
  // Offers it was answering cannot complete any more.
  std::vector<Bridge *> mine;
  for (auto &[bid, b] : bridges_)
    if (!b->answerer && b->answerer_instance == inst && b->answerer_id == cid &&
        b->room == room_name)
      mine.push_back(b.get());
  for (Bridge *b : mine) {
    if (b->state == Bridge::State::Done)
      erase_bridge(*b);
    else
      finish_bridge(*b, 503, "answering peer \"" + cid + "\" left before answering");
  }
  // A local registration waiting for that holder's daemon to probe it: the id is free now
  // (last, so that the room hears peer_left before the newcomer's peer_joined).
  if (auto p = probes_.find(std::string(room_name) + '\n' + cid);
      p != probes_.end() && !p->second.holder && p->second.holder_instance == inst)
    end_probe(std::string(p->first), ProbeEnd::Gone, now_);
}

void Rooms::remote_gone(std::string_view inst)
{
  std::vector<std::pair<std::string, std::string>> gone;
  for (auto &[room, members] : remote_)
    for (auto &[id, m] : members)
      if (m.instance == inst) gone.emplace_back(room, id);
  for (auto &[room, id] : gone) remote_left(inst, room, id);
}

void Rooms::remote_sync(std::string_view inst, const std::vector<RemoteEntry> &members)
{
  std::vector<std::pair<std::string, std::string>> stale;
  for (auto &[room, ms] : remote_)
    for (auto &[id, m] : ms) {
      if (m.instance != inst) continue;
      bool listed = std::any_of(members.begin(), members.end(),
                                [&](const RemoteEntry &e) { return e.room == room && e.id == id; });
      if (!listed) stale.emplace_back(room, id);
    }
  for (auto &[room, id] : stale) remote_left(inst, room, id);
  for (const auto &e : members) remote_joined(inst, e.room, e.id, e.type, e.hidden);
}

bool Rooms::remote_text(std::string_view inst, std::string_view room_name, std::string_view to,
                        std::string_view text, Time now)
{
  if (!cluster_) return false;
  // Our own text: a sender appended from_id, and a peer_left can name a peer: bounded by both.
  if (text.size() > limits_.max_message_bytes + 2 * proto::kMaxIdLength + 64)
    return drop_remote("relayed message over the size limit");
  auto rit = remote_.find(std::string(room_name));
  if (rit == remote_.end()) return drop_remote("message for a room with no member on that daemon");
  proto::ParseResult r = proto::parse(text);
  if (!r.ok()) return drop_remote("relayed message is not a valid protocol message");
  const proto::Message &msg = *r.message;
  const std::optional<std::string> *from = nullptr, *target = nullptr;
  if (auto *s = std::get_if<proto::Sdp>(&msg)) {
    from = &s->from_id;
    target = &s->target_id;
  } else if (auto *c = std::get_if<proto::Candidate>(&msg)) {
    from = &c->from_id;
    target = &c->target_id;
  } else if (auto *pl = std::get_if<proto::PeerLeft>(&msg)) {
    // Only the end of an HTTP offer that daemon announced, to the client that answered it.
    auto m = rit->second.find(pl->client_id);
    if (to.empty() || m == rit->second.end() || m->second.instance != inst || !m->second.hidden)
      return drop_remote("peer_left for a peer that daemon does not hold");
  } else {
    return drop_remote("relayed message of a type that is never relayed");
  }
  if (from) {
    auto m = from->has_value() ? rit->second.find(**from) : rit->second.end();
    if (m == rit->second.end() || m->second.instance != inst)
      return drop_remote("relayed message from a client that daemon does not hold");
    // A broadcast has no target_id; a targeted one names its target (an HTTP offer's may not).
    if ((to.empty() && target->has_value()) || (target->has_value() && **target != to))
      return drop_remote("relayed message whose target_id disagrees with its routing");
  }
  auto lit = rooms_.find(std::string(room_name));
  Room *room = lit == rooms_.end() ? nullptr : lit->second.get();
  if (to.empty()) {
    if (!room) return drop_remote("broadcast for a room with no local member");
    std::uint32_t t = push_text(std::string(text));
    for (Client *m : room->members) actions_.sends.push_back({m->handle, t});
    return true;
  }
  std::string tid(to);
  if (room)
    if (auto it = room->by_id.find(tid); it != room->by_id.end()) {
      actions_.sends.push_back({it->second->handle, push_text(std::string(text))});
      // Who answers a remote HTTP offer: told if that daemon dies before saying it ended.
      std::string key = std::string(room_name) + '\n';
      if (auto *pl = std::get_if<proto::PeerLeft>(&msg)) {
        remote_bridge_answerer_.erase(key + pl->client_id);
      } else if (auto m = rit->second.find(**from); m != rit->second.end() && m->second.hidden) {
        remote_bridge_answerer_[key + **from] = it->second->handle;
      }
      return true;
    }
  if (from)
    if (auto b = bridge_by_peer.find(tid); b != bridge_by_peer.end()) {
      Bridge &bridge = *bridges_.at(b->second);
      if (bridge.room == room_name && !bridge.answerer && bridge.answerer_instance == inst &&
          bridge.answerer_id == **from) {
        to_bridge(nullptr, bridge, msg, now);
        return true;
      }
    }
  return drop_remote("relayed message for a client not on this daemon");
}

void Rooms::claim_lost(std::string_view room_name, std::string_view id)
{
  auto lit = rooms_.find(std::string(room_name));
  if (lit == rooms_.end()) return;
  auto it = lit->second->by_id.find(std::string(id));
  if (it == lit->second->by_id.end()) return;
  Client &c = *it->second;
  PC_LOG(Warning, kModule, "%s in room %s: another daemon of the cluster holds that id",
         c.id.c_str(), c.room->name.c_str());
  reply_error(c, code::kDuplicateId,
              "client_id \"" + c.id + "\" is already in room \"" + c.room->name +
                  "\" (on another daemon of the cluster); you are no longer registered");
  leave_room(c);
}

std::vector<Rooms::RemoteEntry> Rooms::local_members() const
{
  std::vector<RemoteEntry> out;
  out.reserve(registered_);
  for (auto &[name, room] : rooms_)
    for (Client *m : room->members) out.push_back({name, m->id, m->type, false});
  for (auto &[id, b] : bridges_)
    if (b->announced) out.push_back({b->room, b->peer_id, "http", true});
  return out;
}

std::vector<std::string> Rooms::local_rooms() const
{
  std::vector<std::string> out;
  out.reserve(rooms_.size());
  for (auto &[name, room] : rooms_) out.push_back(name);
  return out;
}

std::vector<std::string> Rooms::remote_instances() const
{
  std::vector<std::string> out;
  for (auto &[room, ms] : remote_)
    for (auto &[id, m] : ms)
      if (std::find(out.begin(), out.end(), m.instance) == out.end()) out.push_back(m.instance);
  return out;
}

std::size_t Rooms::cluster_rooms() const
{
  std::size_t n = rooms_.size();
  for (auto &[name, ms] : remote_) {
    bool visible = std::any_of(ms.begin(), ms.end(), [](auto &kv) { return !kv.second.hidden; });
    if (visible && !rooms_.count(name)) n++;
  }
  return n;
}

std::string Rooms::prometheus() const
{
  std::string out;
  out.reserve(2048);
  auto metric = [&](const char *name, const char *type, const char *help, std::uint64_t v) {
    out += "# HELP pointcast_signaling_";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE pointcast_signaling_";
    out += name;
    out += ' ';
    out += type;
    out += "\npointcast_signaling_";
    out += name;
    out += ' ';
    out += std::to_string(v);
    out += '\n';
  };
  metric("clients", "gauge", "Open WebSocket connections.", clients_.size());
  metric("registered_clients", "gauge", "Clients registered in a room.", registered_);
  metric("rooms", "gauge", "Rooms with at least one client.", rooms_.size());
  metric("pending_http_offers", "gauge", "HTTP offers waiting for an answer.", pending_offers());
  metric("connections_total", "counter", "WebSocket connections accepted.",
         metrics_.connections_total);
  metric("registrations_total", "counter", "Successful registrations.",
         metrics_.registrations_total);
  metric("messages_received_total", "counter", "Messages received from clients.",
         metrics_.messages_received_total);
  metric("messages_relayed_total", "counter", "Offer/answer/candidate deliveries to peers.",
         metrics_.messages_relayed_total);
  metric("errors_total", "counter", "Error replies sent to clients.", metrics_.errors_total);
  metric("abuse_disconnects_total", "counter",
         "Clients disconnected for too many rejected messages.", metrics_.abuse_disconnects_total);
  metric("address_limit_total", "counter", "Connections refused by --max-connections-per-address.",
         metrics_.address_limit_total);
  metric("http_offers_total", "counter", "POST /offer requests.", metrics_.http_offers_total);
  metric("http_offers_answered_total", "counter", "HTTP offers answered.",
         metrics_.http_offers_answered_total);
  metric("http_offers_failed_total", "counter", "HTTP offers refused or unanswered.",
         metrics_.http_offers_failed_total);
  metric("duplicate_probes_total", "counter",
         "Registrations of a held client_id that pinged the connection holding it.",
         metrics_.duplicate_probes_total);
  metric("duplicate_replaced_total", "counter",
         "Held client_ids given to a new registration: the holder did not answer the ping.",
         metrics_.duplicate_replaced_total);
  if (cluster_) {
    metric("cluster_clients", "gauge", "Clients registered on every daemon of the cluster.",
           registered_ + remote_visible_);
    metric("cluster_rooms", "gauge", "Rooms with a client on any daemon of the cluster.",
           cluster_rooms());
    metric("cluster_remote_clients", "gauge", "Clients registered on the other daemons.",
           remote_visible_);
    metric("cluster_dropped_total", "counter",
           "Messages from other daemons dropped as invalid or unroutable.", cluster_dropped_);
    out += cluster_->prometheus();
  }
  return out;
}

std::string merge_candidates(std::string_view sdp, const std::vector<proto::IceCandidate> &cands)
{
  std::vector<sdp::Candidate> in;
  in.reserve(cands.size());
  for (const auto &c : cands)
    in.push_back({c.sdp_mline_index.value_or(-1), c.candidate, c.sdp_mid});
  return sdp::with_candidates(sdp, in, sdp::Fill::Merge);
}

} // namespace pointcast::signaling
