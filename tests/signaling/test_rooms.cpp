// SPDX-License-Identifier: LGPL-2.1-or-later
// The daemon's room state machine, driven directly: every message type, every error, the limits
// and the /offer bridge, with a fake clock and no sockets.
#include "log.h"
#include "rooms.h"

#include <glib.h>

#include <string>
#include <vector>

using namespace pointcast::signaling;
using namespace pointcast::protocol;
using namespace std::chrono_literals;

namespace {

struct Out {
  Handle to;
  std::string text;
};

const char *kHttpOffer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                         "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n";

struct Peer {
  std::string id;
  std::string type = "peer";
};

struct Harness {
  Rooms rooms;
  Time now = Time{} + 1000s;
  std::vector<Out> sent;
  std::vector<Actions::Close> closed;
  std::vector<OfferResult> offers;
  std::vector<Handle> probed; // connections the transport was asked to ping

  explicit Harness(Limits l = {}) : rooms(l) {}

  void drain()
  {
    Actions &a = rooms.actions();
    for (auto &s : a.sends) sent.push_back({s.to, a.texts.at(s.text)});
    for (auto &c : a.closes) closed.push_back(c);
    for (auto &o : a.offers) offers.push_back(o);
    for (Handle h : a.probes) probed.push_back(h);
    a.clear();
  }
  void connect(Handle h, const std::string &ip = "", bool authenticated = true)
  {
    rooms.connect(h, now, "test", ip, authenticated);
    drain();
  }
  void send(Handle h, const std::string &text)
  {
    rooms.text(h, text, now);
    drain();
  }
  void reg(Handle h, const std::string &id, const std::string &room,
           const std::string &type = "peer")
  {
    connect(h);
    send(h,
         R"({"type":"register","client_id":")" + id + R"(","room_id":")" + room +
             R"(","client_type":")" + type + R"("})");
    Message m = take_one(h);
    g_assert_cmpstr(type_name(m), ==, "registered");
  }
  // Registers peers as clients 1, 2, ... of room, in order, then takes the peer_joined notices
  // they caused (each still checked as valid), so the test starts from a quiet room.
  void reg_room(const std::string &room, const std::vector<Peer> &peers)
  {
    for (std::size_t i = 0; i < peers.size(); i++)
      reg(Handle(i + 1), peers[i].id, room, peers[i].type);
    for (std::size_t i = 0; i + 1 < peers.size(); i++) take(Handle(i + 1));
  }
  void disconnect(Handle h)
  {
    rooms.disconnect(h, now);
    drain();
  }
  // Moves the clock on and lets the timers run.
  void advance(Clock::duration d)
  {
    now += d;
    rooms.tick(now);
    drain();
  }
  // An HTTP /offer into room; the offer relayed to the answerer is taken (still checked as valid).
  OfferStart http_offer(Handle answerer, const std::string &room = "r")
  {
    OfferStart s = rooms.begin_offer(room, kHttpOffer, "", now);
    drain();
    take(answerer);
    return s;
  }
  // Messages sent to h since the last call, parsed; every one must be valid protocol JSON.
  std::vector<Message> take(Handle h)
  {
    std::vector<Message> out;
    std::vector<Out> rest;
    for (auto &o : sent) {
      if (o.to != h) {
        rest.push_back(o);
        continue;
      }
      ParseResult r = parse(o.text);
      if (!r.ok())
        g_error("server sent invalid JSON %s: %s", o.text.c_str(), r.error.message.c_str());
      out.push_back(*r.message);
    }
    sent = rest;
    return out;
  }
  Message take_one(Handle h)
  {
    auto v = take(h);
    if (v.size() != 1)
      g_error("expected one message for %llu, got %zu", (unsigned long long)h, v.size());
    return v[0];
  }
  std::string error_code(Handle h)
  {
    auto m = take_one(h);
    auto *e = std::get_if<Error>(&m);
    if (!e) g_error("expected an error for %llu, got %s", (unsigned long long)h, type_name(m));
    g_assert_false(e->message.empty());
    return e->code;
  }
  void expect_error(Handle h, const std::string &text, const char *code)
  {
    send(h, text);
    std::string got = error_code(h);
    if (got != code) g_error("%s: got error %s, expected %s", text.c_str(), got.c_str(), code);
  }
  void expect_silence()
  {
    if (!sent.empty())
      g_error("unexpected message to %llu: %s", (unsigned long long)sent[0].to,
              sent[0].text.c_str());
  }
};

const char *kOffer =
    R"({"type":"offer","target_id":"b","sdp":{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"},"x":1})";

