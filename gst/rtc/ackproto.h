// SPDX-License-Identifier: LGPL-2.1-or-later
/* The `pointcast-ack` sub-protocol's control messages (text messages on a channel an rtcpeer
 * opened with that protocol), and the receiver's side of a stream continued over a rebuilt
 * connection.
 *
 *   {"pointcast":"ack","received":N}   receiver -> sender: N whole messages arrived on this channel
 *   {"pointcast":"resume","from":S}    sender -> receiver, only as a channel's first message: the
 *                                      next data message is message S of the stream the sender
 *                                      sent this peer on this label over earlier connections
 *
 * A stream is what one sending process sent one peer on one label, over its successive
 * connections; its messages are numbered from 0. A channel whose first message is data starts a
 * new stream. After a resume the receiver skips the messages it already delivered (received on an
 * earlier channel of that stream), so a receiver that is the same process gets each message once,
 * in order; a new process has no record and takes everything (at least once).
 *
 * Everything here comes from a remote peer: each field is bounded, and a resume that does not fit
 * (malformed, not the first message, going back before the last channel's start) is refused with
 * a reason and changes nothing delivered. Pure C++, no locking (the caller's). */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pointcast::ackproto {

// Text messages starting with this are the protocol's (never data) on a pointcast-ack channel.
constexpr std::string_view kControlPrefix = "{\"pointcast\":\"";
constexpr std::string_view kAckPrefix = "{\"pointcast\":\"ack\",\"received\":";
constexpr std::string_view kResumePrefix = "{\"pointcast\":\"resume\",\"from\":";
// Largest stream index a resume may name: JSON's exact integers (2^53 - 1), 16 digits at most.
constexpr uint64_t kMaxIndex = (uint64_t(1) << 53) - 1;

std::string ack(uint64_t received);
std::string resume(uint64_t from);
// The count of an ack (exact form, decimal, at most 19 digits), or nullopt.
std::optional<uint64_t> parse_ack(std::string_view text);
bool is_resume(std::string_view text); // starts like one (then it is never data)

// What a receiver knows of one stream (one peer, one label) across that peer's channels.
struct Stream {
  bool known = false;     // `delivered` counts a stream this process received
  uint64_t base = 0;      // stream index of the latest channel's first message
  uint64_t delivered = 0; // messages of the stream delivered (the next one's index)
};

/* One channel of a stream, on the receiving side. */
class Cursor {
public:
  struct Verdict {
    bool accepted = false;
    std::string reason;   // when refused
    uint64_t skip = 0;    // accepted: messages of this channel that are duplicates
    uint64_t missing = 0; // accepted: messages of the stream the sender did not send again
  };

  // A text message that is_resume() arrived on the channel.
  Verdict on_resume(Stream &s, std::string_view text);
  // A whole data message arrived on the channel: false when it is a duplicate to drop.
  bool on_message(Stream &s);

private:
  bool started_ = false; // the channel had its first message
  uint64_t next_ = 0;    // stream index of its next message
};

} // namespace pointcast::ackproto
