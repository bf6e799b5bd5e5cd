// SPDX-License-Identifier: LGPL-2.1-or-later
#include "impair.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace pcnet {

namespace {

bool parse_number(const std::string &s, double *out)
{
  if (s.empty()) return false;
  char *end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  std::string rest(end);
  if (rest == "%")
    v /= 100;
  else if (rest == "k" || rest == "K")
    v *= 1e3;
  else if (rest == "M" || rest == "m")
    v *= 1e6;
  else if (!rest.empty())
    return false;
  if (!std::isfinite(v) || v < 0) return false;
  *out = v;
  return true;
}

bool parse_bool(const std::string &s, bool *out)
{
  if (s == "1" || s == "on" || s == "true" || s == "yes")
    *out = true;
  else if (s == "0" || s == "off" || s == "false" || s == "no")
    *out = false;
  else
    return false;
  return true;
}

} // namespace

std::string apply_settings(Params &p, const std::string &text)
{
  Params n = p;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    if (word == "clear") {
      n = Params{};
      continue;
    }
    auto eq = word.find('=');
    if (eq == std::string::npos) return "expected key=value, got '" + word + "'";
    std::string key = word.substr(0, eq), val = word.substr(eq + 1);
    double v = 0;
    bool ok = true;
    if (key == "loss")
      ok = parse_number(val, &n.loss) && n.loss <= 1;
    else if (key == "ge") {
      // ge=P:R[:LOSS_BAD[:LOSS_GOOD]]; ge=0 turns it off.
      double f[4] = {0, 1, 1, 0};
      size_t start = 0;
      int i = 0;
      for (; i < 4 && start <= val.size(); i++) {
        size_t c = val.find(':', start);
        std::string part =
            val.substr(start, c == std::string::npos ? std::string::npos : c - start);
        if (!parse_number(part, &f[i]) || f[i] > 1) {
          ok = false;
          break;
        }
        if (c == std::string::npos) {
          i++;
          break;
        }
        start = c + 1;
      }
      if (ok && f[0] > 0 && i < 2) ok = false; // a bad state needs a way out
      if (ok) {
        n.ge_p = f[0];
        n.ge_r = f[1];
        n.ge_loss_bad = f[2];
        n.ge_loss_good = f[3];
      }
    } else if (key == "delay")
      ok = parse_number(val, &n.delay_ms);
    else if (key == "jitter")
      ok = parse_number(val, &n.jitter_ms);
    else if (key == "reorder")
      ok = parse_bool(val, &n.reorder);
    else if (key == "rate") {
      // kbit/s; "1M" = 1000 kbit/s, "300k" = 300 kbit/s.
      ok = parse_number(val, &v);
      if (ok)
        n.rate_kbit =
            (val.back() == 'M' || val.back() == 'm' || val.back() == 'k' || val.back() == 'K')
            ? v / 1000
            : v;
    } else if (key == "queue") {
      ok = parse_number(val, &v);
      if (ok) {
        n.queue_bytes = int64_t(v);
        n.queue_ms = 0;
      }
    } else if (key == "queue-ms")
      ok = parse_number(val, &n.queue_ms);
    else if (key == "down")
      ok = parse_bool(val, &n.down);
    else
      return "unknown setting '" + key + "'";
    if (!ok) return "bad value for " + key + ": '" + val + "'";
  }
  p = n;
  return {};
}

std::string describe(const Params &p)
{
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "{\"loss\":%g,\"ge\":[%g,%g,%g,%g],\"delay_ms\":%g,\"jitter_ms\":%g,\"reorder\":%s,"
                "\"rate_kbit\":%g,\"queue_bytes\":%lld,\"queue_ms\":%g,\"down\":%s}",
                p.loss, p.ge_p, p.ge_r, p.ge_loss_bad, p.ge_loss_good, p.delay_ms, p.jitter_ms,
                p.reorder ? "true" : "false", p.rate_kbit, (long long)p.queue_bytes, p.queue_ms,
                p.down ? "true" : "false");
  return buf;
}

int64_t Direction::queue_limit_bytes() const
{
  if (params.queue_ms > 0 && params.rate_kbit > 0)
    return int64_t(params.queue_ms * params.rate_kbit / 8); // ms * kbit/s / 8 = bytes
  return params.queue_bytes;
}

Verdict Direction::admit(int64_t now_ns, size_t bytes, int64_t *due_ns)
{
  stats.in++;
  stats.in_bytes += bytes;
  const Params &p = params;
  if (p.down) {
    stats.down_drops++;
    return Verdict::Down;
  }
  bool lost;
  if (p.ge_p > 0) {
    // The state moves once per packet, then the packet sees the state's loss probability.
    if (ge_bad_) {
      if (uniform() < p.ge_r) ge_bad_ = false;
    } else if (uniform() < p.ge_p)
      ge_bad_ = true;
    lost = uniform() < (ge_bad_ ? p.ge_loss_bad : p.ge_loss_good);
  } else {
    lost = p.loss > 0 && uniform() < p.loss;
  }
  if (lost) {
    stats.lost++;
    return Verdict::Lost;
  }

  int64_t leave = now_ns;
  if (p.rate_kbit > 0) {
    // Fluid drop-tail queue: what is still queued is the time the bottleneck needs to send it.
    double bytes_per_ns = p.rate_kbit * 1000 / 8 / 1e9;
    int64_t backlog = link_free_ns_ > now_ns ? int64_t((link_free_ns_ - now_ns) * bytes_per_ns) : 0;
    int64_t limit = queue_limit_bytes();
    if (limit > 0 && backlog + int64_t(bytes) > limit) {
      stats.queue_drops++;
      return Verdict::QueueFull;
    }
    link_free_ns_ = std::max(link_free_ns_, now_ns) + int64_t(bytes / bytes_per_ns);
    leave = link_free_ns_;
  }
  double extra_ms = p.delay_ms;
  if (p.jitter_ms > 0) extra_ms += std::normal_distribution<double>(0, p.jitter_ms)(rng_);
  int64_t due = leave + int64_t(std::max(0.0, extra_ms) * 1e6);
  if (!p.reorder) due = std::max(due, last_due_ns_);
  last_due_ns_ = std::max(last_due_ns_, due);
  *due_ns = due;
  return Verdict::Pass;
}

} // namespace pcnet