void test_register_and_join()
{
  Harness t;
  t.reg(1, "a", "r1", "browser");
  t.connect(2);
  t.send(2, R"({"type":"register","client_id":"b","room_id":"r1","client_type":"gstreamer"})");
  auto reg = std::get<Registered>(t.take_one(2));
  g_assert_cmpstr(reg.client_id.c_str(), ==, "b");
  g_assert_cmpstr(reg.room_id.c_str(), ==, "r1");
  g_assert_cmpuint(reg.peers.size(), ==, 1);
  g_assert_cmpstr(reg.peers[0].client_id.c_str(), ==, "a");
  g_assert_cmpstr(reg.peers[0].client_type.c_str(), ==, "browser");
  auto joined = std::get<PeerJoined>(t.take_one(1));
  g_assert_cmpstr(joined.client_id.c_str(), ==, "b");
  g_assert_cmpstr(joined.client_type.c_str(), ==, "gstreamer");
  // Another room sees nothing of r1 and r1 nothing of it.
  t.reg(3, "a", "r2");
  t.expect_silence();
  g_assert_cmpuint(t.rooms.rooms(), ==, 2);
  g_assert_cmpuint(t.rooms.registered_clients(), ==, 3);
}

void test_relay_targeted()
{
  Harness t;
  t.reg_room("r", {{"a"}, {"b"}, {"c"}});
  t.send(1, kOffer);
  auto off = std::get<Sdp>(t.take_one(2));
  g_assert_cmpstr(off.from_id->c_str(), ==, "a");
  g_assert_cmpstr(off.target_id->c_str(), ==, "b");
  g_assert_cmpstr(off.sdp.type.c_str(), ==, "offer");
  t.expect_silence(); // c got nothing
  // The relayed text keeps the sender's extra members.
  t.send(1, kOffer);
  g_assert_nonnull(strstr(t.sent.at(0).text.c_str(), "\"x\":1"));
  t.take(2);

  t.send(2, R"({"type":"answer","target_id":"a","sdp":{"type":"answer","sdp":"v=0\r\n"}})");
  auto ans = std::get<Sdp>(t.take_one(1));
  g_assert_cmpstr(ans.sdp.type.c_str(), ==, "answer");
  g_assert_cmpstr(ans.from_id->c_str(), ==, "b");

  t.send(
      2,
      R"({"type":"ice_candidate","target_id":"a","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}})");
  auto cand = std::get<Candidate>(t.take_one(1));
  g_assert_cmpstr(cand.from_id->c_str(), ==, "b");
  g_assert_cmpint(*cand.candidate.sdp_mline_index, ==, 0);
  t.expect_silence();

  // A spoofed from_id is replaced by the real sender.
  t.send(3, R"({"type":"ice_candidate","target_id":"a","from_id":"b","candidate":null})");
  auto spoof = std::get<Candidate>(t.take_one(1));
  g_assert_cmpstr(spoof.from_id->c_str(), ==, "c");
  g_assert_cmpuint(t.rooms.metrics().messages_relayed_total, ==, 5);
}

void test_broadcast()
{
  Harness t;
  t.reg_room("r", {{"a"}, {"b"}, {"c"}});
  t.reg(4, "d", "other");
  t.send(1, R"({"type":"offer","sdp":"v=0\r\n"})");
  g_assert_true(std::get<Sdp>(t.take_one(2)).from_id == std::string("a"));
  g_assert_true(std::get<Sdp>(t.take_one(3)).from_id == std::string("a"));
  t.expect_silence(); // not the sender, not room "other"
  // Alone in a room: a broadcast goes nowhere and is not an error.
  t.send(4, R"({"type":"ice_candidate","candidate":null})");
  t.expect_silence();
}

void test_peer_left()
{
  Harness t;
  t.reg_room("r", {{"a"}, {"b"}});
  t.reg(3, "c", "x");
  t.disconnect(2);
  auto left = std::get<PeerLeft>(t.take_one(1));
  g_assert_cmpstr(left.client_id.c_str(), ==, "b");
  t.expect_silence();
  // The id is free again.
  t.reg(4, "b", "r");
  t.take(1);
  t.disconnect(1);
  t.disconnect(4);
  g_assert_true(std::get<PeerLeft>(t.take_one(4)).client_id == std::string("a"));
  g_assert_cmpuint(t.rooms.rooms(), ==, 1);
  g_assert_cmpuint(t.rooms.clients(), ==, 1);
  // An unregistered client leaving tells nobody.
  t.connect(9);
  t.disconnect(9);
  t.expect_silence();
}

