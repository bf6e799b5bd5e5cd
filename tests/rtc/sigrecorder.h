// SPDX-License-Identifier: LGPL-2.1-or-later
/* For signaller tests: a recorder of every SignallerEvents callback, and a wait that iterates the
 * default main context (where the signallers under test run). */
#pragma once

#include "rtc/sigcheck.h"
#include "rtc/signaller.h"

#include <glib.h>

#include <string>
#include <vector>

namespace sigtest {

struct Event {
  std::string kind, peer, a, b;
  bool fatal = false;
};

struct Recorder {
  std::vector<Event> events;
  pointcast::SignallerEvents hooks()
  {
    pointcast::SignallerEvents ev;
    ev.ready = [this](const std::vector<std::pair<std::string, std::string>> &present) {
      std::string ids;
      for (const auto &p : present) ids += p.first + ",";
      events.push_back({"ready", "", ids, ""});
    };
    ev.peer_joined = [this](const std::string &p, const std::string &t) {
      events.push_back({"joined", p, t, ""});
    };
    ev.peer_left = [this](const std::string &p) { events.push_back({"left", p, "", ""}); };
    ev.sdp = [this](const std::string &p, const std::string &t, const std::string &s) {
      events.push_back({"sdp", p, t, s});
    };
    ev.candidate = [this](const std::string &p, const std::string &mid, int ml,
                          const std::string &c) {
      events.push_back({"candidate", p, mid + "/" + std::to_string(ml), c});
    };
    ev.error = [this](const std::string &r, bool fatal) {
      Event e{"error", "", r, ""};
      e.fatal = fatal;
      events.push_back(e);
    };
    ev.disconnected = [this](const std::string &r) {
      events.push_back({"disconnected", "", r, ""});
    };
    return ev;
  }
  size_t count(const std::string &kind) const
  {
    size_t n = 0;
    for (const auto &e : events) n += e.kind == kind;
    return n;
  }
  const Event *find(const std::string &kind, size_t nth = 0) const
  {
    for (const auto &e : events)
      if (e.kind == kind && nth-- == 0) return &e;
    return nullptr;
  }
  // Errors whose reason contains `what`.
  size_t errors_with(const std::string &what) const
  {
    size_t n = 0;
    for (const auto &e : events) n += e.kind == "error" && e.a.find(what) != std::string::npos;
    return n;
  }
  std::string dump() const
  {
    std::string s;
    for (const auto &e : events)
      if (e.kind != "candidate" && s.size() < 3000)
        s += e.kind + " " + e.peer + " " + pointcast::sigcheck::printable(e.a, 120) + "\n";
    return s + std::to_string(count("candidate")) + " candidates\n";
  }
};

// Iterates the default context until pred() holds or timeout_ms passes.
template <class P>
bool wait_for(P pred, int timeout_ms = 10000)
{
  gint64 end = g_get_monotonic_time() + gint64(timeout_ms) * 1000;
  while (!pred()) {
    if (g_get_monotonic_time() > end) return false;
    g_main_context_iteration(nullptr, FALSE);
    g_usleep(1000);
  }
  return true;
}

} // namespace sigtest
