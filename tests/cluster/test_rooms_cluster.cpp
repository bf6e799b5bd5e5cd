// SPDX-License-Identifier: LGPL-2.1-or-later
// The room state machine's cluster side without Redis: two Rooms joined by an in-memory link
// that does what cluster.cpp does with claims, member events and relayed text (in order, one
// queue), so claims, routing, the bridge and the checks on remote input are tested directly.
#include "log.h"
#include "rooms.h"

#include <glib.h>

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

using namespace pointcast::signaling;
using namespace pointcast::protocol;
using namespace std::chrono_literals;

namespace {

struct Bus;

struct Daemon final : ClusterLink {
  Bus *bus;
  std::string inst;
  Rooms rooms;
  std::vector<std::pair<Handle, std::string>> sent;
  std::vector<OfferResult> offers;
  std::vector<Handle> probed;
  std::vector<Actions::Close> closed;
  Daemon(Bus *b, std::string i) : bus(b), inst(std::move(i)) { rooms.set_cluster(this); }
  const std::string &instance() const override { return inst; }
  bool claim(const std::string &room, const std::string &id, const std::string &type, bool hidden,
             Handle client) override;
  void left(const std::string &room, const std::string &id) override;
  void room_used(const std::string &, bool) override {}
  void send(const std::string &instance, const std::string &room, const std::string &to,
            const std::string &text) override;
  void broadcast(const std::string &room, const std::string &text) override;
  void probe(const std::string &instance, const std::string &room, const std::string &id,
             bool alive) override;
  std::string prometheus() const override { return {}; }
  void drain()
  {
    Actions &a = rooms.actions();
    for (auto &s : a.sends) sent.emplace_back(s.to, a.texts.at(s.text));
    for (auto &o : a.offers) offers.push_back(o);
    for (Handle h : a.probes) probed.push_back(h);
    for (auto &c : a.closes) closed.push_back(c);
    a.clear();
  }
  std::vector<Message> take(Handle h)
  {
    drain();
    std::vector<Message> out;
    std::vector<std::pair<Handle, std::string>> rest;
    for (auto &[to, text] : sent) {
      if (to != h) {
        rest.emplace_back(to, text);
        continue;
      }
      ParseResult r = parse(text);
      if (!r.ok()) g_error("invalid JSON sent: %s", text.c_str());
      out.push_back(*r.message);
    }
    sent = rest;
    return out;
  }
};

// Redis as one ordered queue: claims are decided at once, events delivered by pump().
struct Bus {
  std::map<std::string, std::string> claims; // room\nid -> instance
  std::vector<Daemon *> daemons;
  std::deque<std::function<void()>> queue;
  Time now = Time{} + 1000s;
  void pump()
  {
    while (!queue.empty()) {
      auto f = std::move(queue.front());
      queue.pop_front();
      f();
    }
    for (Daemon *d : daemons) d->drain();
  }
  Daemon *by(const std::string &inst)
  {
    for (Daemon *d : daemons)
      if (d->inst == inst) return d;
    return nullptr;
  }
};

bool Daemon::claim(const std::string &room, const std::string &id, const std::string &type,
                   bool hidden, Handle client)
{
  std::string key = room + "\n" + id;
  bool ok = !bus->claims.count(key) || bus->claims[key] == inst;
  if (ok) bus->claims[key] = inst;
  bus->queue.push_back(
      [this, room, id, ok, client] { rooms.claim_done(client, room, id, ok, bus->now); });
  if (ok)
    for (Daemon *d : bus->daemons)
      if (d != this)
        bus->queue.push_back([d, i = inst, room, id, type, hidden] {
          d->rooms.remote_joined(i, room, id, type, hidden);
        });
  return true;
}

void Daemon::left(const std::string &room, const std::string &id)
{
  std::string key = room + "\n" + id;
  if (bus->claims.count(key) && bus->claims[key] == inst) bus->claims.erase(key);
  for (Daemon *d : bus->daemons)
    if (d != this)
      bus->queue.push_back([d, i = inst, room, id] { d->rooms.remote_left(i, room, id); });
}

void Daemon::send(const std::string &instance, const std::string &room, const std::string &to,
                  const std::string &text)
{
  Daemon *d = bus->by(instance);
  g_assert_nonnull(d);
  bus->queue.push_back(
      [d, i = inst, room, to, text, this] { d->rooms.remote_text(i, room, to, text, bus->now); });
}

void Daemon::broadcast(const std::string &room, const std::string &text)
{
  for (Daemon *d : bus->daemons)
    if (d != this)
      bus->queue.push_back(
          [d, i = inst, room, text, this] { d->rooms.remote_text(i, room, "", text, bus->now); });
}

void Daemon::probe(const std::string &instance, const std::string &room, const std::string &id,
                   bool alive)
{
  Daemon *d = bus->by(instance);
  g_assert_nonnull(d);
  bus->queue.push_back([d, i = inst, room, id, alive, this] {
    d->rooms.remote_probe(i, room, id, alive, bus->now);
  });
}

struct Two {
  Bus bus;
  Daemon a{&bus, "aaaa"}, b{&bus, "bbbb"};
  Two() { bus.daemons = {&a, &b}; }
  void reg(Daemon &d, Handle h, const std::string &id, const std::string &room,
           const std::string &type = "peer")
  {
    d.rooms.connect(h, bus.now);
    d.rooms.text(h,
                 R"({"type":"register","client_id":")" + id + R"(","room_id":")" + room +
                     R"(","client_type":")" + type + R"("})",
                 bus.now);
    bus.pump();
  }
  void text(Daemon &d, Handle h, const std::string &t)
  {
    d.rooms.text(h, t, bus.now);
    bus.pump();
  }
};

