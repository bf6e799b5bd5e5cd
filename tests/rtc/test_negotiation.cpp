// SPDX-License-Identifier: LGPL-2.1-or-later
/* The perfect-negotiation state machine (gst/rtc/negotiation.h), without GStreamer: two
 * Negotiators drive two model webrtcbins that enforce webrtcbin 1.22's rules (no rollback:
 * a remote offer in have-local-offer is an error), over ordered signaling channels. */
#include "rtc/negotiation.h"

#include "check.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <random>
#include <string>
#include <vector>

using namespace pointcast::negotiation;

namespace {

enum class BinState { Stable, HaveLocalOffer, HaveRemoteOffer };

struct Msg {
  enum Kind { Offer, Answer, Candidate } kind;
  int offer_id = 0; // the offer (or the offer answered)
  int gen = 0;      // sender's webrtcbin generation
  int need = 0;     // Offer: the offerer's request count when it created it
};

/* One side: a Negotiator, a model webrtcbin, and webrtcbin's asynchronous replies. */
struct Side {
  std::string id;
  Negotiator neg;
  bool trickle;
  // The model webrtcbin; a Recreate starts generation gen + 1.
  int gen = 0;
  BinState bin = BinState::Stable;
  int local_offer_applied = 0; // id of the offer set locally
  int created_offer = 0, created_need = 0;
  int remote_offer = 0, remote_gen = -1;
  bool has_remote = false;
  int sent_offer = 0;
  bool bin_negotiated = false;
  bool candidates_due = false;
  // Replies from webrtcbin not reported yet (tagged by generation: a replaced bin's are dropped).
  struct Reply {
    bool offer;
    int gen, need;
  };
  std::deque<Reply> replies;
  int needs = 0, satisfied = 0;
  int exchanges = 0, recreated = 0, glares = 0, dropped_candidates = 0;
  std::vector<std::string> errors;
  Side(std::string i, bool polite, bool t) : id(std::move(i)), neg({polite, t}), trickle(t) {}
};

struct World {
  Side a, b;
  std::deque<Msg> a_to_b, b_to_a;
  int next_offer = 1;
  bool restarts_allowed = false;
  World(bool trickle_a = true, bool trickle_b = true)
      : a("alice", is_polite("alice", "bob"), trickle_b),
        b("bob", is_polite("bob", "alice"), trickle_a)
  {
  }
  Side &other(Side &s) { return &s == &a ? b : a; }
  std::deque<Msg> &out(Side &s) { return &s == &a ? a_to_b : b_to_a; }

  void error(Side &s, const std::string &what) { s.errors.push_back(what); }

  // Carries out actions for s; `incoming` is the message that caused them, if any.
  void run(Side &s, const std::vector<Action> &actions, const Msg *incoming = nullptr)
  {
    for (Action act : actions) {
      switch (act) {
      case Action::CreateOffer:
        if (s.bin != BinState::Stable) error(s, "create-offer while not stable");
        s.replies.push_back({true, s.gen, s.needs});
        break;
      case Action::ApplyLocalOffer:
        if (s.bin == BinState::HaveRemoteOffer) error(s, "local offer in have-remote-offer");
        s.bin = BinState::HaveLocalOffer;
        s.local_offer_applied = s.created_offer;
        // Gathering starts here; candidates follow the description (rtcpeer queues the send
        // before applying).
        if (!s.trickle) break;
        if (s.sent_offer == s.created_offer)
          out(s).push_back({Msg::Candidate, s.created_offer, s.gen});
        else
          s.candidates_due = true;
        break;
      case Action::SendOffer:
        out(s).push_back({Msg::Offer, s.created_offer, s.gen, s.created_need});
        s.sent_offer = s.created_offer;
        if (s.candidates_due && s.trickle)
          out(s).push_back({Msg::Candidate, s.created_offer, s.gen});
        s.candidates_due = false;
        break;
      case Action::ApplyRemoteOffer:
        if (s.bin == BinState::HaveLocalOffer)
          error(s, "remote offer in have-local-offer: would need a rollback");
        s.bin = BinState::HaveRemoteOffer;
        s.remote_offer = incoming ? incoming->offer_id : -1;
        s.remote_gen = incoming ? incoming->gen : -1;
        s.has_remote = true;
        break;
      case Action::CreateAnswer: s.replies.push_back({false, s.gen, 0}); break;
      case Action::ApplyLocalAnswer:
        if (s.bin != BinState::HaveRemoteOffer) error(s, "local answer outside have-remote-offer");
        s.bin = BinState::Stable;
        s.bin_negotiated = true;
        break;
      case Action::SendAnswer:
        out(s).push_back({Msg::Answer, s.remote_offer, s.gen});
        if (s.trickle) out(s).push_back({Msg::Candidate, s.remote_offer, s.gen});
        break;
      case Action::ApplyRemoteAnswer:
        if (s.bin != BinState::HaveLocalOffer)
          error(s, "remote answer outside have-local-offer");
        else if (!incoming || incoming->offer_id != s.local_offer_applied)
          error(s, "answer to an offer that is not applied");
        s.bin = BinState::Stable;
        s.has_remote = true;
        s.remote_gen = incoming ? incoming->gen : -1;
        s.exchanges++;
        s.bin_negotiated = true;
        break;
      case Action::Recreate:
        // Only a restarted remote may cost a negotiated connection.
        if (s.bin_negotiated && !restarts_allowed) error(s, "dropped a negotiated connection");
        s.bin_negotiated = false;
        s.gen++;
        s.recreated++;
        s.bin = BinState::Stable;
        s.has_remote = false;
        s.local_offer_applied = 0;
        break;
      }
    }
  }

