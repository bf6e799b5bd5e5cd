/* Large messages over WebRTC data channels.
 *
 * SCTP peers announce a max-message-size (64 KiB for webrtcbin and aiortc); a bigger send fails.
 * rtcpeer therefore sends a message that does not fit as a short text (UTF-8) announcement
 *   {"pointcast":"fragments","size":S,"count":N}
 * followed by exactly N binary messages on the same (ordered, reliable) channel whose bytes,
 * concatenated, are the S-byte message. Messages that fit are sent as they are, so plain peers
 * that never send more than the limit see no difference, and a browser can follow the framing in
 * a few lines of JavaScript (see README "rtcpeer"). */
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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
inline uint64_t piece_count(uint64_t size, uint64_t chunk) { return (size + chunk - 1) / chunk; }

/* Reassembles announced messages from one channel. Not thread-safe (a channel delivers its
 * messages from one thread at a time). The finished message is a malloc()ed block handed over to
 * the caller, so it can be wrapped into a buffer without a copy. */
class Reassembler {
public:
  enum class Status {
    Plain,     // not part of a fragmented message: deliver the message as it is
    Pending,   // consumed; more pieces to come
    Complete,  // consumed; take() returns the whole message
    Error,     // inconsistent framing; error() says why, the partial message is dropped
  };

  explicit Reassembler(uint64_t max_size = uint64_t(256) << 20) : max_size_(max_size) {}
  ~Reassembler();
  Reassembler(const Reassembler &) = delete;
  Reassembler &operator=(const Reassembler &) = delete;

  Status on_text(std::string_view text);
  Status on_binary(const void *data, size_t size);

  // After Complete: the message (malloc()ed, free() it) and its size.
  void *take(size_t *size);
  const std::string &error() const { return error_; }
  bool in_progress() const { return expected_ > 0; }

private:
  void reset();
  uint64_t max_size_;
  uint8_t *buf_ = nullptr;
  uint64_t size_ = 0, filled_ = 0, expected_ = 0, received_ = 0;
  uint8_t *done_ = nullptr;
  uint64_t done_size_ = 0;
  std::string error_;
};

} // namespace pointcast::framing
