// SPDX-License-Identifier: LGPL-2.1-or-later
/* What rtcpeer accepts from a signaling server or a remote peer before it reaches webrtcbin or a
 * log line (plain C++, no GLib). The server may be malicious: every SDP, candidate and peer id is
 * bounded in size and must be valid UTF-8 without NUL, and the aiortc tcp:// wire format (one
 * JSON object per line) is split into lines of bounded length here. */
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace pointcast::sigcheck {

inline constexpr std::size_t kMaxSdpBytes = 64 * 1024;  // a real SDP is a few KiB
inline constexpr std::size_t kMaxCandidateBytes = 1024; // a candidate line is ~100-200 bytes
inline constexpr std::size_t kMaxIdBytes = 256;         // peer ids, peer types, sdpMid
inline constexpr int kMaxMLine = 1023;
// Candidates taken from one peer between two of its SDPs (an ICE agent sends tens).
inline constexpr unsigned kMaxCandidatesPerSdp = 1000;
/* Longest signaling message read from a server: a tcp:// line, an http:// response body, a
 * ws:// message (the daemon's default message limit). JSON is parsed only after this bound. */
inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;
/* The one larger message: the daemon's reply to register lists every member with its type
 * (100 members with 256-byte ids and types are 77 KB, which closed the connection, so the
 * members of a room could keep rtcpeer out of it). Allowed only until that reply came. */
inline constexpr std::size_t kMaxRegisteredBytes = 1024 * 1024;

// Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
bool valid_utf8(std::string_view s);

// nullopt when acceptable, else the reason.
std::optional<std::string> check_sdp(std::string_view type, std::string_view sdp);
// An empty candidate (end of candidates) is acceptable; mline -1 means "by mid".
std::optional<std::string> check_candidate(std::string_view mid, int mline,
                                           std::string_view candidate);
std::optional<std::string> check_id(std::string_view what, std::string_view id);

/* Whether JSON text holds the escape \u0000 (an odd run of backslashes before "u0000"): json-glib
 * keeps strings NUL-terminated, so such a value would be cut short without notice. */
bool has_escaped_nul(std::string_view json);

// Remote text for a log line or warning: at most max bytes, control characters, backslashes
// and invalid UTF-8 escaped (\n, \x1b...), "..." when cut.
std::string printable(std::string_view s, std::size_t max = 200);

/* Splits a byte stream into '\n'-terminated lines (a trailing '\r' removed) of at most max_line
 * bytes. A longer line is reported once (on_overlong) and skipped to its end, without buffering
 * it. Callbacks return false to stop feeding (e.g. the connection was closed). */
class LineSplitter {
public:
  explicit LineSplitter(std::size_t max_line = kMaxMessageBytes) : max_(max_line) {}
  void feed(const char *data, std::size_t size,
            const std::function<bool(std::string &line)> &on_line,
            const std::function<bool()> &on_overlong);
  std::size_t buffered() const { return buf_.size(); }

private:
  std::size_t max_;
  std::string buf_;
  bool discarding_ = false;
};

} // namespace pointcast::sigcheck