  static std::string fp(int gen, const Side &s) { return s.id + "-" + std::to_string(gen); }

  void deliver(Side &to)
  {
    Side &from = other(to);
    auto &q = out(from);
    Msg m = q.front();
    q.pop_front();
    switch (m.kind) {
    case Msg::Offer:
      if (to.neg.making_offer() || to.neg.state() == Negotiator::State::HaveLocalOffer) to.glares++;
      run(to, to.neg.remote_offer(fp(m.gen, from)), &m);
      break;
    case Msg::Answer: {
      auto acts = to.neg.remote_answer(fp(m.gen, from));
      bool answers = !acts.empty();
      run(to, acts, &m);
      // The offerer's requests up to when it created the offer are met.
      if (answers)
        for (auto &o : done_offers)
          if (o.first == m.offer_id && o.second > to.satisfied) to.satisfied = o.second;
      break;
    }
    case Msg::Candidate:
      switch (to.neg.remote_candidate()) {
      case CandidateFate::Add:
        if (!to.has_remote || to.remote_gen != m.gen)
          error(to, "candidate added to the wrong remote description");
        break;
      case CandidateFate::Queue:
        break; // the model adds queued candidates when the remote description is set: fine
      case CandidateFate::Drop: to.dropped_candidates++; break;
      }
      break;
    }
  }

  std::vector<std::pair<int, int>> done_offers; // offer id -> the creator's need count

  void reply(Side &s)
  {
    auto r = s.replies.front();
    s.replies.pop_front();
    if (r.gen != s.gen) return; // from a replaced webrtcbin: the session drops it
    if (r.offer) {
      s.created_offer = next_offer++;
      s.created_need = r.need;
      done_offers.push_back({s.created_offer, r.need});
      run(s, s.neg.offer_created());
    } else {
      run(s, s.neg.answer_created());
    }
  }

  void need(Side &s)
  {
    s.needs++;
    run(s, s.neg.negotiation_needed());
  }

  // Runs everything queued, in an order chosen by rng; false if it did not settle.
  bool settle(std::mt19937 &rng, int limit = 10000)
  {
    for (int step = 0; step < limit; step++) {
      std::vector<int> choices;
      if (!a_to_b.empty()) choices.push_back(0);
      if (!b_to_a.empty()) choices.push_back(1);
      if (!a.replies.empty()) choices.push_back(2);
      if (!b.replies.empty()) choices.push_back(3);
      if (choices.empty()) return true;
      switch (choices[rng() % choices.size()]) {
      case 0: deliver(b); break;
      case 1: deliver(a); break;
      case 2: reply(a); break;
      case 3: reply(b); break;
      }
    }
    return false;
  }

