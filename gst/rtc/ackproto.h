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
 * On a partially reliable `pointcast-ack3` channel, once the peer acknowledged on it (so it is an
 * rtcpeer that takes them), small messages go as text, each twice a few milliseconds apart:
 *
 *   {"pointcast":"msg","seq":Q,"data":"BASE64"}   Q: the channel's count of such messages, from 0
 *
 * and the receiver delivers the bytes of the first copy of each Q (Window). Text, because an
 * rtcpeer sends data as binary only: a binary message is always one as it was pushed, so the
 * receiver never has to tell a tagged message from an untagged one that looks like it.
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

constexpr std::string_view kTaggedPrefix = "{\"pointcast\":\"msg\",\"seq\":";
// The message `data` (size bytes) as sequence number `seq` of its channel.
std::string tagged(uint64_t seq, const void *data, size_t size);
bool is_tagged(std::string_view text); // starts like one (then it is never data)
struct Tagged {
  uint64_t seq = 0;
  std::string data;
};
// Exactly the form tagged() writes (seq at most 2^53-1, canonical base64), or nullopt.
std::optional<Tagged> parse_tagged(std::string_view text);
std::string base64(const void *data, size_t size);
std::optional<std::string> unbase64(std::string_view text); // canonical padded base64 only

/* The receiver's record of the sequence numbers it delivered on one channel: the last kSpan
 * below the highest seen, a fixed 128-byte bitmap whatever the peer sends. fresh() is false only
 * for a number already seen within that span: a peer that jumps ahead (bogus or after an outage)
 * moves the span, and anything older than it is delivered (it can no longer be told from a
 * duplicate; a genuine copy follows its original within milliseconds, thousands of messages
 * sooner than that). */
class Window {
public:
  static constexpr uint64_t kSpan = 1024;
  bool fresh(uint64_t seq);

private:
  bool any_ = false;
  uint64_t top_ = 0; // highest seen
  uint64_t bits_[kSpan / 64] = {};
};

/* Bytes a channel may spend on second copies: a token bucket of `rate` bytes per second holding
 * at most `burst`. */
class Bucket {
public:
  Bucket(uint64_t rate, uint64_t burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  // Takes n bytes at time now_us (monotonic) when there is room; false (nothing taken) else.
  bool take(uint64_t n, int64_t now_us);

private:
  uint64_t rate_, burst_, tokens_;
  int64_t last_us_ = 0;
  bool started_ = false;
};

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
