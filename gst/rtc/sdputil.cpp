#include "rtc/sdputil.h"

#include <cstdlib>

namespace pointcast::sdp {

static std::vector<std::string_view> split_lines(std::string_view sdp)
{
  std::vector<std::string_view> lines;
  while (!sdp.empty()) {
    size_t n = sdp.find('\n');
    std::string_view line = sdp.substr(0, n);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (!line.empty())
      lines.push_back(line);
    if (n == std::string_view::npos)
      break;
    sdp.remove_prefix(n + 1);
  }
  return lines;
}

uint64_t max_message_size(std::string_view sdp)
{
  static constexpr std::string_view attr = "a=max-message-size:";
  bool in_application = false;
  for (auto line : split_lines(sdp)) {
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
  for (auto line : split_lines(sdp))
    n += line.substr(0, 2) == "m=";
  return n;
}

std::vector<std::string> mids(std::string_view sdp)
{
  std::vector<std::string> out;
  for (auto line : split_lines(sdp)) {
    if (line.substr(0, 2) == "m=")
      out.emplace_back();
    else if (!out.empty() && line.substr(0, 6) == "a=mid:")
      out.back() = std::string(line.substr(6));
  }
  return out;
}

std::string with_candidates(std::string_view sdp, const std::vector<Candidate> &candidates)
{
  auto lines = split_lines(sdp);
  // Sections: [0] is the session part, [i+1] the i-th m-section.
  std::vector<std::vector<std::string_view>> sections(1);
  for (auto line : lines) {
    if (line.substr(0, 2) == "m=")
      sections.emplace_back();
    sections.back().push_back(line);
  }
  std::string out;
  out.reserve(sdp.size() + candidates.size() * 100);
  for (size_t s = 0; s < sections.size(); s++) {
    bool has = false, has_end = false;
    for (auto line : sections[s]) {
      out.append(line).append("\r\n");
      has |= line.substr(0, 12) == "a=candidate:";
      has_end |= line == "a=end-of-candidates";
    }
    if (s == 0 || has)
      continue;
    bool added = false;
    for (const auto &c : candidates) {
      if (c.mline != int(s) - 1 || c.candidate.empty())
        continue;
      std::string_view text = c.candidate;
      if (text.substr(0, 2) == "a=")
        text.remove_prefix(2);
      out.append("a=").append(text).append("\r\n");
      added = true;
    }
    if (added && !has_end)
      out.append("a=end-of-candidates\r\n");
  }
  return out;
}

} // namespace pointcast::sdp

namespace pointcast::sdp {

std::string drop_bundle_with_split_ice(std::string_view sdp)
{
  auto lines = split_lines(sdp);
  std::string first_ufrag;
  bool split = false, grouped = false;
  for (auto line : lines) {
    if (line.substr(0, 14) == "a=group:BUNDLE")
      grouped = true;
    if (line.substr(0, 12) == "a=ice-ufrag:") {
      std::string u(line.substr(12));
      if (first_ufrag.empty())
        first_ufrag = u;
      else if (u != first_ufrag)
        split = true;
    }
  }
  if (!grouped || !split)
    return std::string(sdp);
  std::string out;
  for (auto line : lines)
    if (line.substr(0, 14) != "a=group:BUNDLE") {
      out += line;
      out += "\r\n";
    }
  return out;
}

} // namespace pointcast::sdp
