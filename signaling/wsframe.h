// SPDX-License-Identifier: LGPL-2.1-or-later
/* RFC 6455 frame decoding for the server side, without sockets: bytes in, whole messages and
 * control frames out. WsConn (websocket.h) feeds it what it reads; fuzz/fuzz_ws_frames feeds it
 * anything. */
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pointcast::signaling {

class WsDecoder {
public:
  // max_payload bounds one message (all its fragments together); over it: error 1009.
  explicit WsDecoder(std::size_t max_payload) : max_payload_(max_payload) {}

  enum class Kind { Text, Binary, Ping, Pong, Close, Error };
  struct Event {
    Kind kind = Kind::Error;
    std::string_view data;     // message or control payload (Close: the reason)
    std::uint16_t code = 0;    // Close: the peer's code (1005: none); Error: the code to close with
    const char *why = nullptr; // Error: what was wrong
  };

  /* Decodes from buf[off...] (unmasking in place) until one event is complete; advances off past
   * what it used. False: more bytes are needed. `data` stays valid until the next call or until
   * buf changes. After an Error the stream is unusable. Text is valid UTF-8 (NUL included). */
  bool next(std::string &buf, std::size_t &off, Event &ev);

  // Bytes held for a fragmented message in progress.
  std::size_t pending() const { return frag_.size(); }

private:
  std::size_t max_payload_;
  std::string frag_; // a fragmented message being assembled
  std::string done_; // the last reassembled message, which `data` points into
  int frag_op_ = 0;
};

} // namespace pointcast::signaling
