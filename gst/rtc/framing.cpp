#include "rtc/framing.h"

#include <cstdlib>
#include <cstring>

namespace pointcast::framing {

static constexpr std::string_view kPrefix = "{\"pointcast\":\"fragments\",";

std::string announce(uint64_t size, uint64_t count)
{
  return std::string(kPrefix) + "\"size\":" + std::to_string(size) +
         ",\"count\":" + std::to_string(count) + "}";
}

// Reads `"key":<digits>` at `s`, advancing it.
static bool read_field(std::string_view &s, std::string_view key, uint64_t *out)
{
  std::string k = "\"" + std::string(key) + "\":";
  if (s.substr(0, k.size()) != k)
    return false;
  s.remove_prefix(k.size());
  size_t n = 0;
  uint64_t v = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
    if (v > (UINT64_MAX - 9) / 10)
      return false;
    v = v * 10 + uint64_t(s[n] - '0');
    n++;
  }
  if (n == 0)
    return false;
  s.remove_prefix(n);
  *out = v;
  return true;
}

std::optional<Announcement> parse_announcement(std::string_view text)
{
  // Exactly the form announce() writes (whitespace-free JSON): cheap to recognise, and an
  // ordinary text message is never mistaken for one.
  if (text.substr(0, kPrefix.size()) != kPrefix)
    return std::nullopt;
  text.remove_prefix(kPrefix.size());
  Announcement a;
  if (!read_field(text, "size", &a.size) || text.substr(0, 1) != ",")
    return std::nullopt;
  text.remove_prefix(1);
  if (!read_field(text, "count", &a.count) || text != "}")
    return std::nullopt;
  return a;
}

Reassembler::~Reassembler()
{
  reset();
  std::free(done_);
}

void Reassembler::reset()
{
  std::free(buf_);
  buf_ = nullptr;
  size_ = filled_ = expected_ = received_ = 0;
}

Reassembler::Status Reassembler::on_text(std::string_view text)
{
  auto a = parse_announcement(text);
  bool interrupted = in_progress();
  if (interrupted)
    error_ = "fragmented message interrupted after " + std::to_string(received_) + " of " +
             std::to_string(expected_) + " pieces";
  reset();
  if (!a)
    return interrupted ? Status::Error : Status::Plain;
  if (interrupted)
    return Status::Error;  // the new announcement is dropped too: the stream is out of step
  if (a->size > max_size_) {
    error_ = "announced message of " + std::to_string(a->size) + " bytes exceeds the limit of " +
             std::to_string(max_size_);
    return Status::Error;
  }
  if (a->count == 0 || a->count > a->size + 1) {
    error_ = "announced " + std::to_string(a->count) + " pieces for " + std::to_string(a->size) +
             " bytes";
    return Status::Error;
  }
  buf_ = static_cast<uint8_t *>(std::malloc(a->size ? a->size : 1));
  if (!buf_) {
    error_ = "out of memory for a " + std::to_string(a->size) + "-byte message";
    return Status::Error;
  }
  size_ = a->size;
  expected_ = a->count;
  return Status::Pending;
}

Reassembler::Status Reassembler::on_binary(const void *data, size_t size)
{
  if (!in_progress())
    return Status::Plain;
  if (size > size_ - filled_) {
    error_ = "pieces exceed the announced " + std::to_string(size_) + " bytes";
    reset();
    return Status::Error;
  }
  if (size)
    std::memcpy(buf_ + filled_, data, size);
  filled_ += size;
  received_++;
  if (received_ < expected_)
    return Status::Pending;
  if (filled_ != size_) {
    error_ = "pieces hold " + std::to_string(filled_) + " of the announced " +
             std::to_string(size_) + " bytes";
    reset();
    return Status::Error;
  }
  std::free(done_);
  done_ = buf_;
  done_size_ = size_;
  buf_ = nullptr;
  reset();
  return Status::Complete;
}

void *Reassembler::take(size_t *size)
{
  void *p = done_;
  *size = done_size_;
  done_ = nullptr;
  done_size_ = 0;
  return p;
}

} // namespace pointcast::framing