  bool quiet(Side &s)
  {
    return s.neg.state() == Negotiator::State::Stable && !s.neg.making_offer() &&
        !s.neg.pending() && s.bin == BinState::Stable && s.errors.empty();
  }
};

void print_errors(World &w)
{
  for (Side *s : {&w.a, &w.b})
    for (auto &e : s->errors) std::fprintf(stderr, "  %s: %s\n", s->id.c_str(), e.c_str());
}

void test_polite_rule()
{
  CHECK(is_polite("alice", "bob"));
  CHECK(!is_polite("bob", "alice"));
  // Byte-wise: upper case sorts before lower case, shorter prefix first.
  CHECK(is_polite("Zed", "abe"));
  CHECK(is_polite("peer", "peer-2"));
}

void test_one_round_trip_either_side()
{
  std::mt19937 rng(1);
  for (int who = 0; who < 2; who++) {
    World w;
    Side &offerer = who ? w.b : w.a;
    w.need(offerer);
    CHECK(w.settle(rng));
    CHECK(w.quiet(w.a) && w.quiet(w.b));
    CHECK(offerer.exchanges == 1);
    CHECK(offerer.satisfied == 1);
    CHECK(w.a.recreated == 0 && w.b.recreated == 0);
    CHECK(w.a.neg.negotiated() && w.b.neg.negotiated());
  }
}

// Both offer at once, each side's offer reaching the other before its answer could: the
// impolite side's offer wins, the polite side answers it and then offers again.
void test_glare()
{
  World w;
  w.need(w.a); // alice is polite
  w.need(w.b);
  w.reply(w.a); // both offers created and sent
  w.reply(w.b);
  CHECK(w.a.neg.state() == Negotiator::State::HaveLocalOffer);
  CHECK(w.a.bin == BinState::Stable); // polite: sent, not applied
  CHECK(w.b.bin == BinState::HaveLocalOffer);
  w.deliver(w.b); // bob (impolite) ignores alice's offer
  CHECK(w.b.neg.state() == Negotiator::State::HaveLocalOffer);
  w.deliver(w.a); // alice withdraws hers and answers
  CHECK(w.a.neg.state() == Negotiator::State::HaveRemoteOffer);
  CHECK(w.a.neg.pending());
  std::mt19937 rng(2);
  CHECK(w.settle(rng));
  print_errors(w);
  CHECK(w.quiet(w.a) && w.quiet(w.b));
  CHECK(w.b.exchanges == 1); // bob's offer answered
  CHECK(w.a.exchanges == 1); // alice's second offer answered
  CHECK(w.a.satisfied == 1 && w.b.satisfied == 1);
  CHECK(w.a.recreated == 0 && w.b.recreated == 0);
}

// Glare while the polite side's offer is still being created: it is dropped when it comes.
void test_glare_while_creating()
{
  World w;
  w.need(w.a);
  w.need(w.b);
  w.reply(w.b);   // bob's offer sent
  w.deliver(w.a); // alice still creating hers
  CHECK(w.a.neg.state() == Negotiator::State::HaveRemoteOffer);
  w.reply(w.a); // alice's offer created: withdrawn
  CHECK(w.a_to_b.empty());
  std::mt19937 rng(3);
  CHECK(w.settle(rng));
  print_errors(w);
  CHECK(w.quiet(w.a) && w.quiet(w.b));
  CHECK(w.a.satisfied == 1 && w.b.satisfied == 1);
}

// A non-trickling remote (aiortc): the polite side's first offer is applied at once (its
// candidates go in the SDP), so withdrawing it takes a fresh webrtcbin.
void test_glare_without_trickle()
{
  World w(false, false);
  w.need(w.a);
  w.need(w.b);
  w.reply(w.a);
  w.reply(w.b);
  CHECK(w.a.bin == BinState::HaveLocalOffer);
  w.deliver(w.b);
  w.deliver(w.a);
  CHECK(w.a.recreated == 1);
  std::mt19937 rng(4);
  CHECK(w.settle(rng));
  print_errors(w);
  CHECK(w.quiet(w.a) && w.quiet(w.b));
  CHECK(w.a.satisfied == 1 && w.b.satisfied == 1);
}

// Connected, then each side renegotiates (new track), one after the other and in glare.
void test_renegotiation()
{
  std::mt19937 rng(5);
  World w;
  w.need(w.b);
  CHECK(w.settle(rng));
  for (Side *s : {&w.a, &w.b}) {
    w.need(*s);
    CHECK(w.settle(rng));
    CHECK(w.quiet(w.a) && w.quiet(w.b));
  }
  CHECK(w.a.satisfied == 1 && w.b.satisfied == 2);
  // Renegotiation glare: nobody may need a fresh webrtcbin (that would drop the connection).
  w.need(w.a);
  w.need(w.b);
  w.reply(w.a);
  w.reply(w.b);
  CHECK(w.settle(rng));
  print_errors(w);
  CHECK(w.quiet(w.a) && w.quiet(w.b));
  CHECK(w.a.satisfied == 2 && w.b.satisfied == 3);
  CHECK(w.a.recreated == 0 && w.b.recreated == 0);
  // Also without trickle: once negotiated the polite side defers, so still no Recreate.
  World v(false, false);
  v.need(v.b);
  CHECK(v.settle(rng));
  v.need(v.a);
  v.need(v.b);
  v.reply(v.a);
  v.reply(v.b);
  CHECK(v.settle(rng));
  CHECK(v.quiet(v.a) && v.quiet(v.b));
  CHECK(v.a.recreated == 0 && v.b.recreated == 0);
}

// Rollback in the W3C sense: the polite side's outstanding offer is withdrawn and its
// negotiation comes back after the remote's; the ignored offer's answer never appears.
void test_rollback_redo()
{
  World w;
  w.need(w.a);
  w.reply(w.a);
  w.need(w.b);
  w.reply(w.b); // both sent; deliver bob's first
  w.deliver(w.a);
  CHECK(w.a.neg.pending());
  CHECK(w.a.bin == BinState::HaveRemoteOffer); // webrtcbin never had to leave have-local-offer
  w.deliver(w.b);                              // alice's withdrawn offer: ignored by bob
  CHECK(w.b.neg.state() == Negotiator::State::HaveLocalOffer);
  std::mt19937 rng(6);
  CHECK(w.settle(rng));
  CHECK(w.quiet(w.a) && w.quiet(w.b));
  CHECK(w.a.exchanges == 1 && w.a.satisfied == 1);
}

// The remote restarted (a new DTLS fingerprint after a completed negotiation): Recreate.
void test_restart()
{
  std::mt19937 rng(7);
  World w;
  w.restarts_allowed = true;
  w.need(w.a);
  CHECK(w.settle(rng));
  // Bob restarts: a fresh webrtcbin and negotiator, offering again.
  w.b.neg.reset();
  w.b.gen++;
  w.b.bin = BinState::Stable;
  w.b.bin_negotiated = false;
  w.need(w.b);
  CHECK(w.settle(rng));
  print_errors(w);
  CHECK(w.a.recreated == 1);
  CHECK(w.quiet(w.a) && w.quiet(w.b));
  // The same fingerprint again is a renegotiation, not a restart.
  w.need(w.b);
  CHECK(w.settle(rng));
  CHECK(w.a.recreated == 1);
}

// The impolite side's first offer is still being created (rtcpeer waits for its DTLS key) when
// the polite side's arrives: nothing of ours went out, so the impolite side answers, and the
// polite side keeps its offer (no withdrawal, no new connection on its side); bob's own need is met by the
// offer he makes once that exchange is done (redo_withdrawn).
void test_impolite_answers_while_creating()
{
  World w;
  w.need(w.a); // alice is polite
  w.need(w.b);
  w.reply(w.a);   // alice's offer sent
  w.deliver(w.b); // bob still creating his: he answers alice's, on a fresh webrtcbin
  CHECK(w.b.neg.state() == Negotiator::State::HaveRemoteOffer);
  CHECK(w.b.recreated == 1);
  w.reply(w.b); // bob's offer, from the replaced webrtcbin: dropped, never sent
  CHECK(w.b_to_a.empty());
  CHECK(w.a.neg.state() == Negotiator::State::HaveLocalOffer);
  std::mt19937 rng(5);
  CHECK(w.settle(rng));
  print_errors(w);
  CHECK(w.quiet(w.a) && w.quiet(w.b));
  CHECK(w.a.exchanges == 1 && w.b.exchanges == 1); // alice's offer, then bob's again
  CHECK(w.a.satisfied == 1 && w.b.satisfied == 1);
  CHECK(w.a.recreated == 0 && w.b.recreated == 1);
  CHECK(w.a.neg.negotiated() && w.b.neg.negotiated());
  // Once negotiated, an offer being created is a real glare again: the impolite side ignores.
  w.need(w.a);
  w.need(w.b);
  w.reply(w.a);
  w.deliver(w.b);
  CHECK(w.b.neg.state() == Negotiator::State::Stable && w.b.neg.making_offer());
  CHECK(w.settle(rng));
  print_errors(w);
}

// Without redo_withdrawn the polite side's withdrawn offer is not made again: one exchange.
void test_no_redo()
{
  Negotiator polite({true, true, false}), impolite({false, true, false});
  CHECK(polite.negotiation_needed().size() == 1);
  CHECK(impolite.negotiation_needed().size() == 1);
  polite.offer_created();
  impolite.offer_created();
  CHECK(impolite.remote_offer("p").empty());
  auto acts = polite.remote_offer("i");
  CHECK(acts.size() == 2 && acts[0] == Action::ApplyRemoteOffer);
  CHECK(!polite.pending());
  acts = polite.answer_created();
  CHECK(acts.size() == 2); // apply and send; no new offer
  acts = impolite.remote_answer("p");
  CHECK(acts.size() == 1 && acts[0] == Action::ApplyRemoteAnswer);
  CHECK(polite.negotiated() && impolite.negotiated());
  // Asking explicitly still works.
  CHECK(polite.negotiation_needed().size() == 1);
}

void test_unexpected_answer()
{
  Negotiator n({true, true});
  CHECK(n.remote_answer("fp").empty()); // nothing was offered
  CHECK(n.state() == Negotiator::State::Stable);
  CHECK(n.answer_created().empty());
}

// A re-offer on a connected pair answered by a restarted peer (a new process: another
// fingerprint and ufrag) is told apart from the same connection's answer.
void test_answer_from_new_connection()
{
  Negotiator n({false, true});
  CHECK(!n.new_connection("fpA u1")); // nothing negotiated yet: any identity is the first
  n.negotiation_needed();
  n.offer_created();
  n.remote_answer("fpA u1");
  CHECK(n.negotiated());
  CHECK(!n.new_connection("fpA u1"));
  CHECK(!n.new_connection("")); // an SDP without either line says nothing
  n.negotiation_needed();
  n.offer_created();
  CHECK(n.new_connection("fpB u2"));
  CHECK(n.new_connection("fpA u2"));            // a fresh webrtcbin of the same process
  CHECK(n.remote_answer("fpA u1").size() == 1); // the same connection: applied
}

// Random orders of everything: offers from either side at any moment, replies and messages
// interleaved; every run settles, both sides stable, every request met, no rollback needed.
void test_fuzz()
{
  int runs = 0, glare = 0, recreates = 0;
  for (unsigned seed = 0; seed < 3000; seed++) {
    std::mt19937 rng(seed);
    bool trickle = seed % 4 != 3;
    World w(trickle, trickle);
    int wants = 1 + rng() % 6;
    for (int i = 0; i < 400 &&
         (wants > 0 || !w.a_to_b.empty() || !w.b_to_a.empty() || !w.a.replies.empty() ||
          !w.b.replies.empty());
         i++) {
      unsigned r = rng() % 10;
      if (wants > 0 && r < 3) {
        w.need(rng() % 2 ? w.a : w.b);
        wants--;
        continue;
      }
      w.settle(rng, 1); // one step
    }
    bool settled = w.settle(rng);
    bool ok = settled && w.quiet(w.a) && w.quiet(w.b) && w.a.satisfied == w.a.needs &&
        w.b.satisfied == w.b.needs && w.a.neg.negotiated() && w.b.neg.negotiated();
    if (!ok) {
      std::fprintf(stderr, "fuzz seed %u: settled %d, a %d/%d, b %d/%d\n", seed, settled,
                   w.a.satisfied, w.a.needs, w.b.satisfied, w.b.needs);
      print_errors(w);
      check_failures()++;
      break;
    }
    runs++;
    glare += w.a.glares + w.b.glares > 0;
    recreates += w.a.recreated + w.b.recreated;
  }
  std::printf("fuzz: %d runs settled (%d with glare, %d fresh webrtcbins, all without trickle)\n",
              runs, glare, recreates);
}

void test_payload_types()
{
  // Firefox: VP8 as 120, VP9 as 121, H264 as 126 (mode 1) and 97 (mode 0).
  const char *ff =
      "v=0\r\no=mozilla 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
      "a=fingerprint:sha-256 AA:BB\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125 126 127 97 98\r\n"
      "a=mid:0\r\n"
      "a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\n"
      "a=fmtp:97 profile-level-id=42e01f;level-asymmetry-allowed=1\r\n"
      "a=fmtp:120 max-fs=12288;max-fr=60\r\n"
      "a=rtcp-fb:120 nack\r\na=rtcp-fb:120 nack pli\r\na=rtcp-fb:120 ccm fir\r\n"
      "a=rtpmap:120 VP8/90000\r\na=rtpmap:124 rtx/90000\r\na=rtpmap:121 VP9/90000\r\n"
      "a=rtpmap:126 H264/90000\r\na=rtpmap:97 H264/90000\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0\r\n"
      "a=rtpmap:109 opus/48000/2\r\na=rtpmap:9 G722/8000/1\r\n"
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
  auto kinds = media_kinds(ff);
  CHECK(kinds.size() == 3 && kinds[0] == "video" && kinds[1] == "audio" &&
        kinds[2] == "application");
  auto video = offered_codecs(ff, 0);
  CHECK(video.size() == 8);
  CHECK(video[0].pt == 120 && video[0].name == "VP8" && video[0].clock_rate == 90000);
  auto vp8 = match_codec(video, "vp8");
  CHECK(vp8 && vp8->pt == 120);
  CHECK(vp8 && vp8->fmtp == "max-fs=12288;max-fr=60");
  CHECK(vp8 && vp8->rtcp_fb.size() == 3 && vp8->rtcp_fb[1] == "nack pli");
  auto h264 = match_codec(video, "H264");
  CHECK(h264 && h264->pt == 126); // packetization-mode=1 preferred over the earlier-listed 97
  auto vp9 = match_codec(video, "VP9");
  CHECK(vp9 && vp9->pt == 121);
  // Chromium: baseline (42001f) before constrained baseline (42e01f), high (640c1f) after; the
  // stream is x264's constrained baseline, so 106 (mode 1), not the first-listed 102.
  const char *chrome = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                       "m=video 9 UDP/TLS/RTP/SAVPF 96 102 104 106 108 112\r\n"
                       "a=rtpmap:96 VP8/90000\r\n"
                       "a=rtpmap:102 H264/90000\r\n"
                       "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;"
                       "profile-level-id=42001f\r\n"
                       "a=rtpmap:104 H264/90000\r\n"
                       "a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;"
                       "profile-level-id=42001f\r\n"
                       "a=rtpmap:106 H264/90000\r\n"
                       "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;"
                       "profile-level-id=42e01f\r\n"
                       "a=rtpmap:108 H264/90000\r\n"
                       "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;"
                       "profile-level-id=42e01f\r\n"
                       "a=rtpmap:112 H264/90000\r\n"
                       "a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;"
                       "profile-level-id=640c1f\r\n";
  auto cr = match_codec(offered_codecs(chrome, 0), "h264");
  CHECK(cr && cr->pt == 106);
  // Only high profile in mode 1: still the mode-1 one.
  auto high = offered_codecs(chrome, 0);
  high.erase(high.begin() + 3); // 106
  high.erase(high.begin() + 1); // 102
  auto hi = match_codec(high, "h264");
  CHECK(hi && hi->pt == 112);
  CHECK(!match_codec(video, "AV1"));
  auto audio = offered_codecs(ff, 1);
  auto opus = match_codec(audio, "OPUS");
  CHECK(opus && opus->pt == 109 && opus->clock_rate == 48000 && opus->channels == 2);
  CHECK(offered_codecs(ff, 2).empty());
  CHECK(offered_codecs(ff, 3).empty());
  CHECK(fingerprint(ff) == "a=fingerprint:sha-256 AA:BB");
  CHECK(fingerprint("v=0\r\n").empty());
  // Same certificate, new ICE credentials (a rebuilt webrtcbin in the same process): another
  // connection; the same credentials (a renegotiation): the same one.
  std::string a = "v=0\r\na=fingerprint:sha-256 AA\r\nm=application 9\r\na=ice-ufrag:u1\r\n";
  std::string b = "v=0\r\na=fingerprint:sha-256 AA\r\nm=application 9\r\na=ice-ufrag:u2\r\n";
  CHECK(connection_identity(a) != connection_identity(b));
  CHECK(connection_identity(a) == connection_identity(a + "m=video 9\r\na=ice-ufrag:u1\r\n"));
  CHECK(connection_identity("v=0\r\n").empty());
  // LF-only line ends and a missing rtpmap are tolerated.
  auto odd = offered_codecs("m=video 9 RTP/AVP 96 x\na=rtpmap:96 vp8/90000\n", 0);
  CHECK(odd.size() == 1 && odd[0].name == "VP8");
}

} // namespace