void test_errors()
{
  Harness t;
  t.connect(1);
  t.expect_error(1, "not json", code::kBadJson);
  t.expect_error(1, "[]", code::kNotObject);
  t.expect_error(1, "{}", code::kMissingType);
  t.expect_error(1, R"({"type":"dance"})", code::kUnknownType);
  t.expect_error(1, R"({"type":"registered","client_id":"a","room_id":"r","peers":[]})",
                 code::kUnknownType);
  t.expect_error(1, R"({"type":"peer_left","client_id":"a"})", code::kUnknownType);
  t.expect_error(1, R"({"type":"error","code":"x"})", code::kUnknownType);
  t.expect_error(1, kOffer, code::kNotRegistered);
  t.expect_error(1, R"({"type":"ice_candidate","candidate":null})", code::kNotRegistered);
  t.expect_error(1, R"({"type":"register"})", code::kMissingField);
  t.expect_error(1, R"({"type":"register","client_id":7})", code::kBadField);
  t.rooms.binary(1, 10, t.now);
  t.drain();
  g_assert_true(t.error_code(1) == code::kBinary);

  t.send(1, R"({"type":"register","client_id":"a","room_id":"r"})");
  t.take(1);
  t.expect_error(1, R"({"type":"register","client_id":"z","room_id":"r"})",
                 code::kAlreadyRegistered);
  t.connect(2);
  // A held id: its holder is pinged first, and keeps it when it answers.
  t.send(2, R"({"type":"register","client_id":"a","room_id":"r"})");
  t.expect_silence();
  t.rooms.alive(1, t.now);
  t.drain();
  g_assert_true(t.error_code(2) == code::kDuplicateId);
  t.expect_error(1, R"({"type":"offer","target_id":"nobody","sdp":"v=0"})", code::kUnknownTarget);
  t.expect_error(1, R"({"type":"offer","target_id":"a","sdp":"v=0"})", code::kUnknownTarget);
  t.expect_error(1, R"({"type":"offer","target_id":"b","sdp":{"type":"offer"}})",
                 code::kMissingField);
  t.expect_error(1, R"({"type":"answer","target_id":"b","sdp":{"type":"offer","sdp":"v=0"}})",
                 code::kBadField);
  t.expect_error(1, R"({"type":"ice_candidate","target_id":"b"})", code::kMissingField);
  // A peer in another room is unknown here.
  t.send(2, R"({"type":"register","client_id":"b","room_id":"elsewhere"})");
  t.take(2);
  t.expect_error(1, R"({"type":"offer","target_id":"b","sdp":"v=0"})", code::kUnknownTarget);
  t.expect_silence();
  g_assert_cmpuint(t.rooms.metrics().errors_total, ==, 20);
  g_assert_cmpuint(t.rooms.clients(), ==, 2); // nobody was disconnected for this
  g_assert_true(t.closed.empty());
}

void test_size_limit()
{
  Limits l;
  l.max_message_bytes = 200;
  Harness t(l);
  t.reg_room("r", {{"a"}, {"b"}});
  std::string big = R"({"type":"offer","target_id":"b","sdp":")" + std::string(300, 'x') + "\"}";
  t.expect_error(1, big, code::kTooLarge);
  t.expect_silence();
}

void test_room_limit()
{
  Limits l;
  l.max_peers_per_room = 2;
  Harness t(l);
  t.reg_room("r", {{"a"}, {"b"}});
  t.connect(3);
  t.expect_error(3, R"({"type":"register","client_id":"c","room_id":"r"})", code::kRoomFull);
  t.expect_silence(); // a and b heard nothing
  t.send(3, R"({"type":"register","client_id":"c","room_id":"r2"})");
  g_assert_cmpstr(type_name(t.take_one(3)), ==, "registered");
}

void test_max_clients()
{
  Limits l;
  l.max_clients = 2;
  Harness t(l);
  t.connect(1);
  t.connect(2);
  t.connect(3);
  g_assert_true(t.error_code(3) == code::kServerFull);
  g_assert_cmpuint(t.closed.size(), ==, 1);
  g_assert_cmpuint(t.closed[0].client, ==, 3);
  g_assert_cmpuint(t.closed[0].code, ==, kCloseTryAgain);
}

void test_rate_limit_and_abuse()
{
  Limits l;
  l.max_messages_per_second = 10;
  l.burst_seconds = 1; // bucket of 10
  l.max_strikes = 5;
  Harness t(l);
  t.reg_room("r", {{"a"}, {"b"}}); // 1 token used by a
  const char *cand = R"({"type":"ice_candidate","target_id":"b","candidate":null})";
  for (int i = 0; i < 9; i++) t.send(1, cand);
  g_assert_cmpuint(t.take(2).size(), ==, 9);
  t.send(1, cand); // over the rate: dropped with an error
  g_assert_true(t.error_code(1) == code::kRateLimited);
  g_assert_true(t.take(2).empty());
  t.send(1, cand); // dropped again, but only one error per second is sent
  t.expect_silence();
  // After a second the bucket refilled: messages flow again, nothing was disconnected.
  t.now += 1s;
  t.send(1, cand);
  g_assert_cmpuint(t.take(2).size(), ==, 1);
  g_assert_true(t.closed.empty());
  // Sustained flooding: past max_strikes the client is disconnected and its room told.
  for (int i = 0; i < 30; i++) t.send(1, cand);
  g_assert_cmpuint(t.closed.size(), ==, 1);
  g_assert_cmpuint(t.closed[0].client, ==, 1);
  g_assert_cmpuint(t.closed[0].code, ==, kClosePolicy);
  auto msgs = t.take(2);
  g_assert_cmpstr(type_name(msgs.back()), ==, "peer_left");
  g_assert_cmpuint(t.rooms.metrics().abuse_disconnects_total, ==, 1);
  // Nothing more is accepted from a closing client.
  t.take(1);
  t.send(1, cand);
  t.expect_silence();
}

