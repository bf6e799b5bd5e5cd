// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's stun-server / turn-server values, checked before they reach webrtcbin (plain C++ on
 * GLib's URI parser). webrtcbin 1.22.0 checks a TURN URI but keeps it even when the check fails
 * (its _validate_turn_server returns the URI on every path), and takes a STUN URI without a host:
 * a typo there used to give host candidates only, without a word. */
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pointcast::rtc::iceconfig {

struct Server {
  std::string scheme;    // "stun", "turn" or "turns"
  std::string host;      // an IP literal or a name (libnice resolves names itself)
  int port = 0;          // the default of the scheme when the URI has none
  std::string user;      // TURN only, decoded
  std::string password;  // TURN only, decoded
  std::string transport; // TURN: "udp", "tcp" or "tls" (turns), "" = udp and tcp
  std::string uri;       // the URI as given, for webrtcbin
  // scheme://host:port[?transport=...]: for messages, without the credentials.
  std::string display() const;
};

// stun://HOST[:PORT] (default 3478). nullopt and *error set when malformed.
std::optional<Server> parse_stun(std::string_view uri, std::string *error);
// turn://USER:PASSWORD@HOST[:PORT][?transport=udp|tcp] (default 3478) or
// turns://USER:PASSWORD@HOST[:PORT] (default 5349); USER and PASSWORD percent-encoded.
std::optional<Server> parse_turn(std::string_view uri, std::string *error);
// A turn-server value: one URI or several separated by commas (each one is tried by ICE).
std::optional<std::vector<Server>> parse_turn_list(std::string_view value, std::string *error);

// Whether an a=candidate line (with or without "a=") is a relay candidate.
bool is_relay_candidate(std::string_view candidate);

} // namespace pointcast::rtc::iceconfig