bool sdp_lines_equal_count(const std::string &a, const std::string &b)
{
  return std::count(a.begin(), a.end(), '\n') == std::count(b.begin(), b.end(), '\n');
}

// Our re-offer keeps the numbers the live m-line has (webrtcbin picks RED/ULPFEC/RTX afresh).
void test_keep_payload_types()
{
  // Our answer to a peer that numbered VP8 120, RED 123, ULPFEC 122, RTX 103 and 101.
  const std::string answer = "v=0\r\n"
                             "m=video 9 UDP/TLS/RTP/SAVPF 120 123 122 103 101\r\n"
                             "a=mid:0\r\n"
                             "a=rtpmap:120 VP8/90000\r\n"
                             "a=rtcp-fb:120 nack\r\n"
                             "a=rtpmap:123 red/90000\r\n"
                             "a=rtpmap:122 ulpfec/90000\r\n"
                             "a=rtpmap:103 rtx/90000\r\n"
                             "a=fmtp:103 apt=120\r\n"
                             "a=rtpmap:101 rtx/90000\r\n"
                             "a=fmtp:101 apt=123\r\n"
                             "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                             "a=mid:1\r\n";
  // webrtcbin's re-offer adding a second track (VP8 as our 96): the lowest free numbers.
  const std::string reoffer = "v=0\r\n"
                              "m=video 9 UDP/TLS/RTP/SAVPF 120 97 98 99 100\r\n"
                              "a=mid:0\r\n"
                              "a=rtpmap:120 VP8/90000\r\n"
                              "a=rtcp-fb:120 nack\r\n"
                              "a=rtpmap:97 red/90000\r\n"
                              "a=rtpmap:98 ulpfec/90000\r\n"
                              "a=rtpmap:99 rtx/90000\r\n"
                              "a=fmtp:99 apt=120\r\n"
                              "a=rtpmap:100 rtx/90000\r\n"
                              "a=fmtp:100 apt=97\r\n"
                              "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                              "a=mid:1\r\n"
                              "m=video 9 UDP/TLS/RTP/SAVPF 96 101 102 103 104\r\n"
                              "a=mid:video2\r\n"
                              "a=rtpmap:96 VP8/90000\r\n"
                              "a=rtcp-fb:96 nack pli\r\n"
                              "a=rtpmap:101 red/90000\r\n"
                              "a=rtpmap:102 ulpfec/90000\r\n"
                              "a=rtpmap:103 rtx/90000\r\n"
                              "a=fmtp:103 apt=96\r\n"
                              "a=rtpmap:104 rtx/90000\r\n"
                              "a=fmtp:104 apt=101\r\n"
                              "a=fmtp:101 96/96\r\n";
  std::string kept = keep_payload_types(reoffer, answer);
  auto live = offered_codecs(kept, 0);
  CHECK(live.size() == 5);
  if (live.size() == 5) {
    CHECK(live[0].pt == 120 && live[0].name == "VP8" && live[0].rtcp_fb.size() == 1);
    CHECK(live[1].pt == 123 && live[1].name == "RED");
    CHECK(live[2].pt == 122 && live[2].name == "ULPFEC");
    CHECK(live[3].pt == 103 && live[3].fmtp == "apt=120");
    CHECK(live[4].pt == 101 && live[4].fmtp == "apt=123");
  }
  // The new track takes the live numbers for the same things (RED, ULPFEC, the RTX of RED, as
  // webrtcbin numbers a bundle); its RTX of VP8 96 was 103, the live RTX of 120 now: a free one.
  auto added = offered_codecs(kept, 2);
  CHECK(added.size() == 5);
  if (added.size() == 5) {
    CHECK(added[0].pt == 96 && added[0].rtcp_fb.size() == 1);
    CHECK(added[1].name == "RED" && added[1].pt == 123 && added[1].fmtp == "96/96");
    CHECK(added[2].name == "ULPFEC" && added[2].pt == 122);
    CHECK(added[3].pt == 105 && added[3].fmtp == "apt=96");
    CHECK(added[4].pt == 101 && added[4].fmtp == "apt=123");
  }
  CHECK(sdp_lines_equal_count(kept, reoffer));
  CHECK(kept.find("a=mid:video2\r\n") != std::string::npos);
  // Nothing to change: the offer as it is.
  CHECK(keep_payload_types(kept, answer) == kept);
  CHECK(keep_payload_types(reoffer, "v=0\r\n") == reoffer);
  // A section whose mid changed kind or is new keeps its own numbers.
  CHECK(offered_codecs(keep_payload_types(reoffer, "m=audio 9 X 111\r\na=mid:0\r\n"), 0)[1].pt ==
        97);
}

