// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/framing.h"

#include <algorithm>
#include <cstdio>
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
  if (s.substr(0, k.size()) != k) return false;
  s.remove_prefix(k.size());
  size_t n = 0;
  uint64_t v = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + uint64_t(s[n] - '0');
    n++;
  }
  if (n == 0) return false;
  s.remove_prefix(n);
  *out = v;
  return true;
}

std::optional<Announcement> parse_announcement(std::string_view text)
{
  // Exactly the form announce() writes (whitespace-free JSON): cheap to recognise, and an
  // ordinary text message is never mistaken for one.
  if (text.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  text.remove_prefix(kPrefix.size());
  Announcement a;
  if (!read_field(text, "size", &a.size) || text.substr(0, 1) != ",") return std::nullopt;
  text.remove_prefix(1);
  if (!read_field(text, "count", &a.count) || text != "}") return std::nullopt;
  return a;
}

// Remote text for a warning: control characters and non-ASCII bytes escaped.
static std::string printable(std::string_view s)
{
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(char(c));
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

static std::string seconds_text(Clock::duration d)
{
  char b[32];
  std::snprintf(b, sizeof b, "%.1f s", std::chrono::duration<double>(d).count());
  return b;
}

uint64_t Budget::used() const
{
  std::lock_guard lk(mu_);
  return used_;
}

void Budget::join(Reassembler *r)
{
  std::lock_guard lk(mu_);
  members_.push_back(r);
}

void Budget::leave(Reassembler *r)
{
  std::lock_guard lk(mu_);
  std::erase(members_, r);
}

void Budget::release(uint64_t n)
{
  std::lock_guard lk(mu_);
  used_ -= n;
}

size_t Budget::expire(Clock::time_point now, std::vector<std::string> *reasons)
{
  // Collected first: expiring a member releases into this budget, which takes mu_.
  std::vector<Reassembler *> members;
  {
    std::lock_guard lk(mu_);
    members = members_;
  }
  size_t dropped = 0;
  for (Reassembler *r : members) {
    // try_lock: a member busy with a message is not idle; waiting on it could deadlock with
    // one that is reserving here. join/leave keep the list valid only under mu_, so the member
    // is looked up again under it.
    std::unique_lock lk(mu_);
    if (std::find(members_.begin(), members_.end(), r) == members_.end()) continue;
    std::unique_lock rl(r->mu_, std::try_to_lock);
    lk.unlock();
    if (rl.owns_lock() && r->expire_locked(now)) {
      dropped++;
      if (reasons) reasons->push_back(r->error_);
    }
  }
  return dropped;
}

bool Budget::reserve(uint64_t n, Reassembler *asking, Clock::time_point now)
{
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      std::lock_guard lk(mu_);
      if (n <= max_ - used_) {
        used_ += n;
        return true;
      }
      if (attempt == 1) return false;
    }
    // Over budget: abandoned partial messages of the other members go first.
    std::vector<Reassembler *> others;
    {
      std::lock_guard lk(mu_);
      for (Reassembler *r : members_)
        if (r != asking) others.push_back(r);
    }
    for (Reassembler *r : others) {
      std::unique_lock lk(mu_);
      if (std::find(members_.begin(), members_.end(), r) == members_.end()) continue;
      std::unique_lock rl(r->mu_, std::try_to_lock);
      lk.unlock();
      if (rl.owns_lock()) r->expire_locked(now);
    }
  }
  return false;
}

Reassembler::Reassembler(uint64_t max_size)
    : Reassembler(Limits{max_size, Limits{}.idle_timeout}, std::make_shared<Budget>(max_size))
{
}

Reassembler::Reassembler(const Limits &limits, std::shared_ptr<Budget> budget)
    : limits_(limits), budget_(std::move(budget))
{
  budget_->join(this);
}

Reassembler::~Reassembler()
{
  budget_->leave(this);
  std::lock_guard lk(mu_); // waits for a Budget::expire that is looking at us
  reset();
  std::free(done_);
}

bool Reassembler::in_progress() const
{
  std::lock_guard lk(mu_);
  return expected_ > 0;
}

void Reassembler::reset()
{
  std::free(buf_);
  buf_ = nullptr;
  if (size_) budget_->release(size_);
  capacity_ = size_ = filled_ = expected_ = received_ = 0;
}

void Reassembler::drop(std::string why)
{
  error_ = std::move(why);
  reset();
}

