// SPDX-License-Identifier: LGPL-2.1-or-later
/* Why a TURN server gave no relay candidate. libnice drops a refused allocation without a word,
 * so after such a gathering rtcpeer asks the server itself: one TURN Allocate (RFC 5766) with
 * the long-term credentials (RFC 5389 10.2), then a Refresh with lifetime 0 to free what it got.
 * The message coding is plain C++ (tested in tests/rtc/test_iceconfig.cpp); probe() does the
 * exchange over UDP or TCP, blocking, with short timeouts: run it off the context thread. */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pointcast::rtc::turnprobe {

using Bytes = std::vector<uint8_t>;

// MD5(user:realm:password), the long-term credential key.
Bytes long_term_key(const std::string &user, const std::string &realm, const std::string &password);
// HMAC-SHA1 of DATA with KEY.
Bytes hmac_sha1(const Bytes &key, const Bytes &data);

struct Auth {
  std::string user, realm, nonce;
  Bytes key;
};
constexpr uint16_t kAllocate = 0x003, kRefresh = 0x004;
// A request of METHOD with a 12-byte transaction id; with AUTH: USERNAME, REALM, NONCE and
// MESSAGE-INTEGRITY. Allocate asks for a UDP relay; Refresh carries LIFETIME (seconds).
Bytes request(uint16_t method, const uint8_t txid[12], const Auth *auth, uint32_t lifetime = 0);

struct Response {
  bool success = false; // a success response (else an error response)
  int error = 0;        // ERROR-CODE, e.g. 401
  std::string reason, realm, nonce;
};
// A response to the request with TXID; nullopt when it is not one (or malformed).
std::optional<Response> parse(const Bytes &msg, const uint8_t txid[12]);
// Bytes of the whole STUN message at the start of BUF (header + length), 0 if not known yet.
size_t message_size(const Bytes &buf);

/* Asks HOST:PORT over TRANSPORT ("udp" or "tcp") for an allocation with USER/PASSWORD.
 * Returns what a user should be told: "the server refused the user or password (401
 * Unauthorized)", "no answer over udp within 3 s", "allocated: the credentials work", ... */
std::string probe(const std::string &host, int port, const std::string &transport,
                  const std::string &user, const std::string &password);

} // namespace pointcast::rtc::turnprobe