void test_strikes_decay()
{
  Limits l;
  l.max_strikes = 3;
  Harness t(l);
  t.connect(1);
  for (int i = 0; i < 10; i++) { // one bad message every 2 s never accumulates
    t.expect_error(1, "{", code::kBadJson);
    t.now += 2s;
  }
  g_assert_true(t.closed.empty());
  for (int i = 0; i < 4; i++) t.send(1, "{");
  g_assert_cmpuint(t.closed.size(), ==, 1);
}

void test_register_timeout()
{
  Limits l;
  l.register_timeout = 5s;
  Harness t(l);
  t.connect(1);
  t.reg(2, "b", "r");
  t.advance(4s);
  g_assert_true(t.closed.empty());
  t.advance(2s);
  g_assert_cmpuint(t.closed.size(), ==, 1);
  g_assert_cmpuint(t.closed[0].client, ==, 1);
  g_assert_cmpuint(t.closed[0].code, ==, kCloseIdle);
  g_assert_true(t.error_code(1) == code::kNotRegistered);
}

const char *kAnswerSdp = "v=0\r\no=- 2 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                         "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\n"
                         "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:d\r\n";

std::string answer_json(const std::string &to, const std::string &sdp, const char *extra = "")
{
  std::string esc;
  for (char c : sdp)
    esc += c == '\r' ? std::string("\\r") : c == '\n' ? std::string("\\n") : std::string(1, c);
  return R"({"type":"answer","target_id":")" + to + R"(","sdp":{"type":"answer","sdp":")" + esc +
      "\"}" + extra + "}";
}

void test_offer_choice()
{
  Harness t;
  t.reg_room("r", {{"web", "browser"}, {"gst", "gstreamer"}, {"rx", "receiver"}});
  OfferStart s = t.rooms.begin_offer("r", kHttpOffer, "", t.now);
  t.drain();
  g_assert_cmpuint(s.offer_id, !=, 0);
  g_assert_cmpstr(s.answerer.c_str(), ==, "rx"); // the receiver wins over earlier clients
  auto off = std::get<Sdp>(t.take_one(3));
  g_assert_cmpstr(off.from_id->c_str(), ==, s.peer_id.c_str());
  g_assert_true(off.trickle.has_value() && !*off.trickle);
  g_assert_cmpstr(off.sdp.sdp.c_str(), ==, kHttpOffer);
  t.expect_silence();

  Harness u;
  u.reg_room("r", {{"web", "browser"}, {"gst", "gstreamer"}, {"py", "aiortc"}});
  OfferStart s2 = u.rooms.begin_offer("r", kHttpOffer, "", u.now);
  g_assert_cmpstr(s2.answerer.c_str(), ==, "gst"); // earliest non-browser
  OfferStart s3 = u.rooms.begin_offer("r", kHttpOffer, "py", u.now);
  g_assert_cmpstr(s3.answerer.c_str(), ==, "py"); // explicit target
  g_assert_cmpstr(s3.peer_id.c_str(), !=, s2.peer_id.c_str());

  OfferStart bad = u.rooms.begin_offer("r", kHttpOffer, "ghost", u.now);
  g_assert_cmpuint(bad.offer_id, ==, 0);
  g_assert_cmpint(bad.status, ==, 404);
  OfferStart none = u.rooms.begin_offer("empty", kHttpOffer, "", u.now);
  g_assert_cmpint(none.status, ==, 503);
  g_assert_true(none.reason.find("empty") != std::string::npos);
  Harness w;
  w.reg(1, "web", "r", "browser");
  OfferStart only_browser = w.rooms.begin_offer("r", kHttpOffer, "", w.now);
  g_assert_cmpint(only_browser.status, ==, 503);
}

