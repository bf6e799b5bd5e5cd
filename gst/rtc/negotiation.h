// SPDX-License-Identifier: LGPL-2.1-or-later
/* Perfect negotiation (W3C webrtc-pc, "perfect negotiation example") for one peer pair, as a pure
 * state machine: events in, actions out, no GStreamer, no timers. The session executes the
 * actions on its webrtcbin in order.
 *
 * Either side may offer at any time. Of the two, the side whose id is byte-wise smaller is
 * polite. On glare (an offer arrives while we have one of our own) the impolite side ignores the
 * incoming offer and the polite side withdraws its own and answers. A first offer that webrtcbin
 * is still creating has not been sent, so either side drops it and answers (the impolite side on
 * a fresh webrtcbin: Recreate).
 *
 * webrtcbin 1.22 cannot roll back: set-local-description with a ROLLBACK description is refused
 * in have-local-offer ("Not in the correct state (have-local-offer) for setting local rollback
 * description": webrtcsdp.c _check_valid_state_for_sdp_change lists no rollback transition).
 * So the polite side never puts itself where it would need one: it sends its offer without
 * applying it, and applies it (set-local-description) only when the answer arrives, right before
 * the answer. Withdrawing an unapplied offer is then a true rollback: webrtcbin never left stable.
 * Where the offer must be applied before it is sent (a peer that does not trickle needs our
 * candidates in the SDP, and gathering starts with set-local-description) and nothing is
 * connected yet, the polite side withdraws by replacing its webrtcbin (Recreate) instead.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pointcast::negotiation {

// The shared rule (HELPERS.md, also in signaling/web/app.js): the smaller client_id is polite.
bool is_polite(std::string_view self_id, std::string_view remote_id);

enum class Action {
  CreateOffer,       // ask webrtcbin for an offer; report it with offer_created()
  ApplyLocalOffer,   // set-local-description(the offer last reported by offer_created)
  SendOffer,         // send that offer to the peer
  ApplyRemoteOffer,  // set-remote-description(the offer just received)
  CreateAnswer,      // create-answer; report it with answer_created()
  ApplyLocalAnswer,  // set-local-description(answer) ...
  SendAnswer,        // ... and send it
  ApplyRemoteAnswer, // set-remote-description(the answer just received)
  Recreate,          // drop this peer's webrtcbin and start a fresh one (restart / withdraw)
};

const char *action_name(Action a);

// What to do with a remote ICE candidate.
enum class CandidateFate { Add, Queue, Drop };

class Negotiator {
public:
  struct Options {
    bool polite = false;
    // The remote trickles ICE. When it does not, our offers carry every candidate and so must
    // be applied before they are sent.
    bool trickle = true;
    // Offer again after an offer of ours was withdrawn in a glare (W3C: negotiationneeded fires
    // again). Off: the owner re-checks once connected what the remote's offer left out, which
    // spares a second exchange when nothing is missing (two rtcpeers that both offered).
    bool redo_withdrawn = true;
  };
  explicit Negotiator(Options o) : opt_(o) {}

  bool polite() const { return opt_.polite; }
  // Logical signaling state (ours, counting an offer sent but not yet applied).
  enum class State { Stable, HaveLocalOffer, HaveRemoteOffer };
  State state() const { return state_; }
  bool making_offer() const { return making_offer_; }
  // One offer/answer exchange has completed on the current webrtcbin.
  bool negotiated() const { return negotiated_; }
  // The remote's description is applied on the current webrtcbin: candidates can go in.
  bool remote_applied() const { return remote_applied_; }
  // A renegotiation is owed once stable (ours was withdrawn, or asked while busy).
  bool pending() const { return pending_; }
  /* A description with this identity comes from another peer connection than the one negotiated
   * (a restarted peer): after a completed exchange, a different non-empty identity. An answer
   * like that cannot be applied to ours (its ICE and DTLS belong to another connection). */
  bool new_connection(std::string_view fingerprint) const;

  // We have something to negotiate (first offer, a new track or channel). Offers at once when
  // stable, else once the exchange under way completes.
  std::vector<Action> negotiation_needed();
  // webrtcbin produced the offer asked for. May be nothing: a remote offer came first and won.
  std::vector<Action> offer_created();
  // webrtcbin could not create or apply a description: the attempt is abandoned (the caller
  // decides whether the session survives).
  void failed();
  // A remote offer. fingerprint: its DTLS fingerprint line; a different one than the current
  // remote's after a completed negotiation means the peer restarted (a new peer connection).
  std::vector<Action> remote_offer(std::string_view fingerprint);
  std::vector<Action> answer_created();
  // A remote answer; nothing when none was expected (it answers an offer we withdrew).
  std::vector<Action> remote_answer(std::string_view fingerprint);
  CandidateFate remote_candidate() const;
  // The session replaced its webrtcbin on its own (e.g. the peer joined again).
  void reset();