template <typename T>
const T &one(std::vector<Message> v)
{
  if (v.size() != 1) g_error("expected one message, got %zu", v.size());
  static Message keep;
  keep = v[0];
  auto *m = std::get_if<T>(&keep);
  if (!m) g_error("unexpected message type %s", type_name(keep));
  return *m;
}

void test_register_sees_remote_members()
{
  Two t;
  t.reg(t.a, 1, "x", "r");
  auto &r1 = one<Registered>(t.a.take(1));
  g_assert_cmpuint(r1.peers.size(), ==, 0);
  t.reg(t.b, 1, "y", "r", "gstreamer");
  auto &r2 = one<Registered>(t.b.take(1));
  g_assert_cmpuint(r2.peers.size(), ==, 1);
  g_assert_cmpstr(r2.peers[0].client_id.c_str(), ==, "x");
  auto &j = one<PeerJoined>(t.a.take(1));
  g_assert_cmpstr(j.client_id.c_str(), ==, "y");
  g_assert_cmpstr(j.client_type.c_str(), ==, "gstreamer");
  g_assert_cmpuint(t.a.rooms.remote_clients(), ==, 1);
  g_assert_cmpuint(t.a.rooms.cluster_rooms(), ==, 1);
}

void test_duplicate_refused_until_freed()
{
  Two t;
  t.reg(t.a, 1, "x", "r");
  t.a.take(1);
  t.reg(t.b, 1, "x", "r");
  // x's daemon pings it; it answers, so it keeps x.
  g_assert_true(t.b.take(1).empty());
  g_assert_cmpuint(t.a.probed.size(), ==, 1);
  t.a.rooms.alive(1, t.bus.now);
  t.bus.pump();
  auto &e = one<Error>(t.b.take(1));
  g_assert_cmpstr(e.code.c_str(), ==, code::kDuplicateId);
  // A race: both claim before either hears of the other; the link decides, one wins.
  t.reg(t.b, 2, "z", "r2");
  t.b.rooms.connect(3, t.bus.now);
  t.a.rooms.connect(3, t.bus.now);
  const char *reg = R"({"type":"register","client_id":"q","room_id":"r2","client_type":"p"})";
  t.a.rooms.text(3, reg, t.bus.now);
  t.b.rooms.text(3, reg, t.bus.now);
  t.bus.pump();
  auto ma = t.a.take(3), mb = t.b.take(3);
  g_assert_cmpuint(ma.size(), ==, 1);
  g_assert_cmpuint(mb.size(), ==, 1);
  bool a_won = std::holds_alternative<Registered>(ma[0]);
  bool b_won = std::holds_alternative<Registered>(mb[0]);
  g_assert_true(a_won != b_won);
  // Leaving frees the id for the other daemon.
  t.a.rooms.disconnect(1, t.bus.now);
  t.bus.pump();
  t.reg(t.b, 4, "x", "r");
  g_assert_true(std::holds_alternative<Registered>(t.b.take(4).at(0)));
}

