// SPDX-License-Identifier: LGPL-2.1-or-later
#include "sdp.h"

#include <algorithm>
#include <cstdlib>

namespace pointcast::sdp {

std::vector<std::string_view> lines(std::string_view sdp)
{
  std::vector<std::string_view> lines;
  while (!sdp.empty()) {
    size_t n = sdp.find('\n');
    std::string_view line = sdp.substr(0, n);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.push_back(line);
    if (n == std::string_view::npos) break;
    sdp.remove_prefix(n + 1);
  }
  return lines;
}

std::string_view candidate_value(std::string_view candidate)
{
  if (candidate.substr(0, 2) == "a=") candidate.remove_prefix(2);
  return candidate;
}

uint64_t max_message_size(std::string_view sdp)
{
  static constexpr std::string_view attr = "a=max-message-size:";
  bool in_application = false;
  for (auto line : lines(sdp)) {
    if (line.substr(0, 2) == "m=")
      in_application = line.substr(0, 14) == "m=application ";
    else if (in_application && line.substr(0, attr.size()) == attr)
      return std::strtoull(std::string(line.substr(attr.size())).c_str(), nullptr, 10);
  }
  return 65536;
}

int media_count(std::string_view sdp)
{
  int n = 0;
  for (auto line : lines(sdp)) n += line.substr(0, 2) == "m=";
  return n;
}

std::vector<std::string> mids(std::string_view sdp)
{
  std::vector<std::string> out;
  for (auto line : lines(sdp)) {
    if (line.substr(0, 2) == "m=")
      out.emplace_back();
    else if (!out.empty() && line.substr(0, 6) == "a=mid:")
      out.back() = std::string(line.substr(6));
  }
  return out;
}

std::string with_candidates(std::string_view sdp, const std::vector<Candidate> &candidates,
                            Fill fill)
{
  auto lines = sdp::lines(sdp);
  // Sections: [0] is the session part, [i+1] the i-th m-section.
  std::vector<std::vector<std::string_view>> sections(1);
  for (auto line : lines) {
    if (line.substr(0, 2) == "m=") sections.emplace_back();
    sections.back().push_back(line);
  }
  std::vector<std::string> section_mids = sdp::mids(sdp);
  const int media = int(section_mids.size());
  // The m-section of c, or -1: its index when in range, else the (last) section with its mid.
  auto section_of = [&](const Candidate &c) {
    if (c.mline >= 0 && c.mline < media) return c.mline;
    int found = -1;
    if (c.mid)
      for (int k = 0; k < media; k++)
        if (section_mids[k] == *c.mid) found = k;
    return found;
  };
  std::string out;
  out.reserve(sdp.size() + candidates.size() * 100);
  for (size_t s = 0; s < sections.size(); s++) {
    bool has = false, has_end = false;
    for (auto line : sections[s]) {
      out.append(line).append("\r\n");
      has |= line.substr(0, 12) == "a=candidate:";
      has_end |= line == "a=end-of-candidates";
    }
    if (s == 0 || (fill == Fill::Complete && has)) continue;
    std::vector<std::string> added;
    for (const auto &c : candidates) {
      if (c.candidate.empty() || section_of(c) != int(s) - 1) continue;
      std::string line = "a=" + std::string(candidate_value(c.candidate));
      auto &sec = sections[s];
      if (std::find(sec.begin(), sec.end(), line) != sec.end() ||
          std::find(added.begin(), added.end(), line) != added.end())
        continue;
      out.append(line).append("\r\n");
      added.push_back(std::move(line));
    }
    if (fill == Fill::Complete && !added.empty() && !has_end) out.append("a=end-of-candidates\r\n");
  }
  return out;
}

} // namespace pointcast::sdp

namespace pointcast::sdp {

std::string drop_bundle_with_split_ice(std::string_view sdp)
{
  auto lines = sdp::lines(sdp);
  std::string first_ufrag;
  bool split = false, grouped = false;
  for (auto line : lines) {
    if (line.substr(0, 14) == "a=group:BUNDLE") grouped = true;
    if (line.substr(0, 12) == "a=ice-ufrag:") {
      std::string u(line.substr(12));
      if (first_ufrag.empty())
        first_ufrag = u;
      else if (u != first_ufrag)
        split = true;
    }
  }
  if (!grouped || !split) return std::string(sdp);
  std::string out;
  for (auto line : lines)
    if (line.substr(0, 14) != "a=group:BUNDLE") {
      out += line;
      out += "\r\n";
    }
  return out;
}

} // namespace pointcast::sdp

namespace pointcast::sdp {

std::string keep_bundle_in_reoffer(std::string_view sdp)
{
  auto lines = sdp::lines(sdp);
  std::vector<std::string> group;                    // mids of the BUNDLE group, the tag first
  std::vector<std::vector<std::string>> sections(1); // [0]: session part
  for (auto line : lines) {
    if (line.substr(0, 2) == "m=") sections.emplace_back();
    sections.back().emplace_back(line);
    if (sections.size() == 1 && line.substr(0, 15) == "a=group:BUNDLE ") {
      std::string_view rest = line.substr(15);
      while (!rest.empty()) {
        size_t sp = rest.find(' ');
        if (sp != 0) group.emplace_back(rest.substr(0, sp));
        if (sp == std::string_view::npos) break;
        rest.remove_prefix(sp + 1);
      }
    }
  }
  auto mid_of = [](const std::vector<std::string> &sec) -> std::string {
    for (auto &l : sec)
      if (l.rfind("a=mid:", 0) == 0) return l.substr(6);
    return "";
  };
  auto in_group = [&](const std::string &mid) {
    for (auto &g : group)
      if (g == mid) return !mid.empty();
    return false;
  };
  // The tag: the first section of the group that has a port.
  std::string port, setup;
  for (size_t i = 1; i < sections.size() && port.empty(); i++) {
    if (!in_group(mid_of(sections[i]))) continue;
    const std::string &m = sections[i][0];
    size_t a = m.find(' '), b = a == std::string::npos ? a : m.find(' ', a + 1);
    if (b == std::string::npos || m.substr(a + 1, b - a - 1) == "0") continue;
    port = m.substr(a + 1, b - a - 1);
    for (auto &l : sections[i])
      if (l.rfind("a=setup:", 0) == 0) setup = l;
  }
  if (port.empty() || (setup != "a=setup:active" && setup != "a=setup:passive"))
    return std::string(sdp);
  std::string out;
  out.reserve(sdp.size() + 64);
  for (size_t i = 0; i < sections.size(); i++) {
    bool fix = i > 0 && in_group(mid_of(sections[i]));
    for (size_t j = 0; j < sections[i].size(); j++) {
      std::string line = sections[i][j];
      if (fix && j == 0) {
        size_t a = line.find(' '), b = a == std::string::npos ? a : line.find(' ', a + 1);
        if (b != std::string::npos) line = line.substr(0, a + 1) + port + line.substr(b);
      } else if (fix && line == "a=bundle-only") {
        continue;
      } else if (fix && line.rfind("a=setup:", 0) == 0) {
        line = setup;
      }
      out.append(line).append("\r\n");
    }
  }
  return out;
}

} // namespace pointcast::sdp