// An answer to a re-offer keeps the DTLS role in use (webrtcbin answers actpass with active).
void test_keep_dtls_role()
{
  const std::string active = "v=0\r\nm=video 9 X 96\r\na=setup:active\r\n";
  const std::string passive = "v=0\r\nm=video 9 X 96\r\na=setup:passive\r\n";
  const std::string actpass = "v=0\r\nm=video 9 X 96\r\na=setup:actpass\r\n"
                              "m=application 9 Y webrtc-datachannel\r\na=setup:actpass\r\n";
  CHECK(dtls_role(active, actpass) == "active");  // we answered active
  CHECK(dtls_role(actpass, active) == "passive"); // we offered; the remote took active
  CHECK(dtls_role(actpass, passive) == "active");
  CHECK(dtls_role(actpass, actpass).empty());
  CHECK(dtls_role("v=0\r\n", "v=0\r\n").empty());
  // webrtcbin's answer to an actpass re-offer, from the server of the connection.
  std::string webrtcbin_answer = "v=0\r\nm=video 9 X 96\r\na=setup:active\r\na=mid:0\r\n"
                                 "m=application 9 Y webrtc-datachannel\r\na=setup:active\r\n";
  std::string kept = keep_dtls_role(webrtcbin_answer, "passive");
  CHECK(kept.find("a=setup:active") == std::string::npos);
  CHECK(kept.find("a=setup:passive\r\na=mid:0\r\n") != std::string::npos);
  CHECK(kept.rfind("a=setup:passive\r\n") > kept.find("m=application"));
  CHECK(keep_dtls_role(webrtcbin_answer, "") == webrtcbin_answer);
  CHECK(keep_dtls_role(webrtcbin_answer, "active") == webrtcbin_answer);
}

