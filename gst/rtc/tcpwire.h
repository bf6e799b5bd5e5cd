// SPDX-License-Identifier: LGPL-2.1-or-later
/* The lines of aiortc's TcpSocketSignaling (tcp://), decoded (json-glib, after protocol.h's
 * bounded parser has accepted the text as JSON):
 *   {"sdp": "...", "type": "offer"|"answer"}
 *   {"candidate": "candidate:...", "id": sdpMid, "label": sdpMLineIndex, "type": "candidate"}
 *   {"type": "bye"}
 * Lines come from rtc/sigcheck.h's LineSplitter, so they are at most kMaxMessageBytes long. */
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pointcast::tcpwire {

struct Message {
  enum class Kind { Blank, Sdp, Candidate, Bye, Bad } kind = Kind::Bad;
  std::string type;      // Sdp: "offer" or "answer"
  std::string sdp;       // Sdp
  std::string candidate; // Candidate: "candidate:..." ("" = end of candidates)
  std::string mid;       // Candidate: sdpMid ("" when absent)
  int mline = 0;         // Candidate: sdpMLineIndex (0 when absent)
  std::string why;       // Bad: the reason
};

Message parse_line(std::string_view line);

/* Why JSON text from a signaling server must not reach json-glib, or nullopt: protocol.h's
 * bounded parser refuses it as JSON (too deep, too long, not JSON; its verdict on the room
 * protocol's own types does not matter), or it holds an escaped NUL (json-glib keeps strings
 * NUL-terminated and would cut the value short). The one gate for tcp:// and http:// input. */
std::optional<std::string> json_refusal(std::string_view text);

} // namespace pointcast::tcpwire
