// SPDX-License-Identifier: LGPL-2.1-or-later
/* Large messages over WebRTC data channels.
 *
 * SCTP peers announce a max-message-size (64 KiB for webrtcbin and aiortc); a bigger send fails.
 * rtcpeer therefore sends a message that does not fit as a short text (UTF-8) announcement
 *   {"pointcast":"fragments","size":S,"count":N}
 * followed by exactly N binary messages on the same (ordered, reliable) channel whose bytes,
 * concatenated, are the S-byte message. Messages that fit are sent as they are, so plain peers
 * that never send more than the limit see no difference, and a browser can follow the framing in
 * a few lines of JavaScript (see README "rtcpeer").
 *
 * Everything here comes from a remote peer and is untrusted: an announcement only reserves
 * memory within a Budget (shared by the reassemblers of one peer), the buffer grows with the bytes
 * that actually arrive, and a message whose next piece does not come within the idle timeout is
 * dropped. */
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pointcast::framing {

struct Announcement {
  uint64_t size = 0;
  uint64_t count = 0;
};

// The text message announcing a fragmented message of `size` bytes cut into `count` pieces.
std::string announce(uint64_t size, uint64_t count);
// Parses an announcement; nullopt when `text` is not one (then it is an ordinary text message).
std::optional<Announcement> parse_announcement(std::string_view text);
// Number of pieces for `size` bytes with pieces of at most `chunk` bytes.
inline uint64_t piece_count(uint64_t size, uint64_t chunk)
{
  return (size + chunk - 1) / chunk;
}

using Clock = std::chrono::steady_clock;

struct Limits {
  uint64_t max_message = uint64_t(256) << 20; // largest announced message accepted
  // An incomplete message whose next piece takes longer than this is dropped (an ordered,
  // reliable channel that makes progress delivers pieces back to back).
  Clock::duration idle_timeout = std::chrono::seconds(10);
};

class Reassembler;

/* Bytes that the partial messages of a group of reassemblers (one remote peer's channels) may
 * reserve in total. Thread-safe: each channel delivers from its own thread. */
class Budget {
public:
  explicit Budget(uint64_t max_bytes) : max_(max_bytes) {}
  Budget(const Budget &) = delete;
  Budget &operator=(const Budget &) = delete;

  uint64_t limit() const { return max_; }
  uint64_t used() const;
  // Drops the partial messages of member reassemblers that have been idle past their timeout
  // (also done by itself when a reservation would not fit); returns how many were dropped, and
  // appends why to *reasons. A periodic call bounds how long an abandoned message holds memory.
  size_t expire(Clock::time_point now, std::vector<std::string> *reasons = nullptr);

private:
  friend class Reassembler;
  bool reserve(uint64_t n, Reassembler *asking, Clock::time_point now);
  void release(uint64_t n);
  void join(Reassembler *r);
  void leave(Reassembler *r);

  const uint64_t max_;
  mutable std::mutex mu_;
  uint64_t used_ = 0;
  std::vector<Reassembler *> members_;
};

/* Reassembles announced messages from one channel (its messages come from one thread at a time;
 * only Budget::expire may run concurrently). The finished message is a malloc()ed block handed
 * over to the caller, so it can be wrapped into a buffer without a copy. */
class Reassembler {
public:
  enum class Status {
    Plain,    // not part of a fragmented message: deliver the message as it is
    Pending,  // consumed; more pieces to come (or a late piece of a dropped message)
    Complete, // consumed; take() returns the whole message
    Error,    // refused announcement or inconsistent framing; error() says why; the partial
              // message is dropped, and so are its remaining pieces when they come
  };

  // A reassembler with a budget of its own of max_size bytes (limits otherwise default).
  explicit Reassembler(uint64_t max_size = Limits{}.max_message);
  // One of a group sharing `budget` (e.g. every channel of one peer).
  Reassembler(const Limits &limits, std::shared_ptr<Budget> budget);
  ~Reassembler();
  Reassembler(const Reassembler &) = delete;
  Reassembler &operator=(const Reassembler &) = delete;

  Status on_text(std::string_view text) { return on_text(text, Clock::now()); }
  Status on_binary(const void *data, size_t size) { return on_binary(data, size, Clock::now()); }
  Status on_text(std::string_view text, Clock::time_point now);
  Status on_binary(const void *data, size_t size, Clock::time_point now);

  // After Complete: the message (malloc()ed, free() it) and its size.
  void *take(size_t *size);
  const std::string &error() const { return error_; }
  bool in_progress() const;
  // Drops the partial message if its last piece came more than the idle timeout before `now`.
  bool expire(Clock::time_point now);

private:
  friend class Budget;
  bool expire_locked(Clock::time_point now);
  void drop(std::string why);
  void reset();
  bool grow(uint64_t need);

  Limits limits_;
  std::shared_ptr<Budget> budget_;
  mutable std::mutex mu_;
  uint8_t *buf_ = nullptr;
  uint64_t capacity_ = 0, size_ = 0, filled_ = 0, expected_ = 0, received_ = 0;
  uint64_t skip_ = 0; // pieces of a dropped message still to come
  Clock::time_point last_;
  uint8_t *done_ = nullptr;
  uint64_t done_size_ = 0;
  std::string error_;
};

} // namespace pointcast::framing
