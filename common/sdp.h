// SPDX-License-Identifier: LGPL-2.1-or-later
/* SDP text helpers shared by rtcpeer and pointcast-signaling (pure C++, tested directly). */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pointcast::sdp {

// The lines of an SDP without their CR LF (or LF) endings; empty lines are left out.
std::vector<std::string_view> lines(std::string_view sdp);

// A candidate attribute's value: "candidate:..." with any leading "a=" taken off.
std::string_view candidate_value(std::string_view candidate);

// The SCTP max-message-size the remote announced in its data section (RFC 8841): 65536 when the
// attribute is absent, 0 when the remote allows any size.
uint64_t max_message_size(std::string_view sdp);

struct Candidate {
  int mline = -1;                 // index of its m-section; -1 (or past the last): found by mid
  std::string candidate;          // "candidate:..." (with or without a leading "a=")
  std::optional<std::string> mid; // the a=mid of its section
};

enum class Fill {
  /* For peers that do not trickle (rtcpeer's complete SDP): sections that already list
   * candidates are left as they are, and a=end-of-candidates follows the ones added. */
  Complete,
  // Every candidate not yet in its section is added, nothing else (the daemon's POST /offer
  // answer: what the answerer trickled, merged into its SDP).
  Merge,
};

/* Puts candidates into an SDP: each goes at the end of its m-section, once. Candidates without a
 * section (or empty: end of candidates) are left out. Line endings are CRLF as SDP requires. */
std::string with_candidates(std::string_view sdp, const std::vector<Candidate> &candidates,
                            Fill fill = Fill::Complete);

// Number of m= sections.
int media_count(std::string_view sdp);

// The a=mid of each m-section, in order ("" where a section has none).
std::vector<std::string> mids(std::string_view sdp);

/* aiortc 1.4 offers a BUNDLE group whose sections have ICE credentials of their own, which
 * webrtcbin refuses ("media 1 has different ice-ufrag values in bundle"). Without the group the
 * same offer is valid: one transport per section. Other SDP comes back unchanged. */
std::string drop_bundle_with_split_ice(std::string_view sdp);

/* webrtcbin 1.22's offer on an established BUNDLE transport (a renegotiation) gives only the
 * first section of the group the DTLS role already in use (a=setup:active or passive); the others
 * say actpass, and carry port 0 with a=bundle-only. A remote that takes actpass as a new choice
 * may flip the role of the one transport they share (Firefox refuses the conflict). Every section
 * of the group gets the first section's port and role here, without bundle-only, as browsers
 * re-offer. A first offer (the first section says actpass), sections outside the group and SDP
 * without a group come back unchanged. */
std::string keep_bundle_in_reoffer(std::string_view sdp);

} // namespace pointcast::sdp
