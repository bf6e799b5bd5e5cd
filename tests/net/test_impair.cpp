// SPDX-License-Identifier: LGPL-2.1-or-later
// The impairment model on a virtual clock: loss rates, Gilbert-Elliott bursts, the rate limit
// and its drop-tail bound, delay and jitter with and without reordering, settings parsing.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "check.h"
#include "impair.h"

using namespace pcnet;

static Direction make(const char *settings, uint64_t seed = 7)
{
  Direction d(seed);
  std::string err = apply_settings(d.params, settings);
  if (!err.empty()) {
    std::fprintf(stderr, "settings %s: %s\n", settings, err.c_str());
    std::exit(1);
  }
  return d;
}

static void random_loss()
{
  Direction d = make("loss=2%");
  int lost = 0, n = 200000;
  int64_t due;
  for (int i = 0; i < n; i++) lost += d.admit(i * 1000000LL, 1000, &due) == Verdict::Lost;
  double rate = double(lost) / n;
  CHECK(std::fabs(rate - 0.02) < 0.002, "loss %.4f", rate);
}

static void gilbert_elliott()
{
  // P(g->b)=0.01, P(b->g)=0.25, all lost in bad: mean loss 0.01/0.26 = 3.85 %, bursts of 4.
  Direction d = make("ge=0.01:0.25");
  int lost = 0, n = 400000, bursts = 0;
  bool prev = false;
  int64_t due;
  for (int i = 0; i < n; i++) {
    bool l = d.admit(i * 1000000LL, 1000, &due) == Verdict::Lost;
    lost += l;
    bursts += l && !prev;
    prev = l;
  }
  double rate = double(lost) / n, mean_burst = double(lost) / bursts;
  CHECK(std::fabs(rate - 0.0385) < 0.004, "GE loss %.4f", rate);
  CHECK(std::fabs(mean_burst - 4.0) < 0.4, "GE mean burst %.2f", mean_burst);
}

static void rate_and_queue()
{
  // 1000 kbit/s = 125 bytes/ms: 1250-byte packets leave 10 ms apart; offered at 1/ms the
  // 12,500-byte queue (100 ms) fills and the rest is dropped at its tail.
  Direction d = make("rate=1M queue-ms=100");
  CHECK(d.queue_limit_bytes() == 12500, "queue %lld", (long long)d.queue_limit_bytes());
  std::vector<int64_t> out;
  int drops = 0;
  for (int i = 0; i < 1000; i++) {
    int64_t due;
    Verdict v = d.admit(i * 1000000LL, 1250, &due);
    if (v == Verdict::Pass)
      out.push_back(due);
    else
      drops += v == Verdict::QueueFull;
  }
  // Throughput over the second: one packet per 10 ms, and none waits longer than the queue.
  CHECK(out.size() >= 100 && out.size() <= 112, "%zu passed", out.size());
  CHECK(drops == 1000 - int(out.size()), "%d drops", drops);
  for (size_t i = 1; i < out.size(); i++)
    CHECK(out[i] - out[i - 1] == 10000000, "spacing %lld ns", (long long)(out[i] - out[i - 1]));
}

static void delay_jitter_order()
{
  // Without reordering a late packet holds back the next; with it, some overtake.
  for (int reorder = 0; reorder < 2; reorder++) {
    Direction d = make(reorder ? "delay=25 jitter=5 reorder=1" : "delay=25 jitter=5");
    int64_t prev = 0, inversions = 0;
    double sum = 0, sum2 = 0;
    int n = 20000;
    for (int i = 0; i < n; i++) {
      int64_t now = i * 1000000LL, due; // 1 ms apart: jitter of 5 ms reorders often
      CHECK(d.admit(now, 100, &due) == Verdict::Pass, "dropped");
      inversions += due < prev;
      prev = std::max(prev, due);
      double ms = (due - now) / 1e6;
      sum += ms;
      sum2 += ms * ms;
    }
    double mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
    if (reorder) {
      CHECK(inversions > n / 10, "only %lld reordered", (long long)inversions);
      CHECK(std::fabs(mean - 25) < 0.3 && std::fabs(sd - 5) < 0.3, "mean %.2f sd %.2f", mean, sd);
    } else {
      CHECK(inversions == 0, "%lld reordered without reorder", (long long)inversions);
      CHECK(mean >= 25 && mean < 35, "mean %.2f", mean);
    }
  }
}

static void outage_and_parsing()
{
  Direction d = make("down=1");
  int64_t due;
  CHECK(d.admit(0, 100, &due) == Verdict::Down, "not down");
  CHECK(apply_settings(d.params, "down=0 delay=10").empty(), "parse");
  CHECK(d.admit(1, 100, &due) == Verdict::Pass && due == 1 + 10000000, "due %lld", (long long)due);
  Params p;
  CHECK(!apply_settings(p, "loss=2").empty(), "loss above 1 accepted");
  CHECK(!apply_settings(p, "bogus=1").empty(), "unknown key accepted");
  CHECK(!apply_settings(p, "ge=0.1").empty(), "GE without a way out accepted");
  CHECK(apply_settings(p, "rate=300k").empty() && p.rate_kbit == 300, "rate %g", p.rate_kbit);
  CHECK(apply_settings(p, "delay=5 clear jitter=1").empty() && p.delay_ms == 0 && p.jitter_ms == 1,
        "clear");
}

int main()
{
  random_loss();
  gilbert_elliott();
  rate_and_queue();
  delay_jitter_order();
  outage_and_parsing();
  if (net_check_failures()) return 1;
  std::puts("impairment model: all checks passed");
  return 0;
}