private:
  std::vector<Action> finish_exchange();

  Options opt_;
  State state_ = State::Stable;
  bool making_offer_ = false;  // CreateOffer asked, offer_created not yet reported
  bool withdrawn_ = false;     // the offer being created lost a glare: drop it when it comes
  bool offer_applied_ = false; // our outstanding offer is set on webrtcbin
  bool ignore_offer_ = false;  // impolite: we ignored the glare offer; its candidates too
  bool negotiated_ = false;
  bool remote_applied_ = false;
  bool pending_ = false;
  std::string remote_fingerprint_;
};

/* Payload types: answer with the payload types and parameters the remote offered (Firefox
 * offers VP8 as 120; answering with our own 96 made webrtcbin reject the section). */
struct Codec {
  int pt = -1;
  std::string name; // encoding name, upper case: VP8, H264, OPUS
  int clock_rate = 0;
  int channels = 0;                 // 0: not given
  std::string fmtp;                 // a=fmtp parameters, verbatim
  std::vector<std::string> rtcp_fb; // a=rtcp-fb values ("nack", "nack pli", "ccm fir", ...)
};

// The codecs of m-section `mline` (0-based), in the remote's order of preference.
std::vector<Codec> offered_codecs(std::string_view sdp, int mline);
// The kind ("video", "audio", "application") of every m-section, in order.
std::vector<std::string> media_kinds(std::string_view sdp);
// The remote's first codec named `name` (case-insensitive); for H264, the first constrained
// baseline with packetization-mode=1 (what x264enc and rtph264pay send), else the first with
// packetization-mode=1, else the first H264.
std::optional<Codec> match_codec(const std::vector<Codec> &offered, std::string_view name);
/* What an answer leaves out of the loss recovery a video offer proposes and rtcpeer does: per
 * accepted video m-line, "MID: nack rtx ..." naming each of the answered codec's offered `nack`,
 * `nack pli`, `ccm fir`, `transport-cc`, its RTX (`apt=`), RED and ULPFEC that the answer lacks.
 * Empty when the answer takes all of it. webrtcbin 1.22 answers an m-line it made the
 * transceiver for itself (a receiver with no track of that kind) with `nack pli`, `ccm fir` and
 * `transport-cc` only. */
std::vector<std::string> unanswered_feedback(std::string_view offer, std::string_view answer);
/* Our offer on a negotiated connection, with every payload type the m-lines it shares (by mid)
 * with `current` (the current local description) already had: webrtcbin 1.22 picks RED, ULPFEC
 * and RTX types afresh for each offer (_pick_available_pt, lowest free from 96), so a re-offer
 * that adds an m-line renumbers the live one, and the peer reads our packets under the new map
 * before we read its under the new one. A format new to a section, or in a new section, keeps its
 * number unless that number means something else in the result; then it gets a free one. RTX
 * `apt=` and RED `a/b` fmtp follow their section's renumbering. Returns `offer` unchanged when
 * nothing differs or no free number is left. */
std::string keep_payload_types(std::string_view offer, std::string_view current);
/* Our DTLS role ("active" or "passive") on a negotiated connection, from the current local and
 * remote descriptions: our a=setup where it says one, else the opposite of the remote's; "" if
 * neither says. */
std::string dtls_role(std::string_view local, std::string_view remote);
/* Our answer to a re-offer with every a=setup saying `role`, the one in use. webrtcbin 1.22
 * answers a=setup:actpass (aiortc's and libwebrtc's offers say it every time) with active
 * whatever its role is, and takes its DTLS `client` flag, by which it numbers the SCTP streams of
 * the channels it opens (client even, server odd), from that answer: a server's channels opened
 * after such a renegotiation took the client's ids. */
std::string keep_dtls_role(std::string_view answer, std::string_view role);
// The DTLS fingerprint line of an SDP ("" if none).
std::string fingerprint(std::string_view sdp);
/* Which peer connection an SDP belongs to: its DTLS fingerprint and first ICE ufrag. webrtcbin
 * shares one generated certificate per process, so a fresh webrtcbin of the same peer (rtcpeer
 * rebuilding a connection whose path died) differs only in its ICE credentials. */
std::string connection_identity(std::string_view sdp);

} // namespace pointcast::negotiation