void test_offer_answer_complete()
{
  Harness t;
  t.reg(1, "gst", "r", "gstreamer");
  OfferStart s = t.http_offer(1);
  t.send(1,
         answer_json(s.peer_id,
                     "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=candidate:1 1 "
                     "udp 1 127.0.0.1 5000 typ host\r\n",
                     R"(,"trickle":false)"));
  g_assert_cmpuint(t.offers.size(), ==, 1);
  g_assert_cmpint(t.offers[0].status, ==, 200);
  g_assert_cmpuint(t.offers[0].offer_id, ==, s.offer_id);
  g_assert_true(t.offers[0].answer_sdp.find("a=candidate:1 1 udp") != std::string::npos);
  t.expect_silence();
  g_assert_cmpuint(t.rooms.pending_offers(), ==, 0);
  // Late candidates for the finished offer are dropped quietly.
  t.send(
      1,
      R"({"type":"ice_candidate","target_id":")" + s.peer_id +
          R"(","candidate":{"candidate":"candidate:9 1 udp 1 127.0.0.1 9 typ host","sdpMLineIndex":0}})");
  t.expect_silence();
  g_assert_cmpuint(t.offers.size(), ==, 1);
  // WHIP DELETE tells the answerer the virtual peer is gone.
  g_assert_true(t.rooms.end_session(s.peer_id));
  t.drain();
  g_assert_true(std::get<PeerLeft>(t.take_one(1)).client_id == std::string(s.peer_id.c_str()));
  g_assert_false(t.rooms.end_session(s.peer_id));
}

void test_offer_trickled_candidates_merged()
{
  Limits l;
  l.candidate_grace = 500ms;
  Harness t(l);
  t.reg(1, "gst", "r", "gstreamer");
  OfferStart s = t.http_offer(1);
  auto cand = [&](const char *c, const char *where) {
    t.send(1,
           R"({"type":"ice_candidate","target_id":")" + s.peer_id +
               R"(","candidate":{"candidate":")" + c + "\"," + where + "}}");
  };
  cand("candidate:1 1 udp 1 10.0.0.1 1000 typ host", R"("sdpMid":"v","sdpMLineIndex":0)");
  t.send(1, answer_json(s.peer_id, kAnswerSdp));
  g_assert_true(t.offers.empty()); // waits for more candidates
  cand("candidate:2 1 udp 1 10.0.0.2 2000 typ host", R"("sdpMid":"d")");
  cand("candidate:2 1 udp 1 10.0.0.2 2000 typ host", R"("sdpMid":"d")"); // duplicate
  t.advance(600ms);
  g_assert_cmpuint(t.offers.size(), ==, 1);
  const std::string &sdp = t.offers[0].answer_sdp;
  std::size_t m1 = sdp.find("m=video"), m2 = sdp.find("m=application");
  std::size_t c1 = sdp.find("a=candidate:1 "), c2 = sdp.find("a=candidate:2 ");
  g_assert_true(m1 < c1 && c1 < m2); // each candidate inside its own m-section
  g_assert_true(m2 < c2);
  g_assert_true(sdp.find("a=candidate:2 ", c2 + 1) == std::string::npos);
  g_assert_true(sdp.find("\r\n") != std::string::npos);

  // End-of-candidates completes at once, without waiting for the grace period.
  OfferStart s2 = t.http_offer(1);
  t.send(1, answer_json(s2.peer_id, kAnswerSdp));
  g_assert_cmpuint(t.offers.size(), ==, 1);
  t.send(1, R"({"type":"ice_candidate","target_id":")" + s2.peer_id + R"(","candidate":null})");
  g_assert_cmpuint(t.offers.size(), ==, 2);
  g_assert_cmpint(t.offers[1].status, ==, 200);
}

// What an answerer trickles to an HTTP offer is held until the answer goes out: bounded.
void test_offer_candidates_bounded()
{
  Limits l;
  l.max_messages_per_second = 0;
  Harness t(l);
  t.reg(1, "gst", "r", "gstreamer");
  OfferStart s = t.http_offer(1);
  std::string pad(60000, 'x');
  for (int i = 0; i < 300; i++)
    t.send(1,
           R"({"type":"ice_candidate","target_id":")" + s.peer_id +
               R"(","candidate":{"candidate":"candidate:)" + std::to_string(i) + " " + pad +
               R"(","sdpMLineIndex":0}})");
  for (int i = 0; i < 300; i++)
    t.send(1,
           R"({"type":"ice_candidate","target_id":")" + s.peer_id +
               R"(","candidate":{"candidate":"candidate:)" + std::to_string(i) +
               R"( 1 udp 1 10.0.0.1 1000 typ host","sdpMLineIndex":0}})");
  t.send(1, answer_json(s.peer_id, kAnswerSdp));
  t.send(1, R"({"type":"ice_candidate","target_id":")" + s.peer_id + R"(","candidate":null})");
  g_assert_cmpuint(t.offers.size(), ==, 1);
  const std::string &sdp = t.offers[0].answer_sdp;
  g_assert_true(sdp.find(pad.substr(0, 1000)) == std::string::npos); // none of the 60 KB ones
  g_assert_true(sdp.find("a=candidate:255 1 udp") != std::string::npos);
  g_assert_true(sdp.find("a=candidate:256 1 udp") == std::string::npos); // 256 at most
  g_assert_cmpuint(sdp.size(), <, 64 * 1024);
}

