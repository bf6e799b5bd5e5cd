// SPDX-License-Identifier: LGPL-2.1-or-later
// The impairment model of pcnet-router, one direction of a link, with no I/O: a packet that
// arrives at time `now` is either dropped (with a reason) or given the time it leaves.
// Order of effects, as on a real path: outage, loss (random or Gilbert-Elliott), the bottleneck
// (rate limit with a drop-tail queue), then propagation delay with jitter.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace pcnet {

struct Params {
  double loss = 0;           // random loss probability per packet (used when ge_p == 0)
  double ge_p = 0, ge_r = 1; // Gilbert-Elliott: P(good -> bad), P(bad -> good) per packet
  double ge_loss_bad = 1;    // loss probability in the bad state
  double ge_loss_good = 0;   // loss probability in the good state
  double delay_ms = 0;       // one-way propagation delay
  double jitter_ms = 0;      // standard deviation of a normal added to the delay
  bool reorder = false;      // false: a late packet holds back the ones behind it (FIFO)
  double rate_kbit = 0;      // bottleneck rate, 0 = unlimited
  int64_t queue_bytes = 0;   // drop-tail queue in front of the bottleneck, 0 = unbounded
  double queue_ms = 0;       // the same as time at the current rate (wins when set)
  bool down = false;         // outage: every packet dropped
};

// Applies "key=value key=value ..." to p (only the keys given change; "clear" resets first).
// Returns an empty string or the reason the text is invalid (p unchanged then).
std::string apply_settings(Params &p, const std::string &text);
std::string describe(const Params &p);

enum class Verdict { Pass, Lost, QueueFull, Down };

struct Stats {
  uint64_t in = 0, in_bytes = 0, lost = 0, queue_drops = 0, down_drops = 0, out = 0, out_bytes = 0,
           write_errors = 0;
  int64_t late_max_ns = 0; // how far behind its due time a packet was written at worst
  double late_sum_ns = 0;
};

class Direction {
public:
  explicit Direction(uint64_t seed) : rng_(seed) {}
  Params params;
  Stats stats;
  // Decides the fate of a packet of `bytes` arriving at `now_ns`; on Pass, *due_ns is when it
  // leaves the link.
  Verdict admit(int64_t now_ns, size_t bytes, int64_t *due_ns);
  int64_t queue_limit_bytes() const;

private:
  std::mt19937_64 rng_;
  bool ge_bad_ = false;
  int64_t link_free_ns_ = 0; // when the bottleneck has sent everything queued so far
  int64_t last_due_ns_ = 0;  // for FIFO order without reordering
  double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
};

} // namespace pcnet