// A register on b for an id a client of a holds: a probes its client. Silent: a drops it, its
// leave frees the id, and b registers the newcomer. No answer from a at all: refused.
void test_duplicate_probe_across_daemons()
{
  Two t;
  t.reg(t.a, 1, "x", "r");
  t.reg(t.a, 2, "w", "r");
  t.a.take(1);
  t.a.take(2);
  t.reg(t.b, 5, "x", "r");
  g_assert_true(t.b.take(5).empty());
  g_assert_cmpuint(t.a.probed.size(), ==, 1);
  g_assert_cmpuint(t.a.probed[0], ==, 1);
  t.bus.now += 1900ms;
  t.a.rooms.tick(t.bus.now);
  t.b.rooms.tick(t.bus.now);
  t.bus.pump();
  g_assert_true(t.b.take(5).empty());
  g_assert_true(t.a.closed.empty());
  t.bus.now += 100ms;
  t.a.rooms.tick(t.bus.now);
  t.bus.pump();
  g_assert_cmpuint(t.a.closed.size(), ==, 1);
  g_assert_cmpuint(t.a.closed[0].client, ==, 1);
  g_assert_cmpuint(t.a.closed[0].code, ==, kCloseReplaced);
  auto &r = one<Registered>(t.b.take(5));
  g_assert_cmpstr(r.client_id.c_str(), ==, "x");
  auto w = t.a.take(2);
  g_assert_cmpuint(w.size(), ==, 2);
  g_assert_true(std::holds_alternative<PeerLeft>(w[0]));
  g_assert_cmpstr(std::get<PeerJoined>(w[1]).client_id.c_str(), ==, "x");
  g_assert_cmpuint(t.a.rooms.metrics().duplicate_replaced_total, ==, 1);
  // A probe request a never acts on (here: a hostile one for an id it does not hold is ignored):
  // b refuses its newcomer at its own deadline, twice the probe.
  g_assert_false(t.a.rooms.remote_probe("bbbb", "r", "nobody", false, t.bus.now));
  g_assert_false(t.a.rooms.remote_probe("bbbb", "r", "w", true, t.bus.now)); // never asked
  g_assert_false(t.a.rooms.remote_probe(std::string_view("bb\0b", 4), "r", "w", false, t.bus.now));
  t.a.rooms.disconnect(2, t.bus.now); // w
  t.bus.pump();
  t.reg(t.a, 3, "v", "r");
  t.a.take(3);
  t.b.take(5);
  t.a.rooms.set_cluster(nullptr); // a stops answering the cluster
  t.reg(t.b, 6, "v", "r");
  t.bus.queue.clear();
  t.a.rooms.set_cluster(&t.a);
  t.bus.now += 3900ms;
  t.b.rooms.tick(t.bus.now);
  g_assert_true(t.b.take(6).empty());
  t.bus.now += 100ms;
  t.b.rooms.tick(t.bus.now);
  t.bus.pump();
  auto &e = one<Error>(t.b.take(6));
  g_assert_cmpstr(e.code.c_str(), ==, code::kDuplicateId);
}