bool Reassembler::expire_locked(Clock::time_point now)
{
  if (expected_ == 0 || now - last_ <= limits_.idle_timeout) return false;
  uint64_t remaining = expected_ - received_;
  drop("incomplete message of " + std::to_string(size_) + " bytes dropped: no piece for " +
       seconds_text(now - last_) + " (limit " + seconds_text(limits_.idle_timeout) + "), " +
       std::to_string(received_) + " of " + std::to_string(expected_) + " pieces received");
  skip_ = remaining; // late pieces of it are not new messages
  return true;
}

bool Reassembler::expire(Clock::time_point now)
{
  std::lock_guard lk(mu_);
  return expire_locked(now);
}

// Grows the buffer to hold `need` bytes (at most the announced size): memory follows the bytes
// that arrive, not the announcement (beyond the first MiB).
bool Reassembler::grow(uint64_t need)
{
  if (need <= capacity_) return true;
  // up to 1 MiB at once (one allocation, no regrowth, for typical large messages), then doubling
  uint64_t cap = std::max<uint64_t>(
      need, std::min<uint64_t>(size_, std::max<uint64_t>(capacity_ * 2, 1u << 20)));
  auto *p = static_cast<uint8_t *>(std::realloc(buf_, cap ? cap : 1));
  if (!p) return false;
  buf_ = p;
  capacity_ = cap;
  return true;
}

Reassembler::Status Reassembler::on_text(std::string_view text, Clock::time_point now)
{
  std::lock_guard lk(mu_);
  skip_ = 0; // a text message: whatever was dropped has ended
  expire_locked(now);
  auto a = parse_announcement(text);
  bool bogus = !a && text.substr(0, kPrefix.size()) == kPrefix;
  bool interrupted = expected_ > 0;
  if (interrupted)
    error_ = "fragmented message interrupted after " + std::to_string(received_) + " of " +
        std::to_string(expected_) + " pieces";
  reset();
  if (bogus) {
    error_ = (interrupted ? error_ + ", then a " : std::string("a ")) +
        "malformed fragment announcement: " + printable(text.substr(0, 120));
    return Status::Error;
  }
  if (!a) return interrupted ? Status::Error : Status::Plain;
  if (interrupted)
    return Status::Error; // the new announcement is dropped too: the stream is out of step
  if (a->size > limits_.max_message) {
    error_ = "announced message of " + std::to_string(a->size) + " bytes exceeds the limit of " +
        std::to_string(limits_.max_message);
    return Status::Error;
  }
  if (a->count == 0 || a->count > a->size + 1) {
    error_ = "announced " + std::to_string(a->count) + " pieces for " + std::to_string(a->size) +
        " bytes";
    return Status::Error;
  }
  if (!budget_->reserve(a->size, this, now)) {
    error_ = "announced message of " + std::to_string(a->size) +
        " bytes does not fit this peer's reassembly budget (" + std::to_string(budget_->used()) +
        " of " + std::to_string(budget_->limit()) + " bytes held by its other incomplete messages)";
    return Status::Error;
  }
  size_ = a->size;
  expected_ = a->count;
  last_ = now;
  return Status::Pending;
}

Reassembler::Status Reassembler::on_binary(const void *data, size_t size, Clock::time_point now)
{
  std::lock_guard lk(mu_);
  if (expire_locked(now)) {
    skip_--; // this piece is one of the late ones
    return Status::Error;
  }
  if (expected_ == 0) {
    if (skip_ > 0) {
      skip_--;
      return Status::Pending;
    }
    return Status::Plain;
  }
  if (size > size_ - filled_) {
    drop("pieces exceed the announced " + std::to_string(size_) + " bytes");
    return Status::Error;
  }
  if (!grow(filled_ + size)) {
    drop("out of memory for a " + std::to_string(size_) + "-byte message");
    return Status::Error;
  }
  if (size) std::memcpy(buf_ + filled_, data, size);
  filled_ += size;
  received_++;
  last_ = now;
  if (received_ < expected_) return Status::Pending;
  if (filled_ != size_) {
    drop("pieces hold " + std::to_string(filled_) + " of the announced " + std::to_string(size_) +
         " bytes");
    return Status::Error;
  }
  std::free(done_);
  done_ = buf_ ? buf_ : static_cast<uint8_t *>(std::malloc(1));
  done_size_ = size_;
  buf_ = nullptr;
  reset();
  return Status::Complete;
}

void *Reassembler::take(size_t *size)
{
  std::lock_guard lk(mu_);
  void *p = done_;
  *size = done_size_;
  done_ = nullptr;
  done_size_ = 0;
  return p;
}

} // namespace pointcast::framing
