// SPDX-License-Identifier: LGPL-2.1-or-later
/* The room protocol spoken on the signaling daemon's WebSocket /ws (see CONTRACT.md), as plain
 * C++ values with JSON parse/serialize. Shared by pointcast-signaling and rtcpeer's ws://
 * signaller, so both sides agree on field names and on what is valid.
 *
 *   register      {"type":"register","client_id":ID,"room_id":ROOM,"client_type":TYPE,
 *                  "token":T}  (token: when the daemon has one and the upgrade request did not
 *                  carry it in "Authorization: Bearer"; a browser's WebSocket cannot set headers)
 *   registered    {"type":"registered","client_id":ID,"room_id":ROOM,"peers":[ids],
 *                  "peer_types":{id:type,...}}
 *   peer_joined   {"type":"peer_joined","client_id":ID,"client_type":TYPE}
 *   peer_left     {"type":"peer_left","client_id":ID}
 *   offer/answer  {"type":"offer"|"answer","target_id":T,"from_id":F,"sdp":{"type":..,"sdp":..}}
 *   ice_candidate {"type":"ice_candidate","target_id":T,"from_id":F,
 *                  "candidate":{"candidate":..,"sdpMid":..,"sdpMLineIndex":..}}
 *   error         {"type":"error","code":CODE,"message":TEXT}
 *
 * target_id is optional (absent: broadcast to the room); from_id is added by the server. */
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pointcast::protocol {

// Error codes carried in {"type":"error","code":...}. Stable strings: clients may match on them.
namespace code {
inline constexpr const char *kBadJson = "bad_json";             // not parseable JSON
inline constexpr const char *kNotObject = "not_object";         // JSON, but not an object
inline constexpr const char *kMissingType = "missing_type";     // no string "type" member
inline constexpr const char *kUnknownType = "unknown_type";     // "type" not in the protocol
inline constexpr const char *kMissingField = "missing_field";   // a required member is absent
inline constexpr const char *kBadField = "bad_field";           // a member has the wrong type/value
inline constexpr const char *kNotRegistered = "not_registered"; // message before register
inline constexpr const char *kAlreadyRegistered = "already_registered";
inline constexpr const char *kDuplicateId = "duplicate_client_id";
inline constexpr const char *kUnknownTarget = "unknown_target"; // target_id not in the room
inline constexpr const char *kRoomFull = "room_full";           // peers-per-room limit
inline constexpr const char *kTooLarge = "message_too_large";   // message-size limit
inline constexpr const char *kRateLimited = "rate_limited";     // messages-per-second limit
inline constexpr const char *kBinary = "binary_not_supported";  // binary frame on /ws
inline constexpr const char *kServerFull = "server_full";       // total clients limit
inline constexpr const char *kUnauthorized =
    "unauthorized"; // the daemon's token is missing or wrong
} // namespace code

// Longest client_id / room_id / client_type accepted (bytes); longer is kBadField.
inline constexpr std::size_t kMaxIdLength = 256;

struct SessionDescription {
  std::string type; // "offer" | "answer"
  std::string sdp;
};

struct IceCandidate {
  std::string candidate; // "candidate:..." ; empty = end of candidates
  std::optional<std::string> sdp_mid;
  std::optional<int> sdp_mline_index;
};

struct Register {
  std::string client_id;
  std::string room_id = "default";
  std::string client_type = "unknown";
  std::optional<std::string> token;
};

struct PeerInfo {
  std::string client_id;
  std::string client_type;
};

struct Registered {
  std::string client_id;
  std::string room_id;
  std::vector<PeerInfo> peers; // the others already in the room, in registration order
};

struct PeerJoined {
  std::string client_id;
  std::string client_type;
};

struct PeerLeft {
  std::string client_id;
};

struct Sdp { // "offer" or "answer", by sdp.type
  std::optional<std::string> target_id;
  std::optional<std::string> from_id;
  SessionDescription sdp;
  std::optional<bool> trickle; // false: the sender's SDP is complete and it will not trickle
};

struct Candidate { // "ice_candidate"
  std::optional<std::string> target_id;
  std::optional<std::string> from_id;
  IceCandidate candidate;
};

struct Error {
  std::string code;
  std::string message;
};

using Message = std::variant<Register, Registered, PeerJoined, PeerLeft, Sdp, Candidate, Error>;

// The wire "type" of a message ("register", "offer", "ice_candidate", ...).
const char *type_name(const Message &msg);

struct ParseResult {
  std::optional<Message> message; // set on success
  Error error;                    // set (code non-empty) on failure
  bool ok() const { return message.has_value(); }
};

/* Parses one text frame. Lenient where peers differ in the wild: "sdp" may be the
 * {"type","sdp"} object or a bare SDP string (then its type is the message type); "candidate" may
 * be null (end of candidates); absent room_id/client_type take the defaults above. Strict
 * elsewhere: every other deviation is an Error with a code from `code` and a readable reason. */
ParseResult parse(std::string_view text);
// The two halves of parse(), exposed for tests: a fast single-pass parser that only accepts the
// common, well-formed messages (nullopt for everything else), and the json-glib parser that
// answers every input, with the error code and reason.
std::optional<Message> parse_fast(std::string_view text);
ParseResult parse_full(std::string_view text);

/* The bounded check every JSON text the daemon reads goes through before json-glib sees it (the
 * room protocol, POST /offer bodies, the /api bodies); the rtcpeer signallers can use it too.
 * Strict RFC 8259 (no comments, no single quotes, nothing json-glib's looser grammar adds),
 * nested at most 32 levels, valid UTF-8, and refused besides: \u0000 in any string and lone
 * UTF-16 surrogates (kBadField: neither is a Unicode scalar value every reader agrees on),
 * duplicate member names (kBadJson: readers differ on which one wins). nullopt: acceptable. */
std::optional<Error> check_json(std::string_view text);
// True when s is UTF-8 of Unicode scalar values (no overlongs, no surrogates); NUL is allowed.
bool utf8_valid(std::string_view s);

// Serializes to compact JSON (one line, no trailing newline).
std::string serialize(const Message &msg);

/* Appends s to out as a quoted JSON string: '"', '\\' and control characters escaped, every
 * other byte copied as it is (the caller owns UTF-8 validity). */
void append_escaped(std::string &out, std::string_view s);

/* Compares a presented secret with the configured one in time that depends only on the
 * configured one's length, so response timing does not reveal how much of a guess was right. */
bool secret_equal(std::string_view presented, std::string_view secret);

// Convenience for the frequent error reply.
std::string error_json(std::string_view code, std::string_view message);

/* For relaying: the original JSON object text with "from_id":from appended as its last member,
 * so every extra field the sender put in is passed on untouched. `object_text` must be a JSON
 * object that parse() accepted and that has no from_id member. */
std::string append_from_id(std::string_view object_text, std::string_view from);

} // namespace pointcast::protocol