void test_relay_both_ways_and_broadcast()
{
  Two t;
  t.reg(t.a, 1, "x", "r");
  t.reg(t.b, 1, "y", "r");
  t.reg(t.a, 2, "z", "r");
  for (Handle h : {1, 2}) t.a.take(h);
  t.b.take(1);
  t.text(t.a, 1, R"({"type":"offer","target_id":"y","sdp":{"type":"offer","sdp":"v=0"},"k":7})");
  auto &o = one<Sdp>(t.b.take(1));
  g_assert_cmpstr(o.from_id->c_str(), ==, "x");
  g_assert_true(t.a.take(2).empty());
  t.text(t.b, 1,
         R"({"type":"ice_candidate","candidate":{"candidate":"candidate:1","sdpMid":"0"}})");
  g_assert_cmpstr(one<Candidate>(t.a.take(1)).from_id->c_str(), ==, "y");
  g_assert_cmpstr(one<Candidate>(t.a.take(2)).from_id->c_str(), ==, "y");
  g_assert_true(t.b.take(1).empty()); // not echoed to the sender
  // Leaving is heard on the other daemon.
  t.b.rooms.disconnect(1, t.bus.now);
  t.bus.pump();
  g_assert_cmpstr(one<PeerLeft>(t.a.take(1)).client_id.c_str(), ==, "y");
}

void test_remote_input_checked()
{
  Two t;
  t.reg(t.a, 1, "x", "r");
  t.reg(t.b, 1, "y", "r");
  t.a.take(1);
  t.b.take(1);
  Rooms &a = t.a.rooms;
  std::string good =
      R"({"type":"offer","target_id":"x","from_id":"y","sdp":{"type":"offer","sdp":"v=0"}})";
  // Wrong daemon for the sender, unknown sender, target mismatch, server-only type, bad JSON,
  // a join of a local id, an over-long id, a peer_left of a visible member.
  g_assert_false(a.remote_text("cccc", "r", "x", good, t.bus.now));
  g_assert_false(a.remote_text(
      "bbbb", "r", "x",
      R"({"type":"offer","target_id":"x","from_id":"nobody","sdp":{"type":"offer","sdp":"v=0"}})",
      t.bus.now));
  g_assert_false(a.remote_text("bbbb", "r", "w", good, t.bus.now));
  g_assert_false(a.remote_text("bbbb", "r", "x",
                               R"({"type":"registered","client_id":"x","room_id":"r","peers":[]})",
                               t.bus.now));
  g_assert_false(a.remote_text("bbbb", "r", "x", std::string(100000, '['), t.bus.now));
  g_assert_false(
      a.remote_text("bbbb", "r", "x", R"({"type":"peer_left","client_id":"y"})", t.bus.now));
  g_assert_false(a.remote_joined("bbbb", "r", "x", "peer", false));
  g_assert_false(a.remote_joined("bbbb", "r", std::string(300, 'i'), "peer", false));
  g_assert_false(a.remote_joined("bbbb", "r", "bad\xff", "peer", false));
  a.remote_left("cccc", "r", "y"); // not that daemon's member: nothing happens
  t.a.drain();
  g_assert_true(t.a.take(1).empty());
  g_assert_cmpuint(a.cluster_dropped(), ==, 9);
  g_assert_cmpuint(a.remote_clients(), ==, 1);
  g_assert_true(a.remote_text("bbbb", "r", "x", good, t.bus.now));
  g_assert_cmpstr(one<Sdp>(t.a.take(1)).from_id->c_str(), ==, "y");
}

void test_dead_daemon_members_leave()
{
  Two t;
  t.reg(t.a, 1, "x", "r");
  t.reg(t.b, 1, "y", "r");
  t.reg(t.b, 2, "w", "r");
  t.a.take(1);
  t.a.rooms.remote_gone("bbbb");
  auto v = t.a.take(1);
  g_assert_cmpuint(v.size(), ==, 2);
  for (auto &m : v) g_assert_true(std::holds_alternative<PeerLeft>(m));
  g_assert_cmpuint(t.a.rooms.remote_clients(), ==, 0);
}

