// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/negotiation.h"

#include "sdp.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <set>

namespace pointcast::negotiation {

bool is_polite(std::string_view self_id, std::string_view remote_id)
{
  return self_id < remote_id; // std::string_view compares bytes (char_traits<char>)
}

const char *action_name(Action a)
{
  switch (a) {
  case Action::CreateOffer: return "create-offer";
  case Action::ApplyLocalOffer: return "apply-local-offer";
  case Action::SendOffer: return "send-offer";
  case Action::ApplyRemoteOffer: return "apply-remote-offer";
  case Action::CreateAnswer: return "create-answer";
  case Action::ApplyLocalAnswer: return "apply-local-answer";
  case Action::SendAnswer: return "send-answer";
  case Action::ApplyRemoteAnswer: return "apply-remote-answer";
  case Action::Recreate: return "recreate";
  }
  return "?";
}

std::vector<Action> Negotiator::negotiation_needed()
{
  if (state_ != State::Stable || making_offer_) {
    pending_ = true;
    return {};
  }
  pending_ = false;
  making_offer_ = true;
  withdrawn_ = false;
  return {Action::CreateOffer};
}

std::vector<Action> Negotiator::finish_exchange()
{
  if (!pending_ || making_offer_ || state_ != State::Stable) return {};
  return negotiation_needed();
}

std::vector<Action> Negotiator::offer_created()
{
  if (!making_offer_) return {};
  making_offer_ = false;
  if (withdrawn_) {
    // Lost a glare while webrtcbin was still creating it; the renegotiation is owed (pending_).
    withdrawn_ = false;
    return finish_exchange();
  }
  state_ = State::HaveLocalOffer;
  // The polite side may have to withdraw this offer, so it leaves webrtcbin stable until the
  // answer comes (see the header). A non-trickling peer's first offer must carry candidates.
  bool defer = opt_.polite && (opt_.trickle || negotiated_);
  offer_applied_ = !defer;
  if (defer) return {Action::SendOffer};
  return {Action::ApplyLocalOffer, Action::SendOffer};
}

void Negotiator::failed()
{
  making_offer_ = false;
  withdrawn_ = false;
  offer_applied_ = false;
  state_ = State::Stable;
}

bool Negotiator::new_connection(std::string_view fp) const
{
  return negotiated_ && !remote_fingerprint_.empty() && !fp.empty() && fp != remote_fingerprint_;
}

std::vector<Action> Negotiator::remote_offer(std::string_view fp)
{
  std::vector<Action> out;
  bool restart = new_connection(fp);
  if (restart) {
    // A new peer connection on the other side: ours cannot be renegotiated into it.
    bool owed = pending_ || making_offer_ || state_ == State::HaveLocalOffer;
    reset();
    pending_ = owed;
    out.push_back(Action::Recreate);
  } else {
    bool collision = making_offer_ || state_ == State::HaveLocalOffer;
    // A first offer of ours still being created has reached nobody: the impolite side drops it
    // and answers too, sparing the polite remote its withdrawal (a browser answers that on a
    // fresh connection). It answers on a fresh webrtcbin: the data channels made for that offer
    // do not open on the old one once it answers (webrtcbin 1.22 numbers them before the DTLS
    // role is known). What the remote's offer leaves out the owner offers once connected.
    bool unsent_first = making_offer_ && !negotiated_;
    if (collision && !opt_.polite && !unsent_first) {
      ignore_offer_ = true; // the polite side answers ours instead
      return {};
    }
    if (collision && !opt_.polite) {
      if (opt_.redo_withdrawn) pending_ = true;
      out.push_back(Action::Recreate);
      making_offer_ = false;
      withdrawn_ = false;
    } else if (collision) {
      if (opt_.redo_withdrawn)
        pending_ = true; // ours is withdrawn, offered again once this exchange is done
      if (making_offer_) withdrawn_ = true;
      if (state_ == State::HaveLocalOffer && offer_applied_) {
        // Applied already (a non-trickling peer, nothing negotiated yet): only a fresh
        // webrtcbin can take the remote offer now.
        out.push_back(Action::Recreate);
        making_offer_ = false;
        withdrawn_ = false;
        negotiated_ = false;
      }
      offer_applied_ = false;
    }
  }
  ignore_offer_ = false;
  state_ = State::HaveRemoteOffer;
  remote_fingerprint_ = std::string(fp);
  remote_applied_ = true;
  out.push_back(Action::ApplyRemoteOffer);
  out.push_back(Action::CreateAnswer);
  return out;
}

std::vector<Action> Negotiator::answer_created()
{
  if (state_ != State::HaveRemoteOffer) return {};
  state_ = State::Stable;
  negotiated_ = true;
  std::vector<Action> out{Action::ApplyLocalAnswer, Action::SendAnswer};
  for (Action a : finish_exchange()) out.push_back(a);
  return out;
}

std::vector<Action> Negotiator::remote_answer(std::string_view fp)
{
  if (state_ != State::HaveLocalOffer) return {};
  std::vector<Action> out;
  if (!offer_applied_) out.push_back(Action::ApplyLocalOffer);
  out.push_back(Action::ApplyRemoteAnswer);
  state_ = State::Stable;
  offer_applied_ = false;
  ignore_offer_ = false;
  negotiated_ = true;
  remote_applied_ = true;
  remote_fingerprint_ = std::string(fp);
  for (Action a : finish_exchange()) out.push_back(a);
  return out;
}

CandidateFate Negotiator::remote_candidate() const
{
  if (ignore_offer_) return CandidateFate::Drop; // belongs to the offer we ignored
  return remote_applied_ ? CandidateFate::Add : CandidateFate::Queue;
}

void Negotiator::reset()
{
  Options o = opt_;
  *this = Negotiator(o);
}

/* ------------------------------------------------------------------------------------------- */

namespace {

std::string upper(std::string_view s)
{
  std::string out(s);
  for (auto &c : out) c = char(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Parses the leading decimal payload type of "PT rest"; -1 if none.
int leading_pt(std::string_view v, std::string_view *rest)
{
  size_t sp = v.find(' ');
  std::string num(v.substr(0, sp));
  if (num.empty() || num.size() > 3 || !std::all_of(num.begin(), num.end(), ::isdigit)) return -1;
  *rest = sp == std::string_view::npos ? std::string_view() : v.substr(sp + 1);
  return std::atoi(num.c_str());
}

} // namespace

namespace {
// Field `n` (0: the kind, 1: the port) of every m-line, in order ("" where it has none).
std::vector<std::string> media_fields(std::string_view sdp, int n)
{
  std::vector<std::string> out;
  for (auto l : sdp::lines(sdp)) {
    if (l.substr(0, 2) != "m=") continue;
    std::string_view rest = l.substr(2);
    for (int i = 0; i < n && !rest.empty(); i++) {
      size_t sp = rest.find(' ');
      rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
    out.emplace_back(rest.substr(0, rest.find(' ')));
  }
  return out;
}
} // namespace

std::vector<std::string> media_kinds(std::string_view sdp)
{
  return media_fields(sdp, 0);
}

std::vector<Codec> offered_codecs(std::string_view sdp, int mline)
{
  std::vector<Codec> out;
  int section = -1;
  auto find = [&](int pt) -> Codec * {
    for (auto &c : out)
      if (c.pt == pt) return &c;
    return nullptr;
  };
  for (auto l : sdp::lines(sdp)) {
    if (l.substr(0, 2) == "m=") {
      section++;
      if (section != mline) continue;
      // m=video 9 UDP/TLS/RTP/SAVPF 120 124 ...: the order of preference.
      size_t at = 0;
      for (int field = 0; field < 3 && at != std::string_view::npos; field++)
        at = l.find(' ', at + 1);
      while (at != std::string_view::npos) {
        size_t next = l.find(' ', at + 1);
        std::string num(l.substr(at + 1, next == std::string_view::npos ? l.npos : next - at - 1));
        if (!num.empty() && std::all_of(num.begin(), num.end(), ::isdigit)) {
          Codec c;
          c.pt = std::atoi(num.c_str());
          out.push_back(c);
        }
        at = next;
      }
      continue;
    }
    if (section != mline || l.substr(0, 2) != "a=") continue;
    std::string_view a = l.substr(2), rest;
    if (a.substr(0, 7) == "rtpmap:") {
      int pt = leading_pt(a.substr(7), &rest);
      Codec *c = pt >= 0 ? find(pt) : nullptr;
      if (!c) continue;
      // NAME/clock[/channels]
      size_t s1 = rest.find('/');
      c->name = upper(rest.substr(0, s1));
      if (s1 != std::string_view::npos) {
        std::string_view tail = rest.substr(s1 + 1);
        size_t s2 = tail.find('/');
        c->clock_rate = std::atoi(std::string(tail.substr(0, s2)).c_str());
        if (s2 != std::string_view::npos)
          c->channels = std::atoi(std::string(tail.substr(s2 + 1)).c_str());
      }
    } else if (a.substr(0, 5) == "fmtp:") {
      int pt = leading_pt(a.substr(5), &rest);
      if (Codec *c = pt >= 0 ? find(pt) : nullptr) c->fmtp = std::string(rest);
    } else if (a.substr(0, 8) == "rtcp-fb:") {
      int pt = leading_pt(a.substr(8), &rest);
      if (Codec *c = pt >= 0 ? find(pt) : nullptr) c->rtcp_fb.emplace_back(rest);
    }
  }
  return out;
}

namespace {
// Whether an H.264 fmtp names constrained baseline: profile_idc 0x42 with constraint_set1
// (profile-iop bit 0x40), as 42e01f and x264's 42c01f; an fmtp without one defaults to it in
// libwebrtc.
bool constrained_baseline(std::string_view fmtp)
{
  auto at = fmtp.find("profile-level-id=");
  if (at == std::string_view::npos) return true;
  auto id = fmtp.substr(at + 17, 6);
  if (id.size() < 4 || upper(id.substr(0, 2)) != "42") return false;
  // strtol, not stoi: a remote's garbage must not throw.
  long iop = std::strtol(std::string(id.substr(2, 2)).c_str(), nullptr, 16);
  return (iop & 0x40) != 0;
}
} // namespace

std::optional<Codec> match_codec(const std::vector<Codec> &offered, std::string_view name)
{
  std::string want = upper(name);
  const Codec *first = nullptr, *mode1 = nullptr;
  for (auto &c : offered) {
    if (c.name != want) continue;
    if (want != "H264") return c;
    if (!first) first = &c;
    if (c.fmtp.find("packetization-mode=1") == std::string::npos) continue;
    if (constrained_baseline(c.fmtp)) return c;
    if (!mode1) mode1 = &c;
  }
  if (mode1) return *mode1;
  if (first) return *first;
  return std::nullopt;
}

namespace {

// What a payload type stands for, bundle-wide: the same number must mean the same in every
// section. RTX by its (final) apt; RED and ULPFEC by name; a codec with its parameters.
std::string meaning(const Codec &c, int apt)
{
  std::string k = c.name + "/" + std::to_string(c.clock_rate) + "/" + std::to_string(c.channels);
  if (c.name == "RTX") return k + " apt=" + std::to_string(apt);
  if (c.name == "RED" || c.name == "ULPFEC") return k;
  return k + " " + c.fmtp;
}

int fmtp_apt(const Codec &c)
{
  auto at = c.fmtp.find("apt=");
  return at == std::string::npos ? -1 : std::atoi(c.fmtp.c_str() + at + 4);
}

// "96 97 98" with each number through `map` (a RED fmtp "97/97", an m= format list).
std::string renumber_list(std::string_view v, char sep, const std::map<int, int> &map)
{
  std::string out;
  size_t start = 0;
  while (start <= v.size()) {
    size_t end = v.find(sep, start);
    std::string_view tok = v.substr(start, end == std::string_view::npos ? v.npos : end - start);
    bool num = !tok.empty() && tok.size() <= 3 && std::all_of(tok.begin(), tok.end(), ::isdigit);
    auto it = num ? map.find(std::atoi(std::string(tok).c_str())) : map.end();
    out += it != map.end() ? std::to_string(it->second) : std::string(tok);
    if (end == std::string_view::npos) break;
    out += sep;
    start = end + 1;
  }
  return out;
}

} // namespace

std::string keep_payload_types(std::string_view offer, std::string_view current)
{
  // An RTX format's apt, through its section's renumbering so far; -1 for other formats.
  auto final_apt = [](const Codec &c, const std::map<int, int> &m) {
    if (c.name != "RTX") return -1;
    int apt = fmtp_apt(c);
    auto it = m.find(apt);
    return it == m.end() ? apt : it->second;
  };
  auto kinds = media_kinds(offer), old_kinds = media_kinds(current);
  auto mids_new = sdp::mids(offer), mids_old = sdp::mids(current);
  if (mids_new.size() != kinds.size() || mids_old.size() != old_kinds.size())
    return std::string(offer);
  std::vector<std::vector<Codec>> now(kinds.size()), before(old_kinds.size());
  for (size_t i = 0; i < kinds.size(); i++) now[i] = offered_codecs(offer, int(i));
  for (size_t i = 0; i < old_kinds.size(); i++) before[i] = offered_codecs(current, int(i));

  std::map<int, std::string> table; // final number -> meaning
  std::set<int> in_offer;
  for (auto &sec : now)
    for (auto &c : sec) in_offer.insert(c.pt);
  std::set<int> live; // the negotiated numbers
  for (auto &sec : before)
    for (auto &c : sec) {
      table.emplace(c.pt, meaning(c, fmtp_apt(c)));
      live.insert(c.pt);
    }

  std::vector<std::map<int, int>> maps(kinds.size()); // per section: offered -> final
  auto counterpart = [&](size_t i) -> int {
    if (mids_new[i].empty()) return -1;
    for (size_t j = 0; j < mids_old.size(); j++)
      if (mids_old[j] == mids_new[i] && old_kinds[j] == kinds[i]) return int(j);
    return -1;
  };
  // The negotiated numbers of shared sections. The first format is the transceiver's own codec
  // (its codec-preferences, which our payloader sends with): never renumbered.
  for (size_t i = 0; i < now.size(); i++) {
    auto &m = maps[i];
    if (!now[i].empty()) m[now[i][0].pt] = now[i][0].pt;
    int j = counterpart(i);
    if (j < 0) continue;
    std::set<int> used;
    for (bool rtx : {false, true})
      for (auto &c : now[i]) {
        if (m.count(c.pt) || (c.name == "RTX") != rtx) continue;
        int apt = final_apt(c, m);
        const Codec *pick = nullptr;
        for (auto &o : before[size_t(j)]) {
          if (used.count(o.pt) || o.name != c.name || o.clock_rate != c.clock_rate ||
              o.channels != c.channels)
            continue;
          if (rtx && fmtp_apt(o) != apt) continue;
          if (!pick || (o.fmtp == c.fmtp && pick->fmtp != c.fmtp)) pick = &o;
        }
        if (!pick) continue;
        used.insert(pick->pt);
        m[c.pt] = pick->pt;
      }
  }
  for (size_t i = 0; i < now.size(); i++)
    if (!now[i].empty()) table.emplace(now[i][0].pt, meaning(now[i][0], -1));
  // The rest: kept unless the number means something else by now, else the lowest free one.
  auto fresh = [&]() -> int {
    for (int lo : {96, 35})
      for (int pt = lo; pt <= (lo == 96 ? 127 : 63); pt++)
        if (!table.count(pt) && !in_offer.count(pt)) return pt;
    return -1;
  };
  auto taken = [](const std::map<int, int> &m, int pt) {
    for (auto &kv : m)
      if (kv.second == pt) return true;
    return false;
  };
  for (size_t i = 0; i < now.size(); i++)
    for (bool rtx : {false, true})
      for (auto &c : now[i]) {
        auto &m = maps[i];
        if (m.count(c.pt) || (c.name == "RTX") != rtx) continue;
        int apt = final_apt(c, m);
        std::string what = meaning(c, apt);
        // A live section's number for the same thing (as webrtcbin numbers a bundle), else its
        // own if that is free, else a free one.
        int pt = -1;
        for (auto &[n, w] : table)
          if (w == what && pt < 0 && live.count(n) && !taken(m, n)) pt = n;
        auto t = table.find(c.pt);
        if (pt < 0) pt = t == table.end() || t->second == what ? c.pt : fresh();
        if (pt < 0) return std::string(offer);
        table[pt] = what;
        m[c.pt] = pt;
      }
  bool same = true;
  for (auto &m : maps)
    for (auto &[a, b] : m) same &= a == b;
  if (same) return std::string(offer);

  // Rewrite: the m= format list, and the leading number of rtpmap/fmtp/rtcp-fb lines.
  std::string out;
  int section = -1;
  for (auto l : sdp::lines(offer)) {
    std::string line(l);
    if (l.substr(0, 2) == "m=") {
      section++;
      size_t at = 0;
      for (int field = 0; field < 3 && at != std::string_view::npos; field++)
        at = l.find(' ', at + 1);
      if (at != std::string_view::npos)
        line = std::string(l.substr(0, at + 1)) +
            renumber_list(l.substr(at + 1), ' ', maps[size_t(section)]);
    } else if (section >= 0 && l.substr(0, 2) == "a=") {
      auto &m = maps[size_t(section)];
      for (std::string_view attr : {"rtpmap:", "fmtp:", "rtcp-fb:"}) {
        if (l.substr(2, attr.size()) != attr) continue;
        std::string_view rest;
        int pt = leading_pt(l.substr(2 + attr.size()), &rest);
        auto it = pt >= 0 ? m.find(pt) : m.end();
        if (it == m.end()) break;
        std::string value(rest);
        if (attr == "fmtp:") {
          const Codec *c = nullptr;
          for (auto &k : now[size_t(section)])
            if (k.pt == pt) c = &k;
          if (c && c->name == "RTX") {
            int apt = fmtp_apt(*c);
            auto a = m.find(apt);
            if (a != m.end()) {
              auto at = value.find("apt=");
              size_t end = value.find(';', at);
              value = value.substr(0, at) + "apt=" + std::to_string(a->second) +
                  (end == std::string::npos ? "" : value.substr(end));
            }
          } else if (c && c->name == "RED") {
            value = renumber_list(value, '/', m);
          }
        }
        line = "a=" + std::string(attr) + std::to_string(it->second) + (rest.data() ? " " : "") +
            value;
        break;
      }
    }
    out += line + "\r\n";
  }
  return out;
}

namespace {
bool repair_format(const Codec &c)
{
  return c.name == "RTX" || c.name == "RED" || c.name == "ULPFEC";
}
} // namespace

std::vector<std::string> unanswered_feedback(std::string_view offer, std::string_view answer)
{
  std::vector<std::string> out;
  auto kinds = media_kinds(offer);
  auto ports = media_fields(answer, 1); // "0": rejected
  auto mids = sdp::mids(offer);
  for (size_t i = 0; i < kinds.size() && i < ports.size(); i++) {
    if (kinds[i] != "video" || ports[i] == "0") continue;
    auto ours = offered_codecs(answer, int(i)), theirs = offered_codecs(offer, int(i));
    const Codec *answered = nullptr;
    for (auto &c : ours)
      if (!repair_format(c) && !c.name.empty()) {
        answered = &c;
        break;
      }
    if (!answered) continue;
    const Codec *offered = nullptr;
    for (auto &c : theirs)
      if (c.pt == answered->pt) offered = &c;
    if (!offered) continue;
    std::string missing;
    auto has = [](const std::vector<std::string> &fb, std::string_view v) {
      return std::find(fb.begin(), fb.end(), v) != fb.end();
    };
    for (std::string_view fb : {"nack", "nack pli", "ccm fir", "transport-cc"})
      if (has(offered->rtcp_fb, fb) && !has(answered->rtcp_fb, fb))
        missing += " " + std::string(fb);
    auto with = [](const std::vector<Codec> &cs, std::string_view name, int apt) {
      for (auto &c : cs)
        if (c.name == name && (apt < 0 || fmtp_apt(c) == apt)) return true;
      return false;
    };
    if (with(theirs, "RTX", offered->pt) && !with(ours, "RTX", answered->pt)) missing += " rtx";
    if (with(theirs, "RED", -1) && !with(ours, "RED", -1)) missing += " red";
    if (with(theirs, "ULPFEC", -1) && !with(ours, "ULPFEC", -1)) missing += " ulpfec";
    if (!missing.empty())
      out.push_back((i < mids.size() && !mids[i].empty() ? mids[i] : std::to_string(i)) + ":" +
                    missing);
  }
  return out;
}

namespace {
// The first a=setup value of an SDP ("" if none).
std::string_view first_setup(std::string_view sdp)
{
  for (auto l : sdp::lines(sdp))
    if (l.substr(0, 8) == "a=setup:") return l.substr(8);
  return {};
}
} // namespace

std::string dtls_role(std::string_view local, std::string_view remote)
{
  std::string_view ours = first_setup(local), theirs = first_setup(remote);
  if (ours == "active" || ours == "passive") return std::string(ours);
  if (theirs == "active") return "passive";
  if (theirs == "passive") return "active";
  return "";
}

std::string keep_dtls_role(std::string_view answer, std::string_view role)
{
  if (role != "active" && role != "passive") return std::string(answer);
  std::string out;
  for (auto l : sdp::lines(answer))
    out +=
        (l.substr(0, 8) == "a=setup:" ? "a=setup:" + std::string(role) : std::string(l)) + "\r\n";
  return out;
}

std::string fingerprint(std::string_view sdp)
{
  for (auto l : sdp::lines(sdp))
    if (l.substr(0, 14) == "a=fingerprint:") return std::string(l);
  return "";
}

std::string connection_identity(std::string_view sdp)
{
  std::string ufrag;
  for (auto l : sdp::lines(sdp))
    if (l.substr(0, 12) == "a=ice-ufrag:") {
      ufrag = std::string(l);
      break;
    }
  std::string fp = fingerprint(sdp);
  if (fp.empty() && ufrag.empty()) return "";
  return fp + " " + ufrag;
}

} // namespace pointcast::negotiation