void test_offer_failures()
{
  Limits l;
  l.offer_timeout = 2s;
  Harness t(l);
  t.reg_room("r", {{"gst", "gstreamer"}, {"other", "gstreamer"}});
  OfferStart s = t.http_offer(1);
  // Only the chosen answerer may answer; an offer is not an answer.
  t.expect_error(2, answer_json(s.peer_id, kAnswerSdp), code::kUnknownTarget);
  t.expect_error(1, R"({"type":"offer","target_id":")" + s.peer_id + R"(","sdp":"v=0\r\n"})",
                 code::kBadField);
  t.advance(3s);
  g_assert_cmpuint(t.offers.size(), ==, 1);
  g_assert_cmpint(t.offers[0].status, ==, 503);
  g_assert_true(t.offers[0].reason.find("gst") != std::string::npos);
  // The answerer is told the virtual peer is gone.
  g_assert_true(std::get<PeerLeft>(t.take_one(1)).client_id == std::string(s.peer_id.c_str()));

  // The answerer leaving fails its pending offer at once.
  OfferStart s2 = t.http_offer(1);
  t.disconnect(1);
  g_assert_cmpuint(t.offers.size(), ==, 2);
  g_assert_cmpint(t.offers[1].status, ==, 503);
  g_assert_cmpuint(t.offers[1].offer_id, ==, s2.offer_id);
  t.take(2);

  // The HTTP client giving up tells the answerer.
  OfferStart s3 = t.http_offer(2);
  g_assert_cmpstr(s3.answerer.c_str(), ==, "other");
  t.rooms.end_offer(s3.offer_id);
  t.drain();
  g_assert_true(std::get<PeerLeft>(t.take_one(2)).client_id == std::string(s3.peer_id.c_str()));
  g_assert_cmpuint(t.rooms.pending_offers(), ==, 0);
  g_assert_cmpuint(t.rooms.metrics().http_offers_failed_total, ==, 3);
}

void test_virtual_id_is_reserved()
{
  Harness t;
  t.reg(1, "gst", "r", "gstreamer");
  OfferStart s = t.http_offer(1);
  t.connect(2);
  t.expect_error(2, R"({"type":"register","client_id":")" + s.peer_id + R"(","room_id":"r"})",
                 code::kDuplicateId);
}

// A register for a held id pings the holder (a restarted peer whose old connection vanished
// without a close); the id changes hands only if the holder stays silent for duplicate_probe.
void test_duplicate_probe()
{
  const char *kRegA = R"({"type":"register","client_id":"a","room_id":"r","client_type":"new"})";
  Harness t;
  t.reg_room("r", {{"a"}, {"b"}});
  // A live holder keeps its id, whatever frame it answers with (here a message of its own).
  t.connect(3);
  t.send(3, kRegA);
  g_assert_cmpuint(t.probed.size(), ==, 1);
  g_assert_cmpuint(t.probed[0], ==, 1);
  t.expect_silence();
  // Meanwhile: the newcomer's messages are dropped with an error, not relayed; a second
  // register is refused; a second newcomer for the same id is refused at once.
  t.expect_error(3, R"({"type":"offer","target_id":"b","sdp":{"type":"offer","sdp":"v=0"}})",
                 code::kNotRegistered);
  t.expect_error(3, kRegA, code::kAlreadyRegistered);
  t.connect(4);
  t.expect_error(4, kRegA, code::kDuplicateId);
  t.advance(1900ms);
  t.expect_silence();
  t.send(1, R"({"type":"offer","target_id":"b","sdp":{"type":"offer","sdp":"v=0"}})");
  g_assert_true(t.error_code(3) == code::kDuplicateId);
  t.take(2);
  t.advance(5s);
  t.expect_silence();
  g_assert_true(t.closed.empty());
  g_assert_cmpuint(t.rooms.metrics().duplicate_replaced_total, ==, 0);

  // A silent holder: dropped after 2 s, the others see it leave and the newcomer join.
  t.probed.clear();
  t.connect(5);
  t.send(5, kRegA);
  g_assert_cmpuint(t.probed.size(), ==, 1);
  t.advance(1750ms);
  t.expect_silence();
  t.advance(250ms);
  g_assert_cmpuint(t.closed.size(), ==, 1);
  g_assert_cmpuint(t.closed[0].client, ==, 1);
  g_assert_cmpuint(t.closed[0].code, ==, kCloseReplaced);
  auto reg = std::get<Registered>(t.take_one(5));
  g_assert_cmpstr(reg.client_id.c_str(), ==, "a");
  g_assert_cmpuint(reg.peers.size(), ==, 1);
  auto b = t.take(2);
  g_assert_cmpuint(b.size(), ==, 2);
  g_assert_cmpstr(std::get<PeerLeft>(b[0]).client_id.c_str(), ==, "a");
  g_assert_cmpstr(std::get<PeerJoined>(b[1]).client_type.c_str(), ==, "new");
  // The old connection's late frames and close change nothing.
  t.rooms.alive(1, t.now);
  t.send(1, R"({"type":"offer","target_id":"b","sdp":{"type":"offer","sdp":"v=0"}})");
  t.disconnect(1);
  t.expect_silence();
  // And the newcomer holds the id for real: relayed with from_id "a".
  t.send(5, R"({"type":"offer","target_id":"b","sdp":{"type":"offer","sdp":"v=0"}})");
  Message relayed = t.take_one(2);
  g_assert_cmpstr(std::get<Sdp>(relayed).from_id->c_str(), ==, "a");
  g_assert_cmpuint(t.rooms.metrics().duplicate_probes_total, ==, 2);
  g_assert_cmpuint(t.rooms.metrics().duplicate_replaced_total, ==, 1);

  // The holder's connection closes during the probe: the newcomer gets the id at once.
  t.connect(6);
  t.send(6, kRegA);
  t.disconnect(5);
  g_assert_true(std::holds_alternative<PeerLeft>(t.take(2).at(0)));
  Message reg6 = t.take_one(6);
  g_assert_cmpstr(std::get<Registered>(reg6).client_id.c_str(), ==, "a");
  // The newcomer leaves during the probe: the holder keeps its id and nobody hears of it.
  t.connect(7);
  t.send(7, kRegA);
  t.disconnect(7);
  t.advance(3s);
  t.expect_silence();
  g_assert_cmpuint(t.closed.size(), ==, 1);
  g_assert_cmpuint(t.rooms.registered_clients(), ==, 2);
  // A probe of 0 is the old behaviour: refused at once, nobody pinged.
  Limits l;
  l.duplicate_probe = 0ms;
  Harness u(l);
  u.reg(1, "a", "r");
  u.connect(2);
  u.expect_error(2, kRegA, code::kDuplicateId);
  g_assert_true(u.probed.empty());
}