void test_unanswered_feedback()
{
  // A sending rtcpeer's offer (VP8 96 with RED 97, ULPFEC 98, RTX 99/100) and webrtcbin 1.22's
  // answer from a receiver without a track of its own: no generic NACK, RTX, RED or ULPFEC.
  const std::string offer = "v=0\r\n"
                            "a=group:BUNDLE video0 application1\r\n"
                            "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100\r\n"
                            "a=sendrecv\r\n"
                            "a=rtpmap:96 VP8/90000\r\n"
                            "a=rtcp-fb:96 nack\r\n"
                            "a=rtcp-fb:96 nack pli\r\n"
                            "a=rtcp-fb:96 ccm fir\r\n"
                            "a=rtcp-fb:96 transport-cc\r\n"
                            "a=rtcp-fb:96 goog-remb\r\n"
                            "a=rtpmap:97 red/90000\r\n"
                            "a=rtpmap:98 ulpfec/90000\r\n"
                            "a=rtpmap:99 rtx/90000\r\n"
                            "a=fmtp:99 apt=96\r\n"
                            "a=rtpmap:100 rtx/90000\r\n"
                            "a=fmtp:100 apt=97\r\n"
                            "a=mid:video0\r\n"
                            "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                            "a=mid:application1\r\n";
  const std::string bare = "v=0\r\n"
                           "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
                           "a=mid:video0\r\n"
                           "a=rtpmap:96 VP8/90000\r\n"
                           "a=rtcp-fb:96 nack pli\r\n"
                           "a=rtcp-fb:96 ccm fir\r\n"
                           "a=rtcp-fb:96 transport-cc\r\n"
                           "a=recvonly\r\n"
                           "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                           "a=mid:application1\r\n";
  auto missing = unanswered_feedback(offer, bare);
  CHECK(missing.size() == 1);
  CHECK(!missing.empty() && missing[0] == "video0: nack rtx red ulpfec");
  // The answer rtcpeer now makes: everything it does (goog-remb it does not: not asked for).
  const std::string full = "v=0\r\n"
                           "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 100 99\r\n"
                           "a=mid:video0\r\n"
                           "a=rtpmap:96 VP8/90000\r\n"
                           "a=rtcp-fb:96 nack\r\n"
                           "a=rtcp-fb:96 nack pli\r\n"
                           "a=rtcp-fb:96 ccm fir\r\n"
                           "a=rtcp-fb:96 transport-cc\r\n"
                           "a=rtpmap:97 red/90000\r\n"
                           "a=rtpmap:98 ulpfec/90000\r\n"
                           "a=rtpmap:100 rtx/90000\r\n"
                           "a=fmtp:100 apt=97\r\n"
                           "a=rtpmap:99 rtx/90000\r\n"
                           "a=fmtp:99 apt=96\r\n"
                           "a=recvonly\r\n";
  CHECK(unanswered_feedback(offer, full).empty());
  // RTX for another codec than the answered one does not count.
  std::string rtx_of_red = full;
  rtx_of_red.replace(rtx_of_red.find("a=fmtp:99 apt=96"), 16, "a=fmtp:99 apt=97");
  missing = unanswered_feedback(offer, rtx_of_red);
  CHECK(missing.size() == 1 && missing[0] == "video0: rtx");
  // What the offer does not propose is not missing (aiortc: VP8 97 with nack, nack pli, RTX;
  // no FEC); a rejected section and audio are not looked at; no mid: the m-line's index.
  const std::string aiortc = "v=0\r\n"
                             "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
                             "a=rtpmap:111 opus/48000/2\r\n"
                             "a=rtcp-fb:111 nack\r\n"
                             "m=video 9 UDP/TLS/RTP/SAVPF 97 98\r\n"
                             "a=rtpmap:97 VP8/90000\r\n"
                             "a=rtcp-fb:97 nack\r\n"
                             "a=rtcp-fb:97 nack pli\r\n"
                             "a=rtcp-fb:97 goog-remb\r\n"
                             "a=rtpmap:98 rtx/90000\r\n"
                             "a=fmtp:98 apt=97\r\n"
                             "m=video 9 UDP/TLS/RTP/SAVPF 97\r\n"
                             "a=rtpmap:97 VP8/90000\r\n"
                             "a=rtcp-fb:97 nack\r\n";
  const std::string aiortc_answer = "v=0\r\n"
                                    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
                                    "a=rtpmap:111 OPUS/48000/2\r\n"
                                    "m=video 9 UDP/TLS/RTP/SAVPF 97\r\n"
                                    "a=rtpmap:97 VP8/90000\r\n"
                                    "a=rtcp-fb:97 nack pli\r\n"
                                    "m=video 0 UDP/TLS/RTP/SAVPF 97\r\n"
                                    "a=rtpmap:97 VP8/90000\r\n";
  missing = unanswered_feedback(aiortc, aiortc_answer);
  CHECK(missing.size() == 1 && missing[0] == "1: nack rtx");
  // Hostile or broken input: nothing to say, no crash.
  CHECK(unanswered_feedback("", "").empty());
  CHECK(unanswered_feedback(offer, "v=0\r\nm=video\r\n").empty());
  CHECK(unanswered_feedback("m=video 9 X 96\r\na=rtpmap:96 VP8\r\na=rtcp-fb:96 nack\r\n",
                            "m=video 9 X 96\r\na=rtpmap:96 VP8\r\n")
            .size() == 1);
}

int main()
{
  test_polite_rule();
  test_one_round_trip_either_side();
  test_glare();
  test_glare_while_creating();
  test_impolite_answers_while_creating();
  test_glare_without_trickle();
  test_renegotiation();
  test_rollback_redo();
  test_restart();
  test_no_redo();
  test_unexpected_answer();
  test_answer_from_new_connection();
  test_fuzz();
  test_payload_types();
  test_keep_payload_types();
  test_keep_dtls_role();
  test_unanswered_feedback();
  if (check_failures())
    std::fprintf(stderr, "%d checks failed\n", check_failures());
  else
    std::printf("all negotiation checks passed\n");
  return check_failures() ? 1 : 0;
}