void test_http_offer_answered_on_other_daemon()
{
  Two t;
  t.reg(t.b, 1, "ans", "cam", "answerer");
  t.b.take(1);
  OfferStart s = t.a.rooms.begin_offer("cam", "v=0\r\nm=application 9 x\r\n", "", t.bus.now);
  g_assert_cmpuint(s.offer_id, !=, 0);
  g_assert_cmpstr(s.answerer.c_str(), ==, "ans");
  t.bus.pump();
  auto &o = one<Sdp>(t.b.take(1));
  g_assert_cmpstr(o.from_id->c_str(), ==, s.peer_id.c_str());
  g_assert_true(g_str_has_prefix(s.peer_id.c_str(), "http-1-aaaa"));
  t.text(t.b, 1,
         R"({"type":"answer","target_id":")" + s.peer_id +
             R"(","trickle":false,"sdp":{"type":"answer","sdp":"v=0\r\nm=application 9 x\r\n"}})");
  g_assert_cmpuint(t.a.offers.size(), ==, 1);
  g_assert_cmpint(t.a.offers[0].status, ==, 200);
  // The virtual peer never shows as a member.
  g_assert_cmpuint(t.b.rooms.remote_clients(), ==, 0);
  // The answerer leaving mid-offer fails the next one with 503.
  OfferStart s2 = t.a.rooms.begin_offer("cam", "v=0\r\nm=application 9 x\r\n", "", t.bus.now);
  t.bus.pump();
  t.b.rooms.disconnect(1, t.bus.now);
  t.bus.pump();
  g_assert_cmpuint(t.a.offers.size(), ==, 2);
  g_assert_cmpuint(t.a.offers[1].offer_id, ==, s2.offer_id);
  g_assert_cmpint(t.a.offers[1].status, ==, 503);
}

void test_http_offer_owner_dies()
{
  Two t;
  t.reg(t.b, 1, "ans", "cam", "answerer");
  t.b.take(1);
  // Ended normally: the answerer hears peer_left for the virtual peer once.
  OfferStart s = t.a.rooms.begin_offer("cam", "v=0\r\nm=application 9 x\r\n", "", t.bus.now);
  t.bus.pump();
  t.b.take(1);
  t.a.rooms.end_offer(s.offer_id);
  t.bus.pump();
  g_assert_cmpstr(one<PeerLeft>(t.b.take(1)).client_id.c_str(), ==, s.peer_id.c_str());
  // The offering daemon dies mid-offer: the answerer still hears peer_left, from its own daemon.
  OfferStart s2 = t.a.rooms.begin_offer("cam", "v=0\r\nm=application 9 x\r\n", "", t.bus.now);
  t.bus.pump();
  t.b.take(1);
  t.b.rooms.remote_gone("aaaa");
  g_assert_cmpstr(one<PeerLeft>(t.b.take(1)).client_id.c_str(), ==, s2.peer_id.c_str());
}

} // namespace

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, nullptr);
  pointcast::log::set_level(g_getenv("PC_DEBUG") ? pointcast::log::Level::Debug
                                                 : pointcast::log::Level::Error);
  g_test_add_func("/cluster/register-sees-remote-members", test_register_sees_remote_members);
  g_test_add_func("/cluster/duplicate-refused-until-freed", test_duplicate_refused_until_freed);
  g_test_add_func("/cluster/duplicate-probe-across-daemons", test_duplicate_probe_across_daemons);
  g_test_add_func("/cluster/relay-both-ways-and-broadcast", test_relay_both_ways_and_broadcast);
  g_test_add_func("/cluster/remote-input-checked", test_remote_input_checked);
  g_test_add_func("/cluster/dead-daemon-members-leave", test_dead_daemon_members_leave);
  g_test_add_func("/cluster/http-offer-answered-on-other-daemon",
                  test_http_offer_answered_on_other_daemon);
  g_test_add_func("/cluster/http-offer-owner-dies", test_http_offer_owner_dies);
  return g_test_run();
}