void test_metrics_text()
{
  Harness t;
  t.reg(1, "a", "r");
  t.connect(2);
  t.send(2, "x");
  std::string m = t.rooms.prometheus();
  g_assert_true(m.find("pointcast_signaling_clients 2\n") != std::string::npos);
  g_assert_true(m.find("pointcast_signaling_rooms 1\n") != std::string::npos);
  g_assert_true(m.find("pointcast_signaling_errors_total 1\n") != std::string::npos);
  g_assert_true(m.find("# TYPE pointcast_signaling_messages_relayed_total counter\n") !=
                std::string::npos);
}

} // namespace

// Connections per address: the one over the limit is told why and closed; other addresses are not affected.
void test_per_address_limit()
{
  Limits l;
  l.max_connections_per_address = 2;
  Harness t(l);
  t.connect(1, "10.0.0.1");
  t.connect(2, "10.0.0.1");
  t.expect_silence();
  t.connect(3, "10.0.0.1");
  std::string code3 = t.error_code(3);
  g_assert_cmpstr(code3.c_str(), ==, code::kServerFull);
  g_assert_cmpuint(t.closed.size(), ==, 1);
  g_assert_cmpuint(t.closed[0].client, ==, 3);
  g_assert_cmpuint(t.closed[0].code, ==, kCloseTryAgain);
  t.connect(4, "10.0.0.2");
  t.disconnect(3);
  t.disconnect(1);
  t.connect(5, "10.0.0.1"); // a place came free
  t.expect_silence();
  g_assert_cmpuint(t.closed.size(), ==, 1);
  g_assert_true(t.rooms.prometheus().find("pointcast_signaling_address_limit_total 1\n") !=
                std::string::npos);
}

// Reconnecting does not refill the rate bucket: the new connection continues the old one's state.
void test_rate_survives_reconnect()
{
  Limits l;
  l.max_messages_per_second = 5; // bucket of max(5 * 2, 10) = 10
  Harness t(l);
  t.connect(1, "10.0.0.1");
  for (int i = 0; i < 10; i++) t.expect_error(1, "{}", code::kMissingType);
  t.expect_error(1, "{}", code::kRateLimited);
  t.disconnect(1);
  t.connect(2, "10.0.0.1");
  t.expect_error(2, "{}", code::kRateLimited);
  t.connect(3, "10.0.0.2"); // another address has its own
  t.expect_error(3, "{}", code::kMissingType);
  t.disconnect(2);
  t.advance(1s); // 5 tokens back
  t.connect(4, "10.0.0.1");
  for (int i = 0; i < 4; i++) t.expect_error(4, "{}", code::kMissingType);
  // The entry of an address with nothing open goes once its bucket is full again.
  t.disconnect(3);
  t.disconnect(4);
  t.advance(3s);
  t.connect(5, "10.0.0.1");
  for (int i = 0; i < 10; i++) t.expect_error(5, "{}", code::kMissingType);
}

// A connection that did not present the token in its headers must send it in its register.
void test_token_in_register()
{
  Harness t;
  t.rooms.set_token("s3cret");
  for (const char *text : {R"({"type":"register","client_id":"a"})",
                           R"({"type":"register","client_id":"a","token":"s3cre"})",
                           R"({"type":"register","client_id":"a","token":"s3cret!"})",
                           R"({"type":"offer","target_id":"b","sdp":"v=0","token":"s3cret"})"}) {
    std::size_t closes = t.closed.size();
    t.connect(1, "", false);
    t.expect_error(1, text, code::kUnauthorized);
    g_assert_cmpuint(t.closed.size(), ==, closes + 1);
    g_assert_cmpuint(t.closed.back().code, ==, kClosePolicy);
    t.disconnect(1);
  }
  t.connect(2, "", false);
  t.send(2, R"({"type":"register","client_id":"a","room_id":"r","token":"s3cret"})");
  g_assert_cmpstr(type_name(t.take_one(2)), ==, "registered");
  t.connect(3, "", true); // the token came in the Authorization header
  t.send(3, R"({"type":"register","client_id":"b","room_id":"r"})");
  g_assert_cmpstr(type_name(t.take_one(3)), ==, "registered");
  // The token is not passed on to anyone.
  auto joined = t.take(2);
  g_assert_cmpuint(joined.size(), ==, 1);
  g_assert_cmpstr(type_name(joined[0]), ==, "peer_joined");
}

// Pending HTTP offers: bounded per address and in all; settled ones free their place.
void test_pending_offer_limits()
{
  Limits l;
  l.max_pending_offers = 3;
  l.max_pending_offers_per_address = 2;
  Harness t(l);
  t.reg_room("r", {{"ans", "answerer"}});
  auto offer = [&](const char *ip) {
    OfferStart s = t.rooms.begin_offer("r", kHttpOffer, "", t.now, ip);
    t.drain();
    if (s.offer_id) t.take(1);
    return s;
  };
  g_assert_cmpuint(offer("10.0.0.1").offer_id, !=, 0);
  g_assert_cmpuint(offer("10.0.0.1").offer_id, !=, 0);
  OfferStart third = offer("10.0.0.1");
  g_assert_cmpuint(third.offer_id, ==, 0);
  g_assert_cmpint(third.status, ==, 429);
  g_assert_cmpuint(offer("10.0.0.2").offer_id, !=, 0);
  OfferStart over = offer("10.0.0.3");
  g_assert_cmpint(over.status, ==, 503);
  t.advance(l.offer_timeout + 1s); // all three time out
  g_assert_cmpuint(t.offers.size(), ==, 3);
  t.take(1);
  g_assert_cmpuint(offer("10.0.0.1").offer_id, !=, 0);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, nullptr);
  pointcast::log::set_level(pointcast::log::Level::Error);
  g_test_add_func("/rooms/register-and-join", test_register_and_join);
  g_test_add_func("/rooms/relay-targeted", test_relay_targeted);
  g_test_add_func("/rooms/broadcast", test_broadcast);
  g_test_add_func("/rooms/peer-left", test_peer_left);
  g_test_add_func("/rooms/errors", test_errors);
  g_test_add_func("/rooms/size-limit", test_size_limit);
  g_test_add_func("/rooms/room-limit", test_room_limit);
  g_test_add_func("/rooms/max-clients", test_max_clients);
  g_test_add_func("/rooms/rate-limit-and-abuse", test_rate_limit_and_abuse);
  g_test_add_func("/rooms/strikes-decay", test_strikes_decay);
  g_test_add_func("/rooms/register-timeout", test_register_timeout);
  g_test_add_func("/rooms/offer-choice", test_offer_choice);
  g_test_add_func("/rooms/offer-answer-complete", test_offer_answer_complete);
  g_test_add_func("/rooms/offer-trickled-candidates-merged", test_offer_trickled_candidates_merged);
  g_test_add_func("/rooms/offer-candidates-bounded", test_offer_candidates_bounded);
  g_test_add_func("/rooms/offer-failures", test_offer_failures);
  g_test_add_func("/rooms/virtual-id-reserved", test_virtual_id_is_reserved);
  g_test_add_func("/rooms/duplicate-probe", test_duplicate_probe);
  g_test_add_func("/rooms/metrics-text", test_metrics_text);
  g_test_add_func("/rooms/per-address-limit", test_per_address_limit);
  g_test_add_func("/rooms/rate-survives-reconnect", test_rate_survives_reconnect);
  g_test_add_func("/rooms/token-in-register", test_token_in_register);
  g_test_add_func("/rooms/pending-offer-limits", test_pending_offer_limits);
  return g_test_run();
}
