// SPDX-License-Identifier: LGPL-2.1-or-later
/* make_signaller: picks the transport by the URI's scheme, and puts every event it reports
 * through the checks of rtc/sigcheck.h: whatever a (possibly malicious) signaling server sends,
 * webrtcbin and the logs only see bounded, valid UTF-8 SDP, candidates and peer ids. */
#include "rtc/signaller.h"
#include "rtc/sigcheck.h"

#include <map>

namespace pointcast {
namespace {

// Text as it is when it is valid UTF-8 without control characters, else escaped.
std::string safe_text(const std::string &s)
{
  bool clean = sigcheck::valid_utf8(s) && s.size() <= 1000;
  for (unsigned char c : s) clean = clean && c >= 0x20 && c != 0x7f;
  return clean ? s : sigcheck::printable(s, 1000);
}

class CheckedSignaller final : public Signaller {
public:
  explicit CheckedSignaller(std::unique_ptr<Signaller> inner) : inner_(std::move(inner)) {}
  ~CheckedSignaller() override { inner_->stop(); }

  void start(GMainContext *ctx, SignallerEvents ev) override
  {
    // Events come from ctx only: the state needs no lock.
    auto st = std::make_shared<State>();
    st->ev = std::move(ev);
    SignallerEvents w;
    w.ready = [st](const std::vector<std::pair<std::string, std::string>> &present) {
      std::vector<std::pair<std::string, std::string>> ok;
      for (const auto &[id, type] : present)
        if (st->id_ok(id, type)) ok.emplace_back(id, type);
      if (st->ev.ready) st->ev.ready(ok);
    };
    w.peer_joined = [st](const std::string &peer, const std::string &type) {
      if (st->id_ok(peer, type) && st->ev.peer_joined) {
        st->candidates.erase(peer);
        st->ev.peer_joined(peer, type);
      }
    };
    w.peer_left = [st](const std::string &peer) {
      if (st->id_ok(peer, "") && st->ev.peer_left) {
        st->candidates.erase(peer);
        st->ev.peer_left(peer);
      }
    };
    w.sdp = [st](const std::string &peer, const std::string &type, const std::string &sdp) {
      if (!st->id_ok(peer, "")) return;
      if (auto why = sigcheck::check_sdp(type, sdp))
        return st->refuse("an SDP from " + sigcheck::printable(peer, 80), *why);
      st->candidates.erase(peer);
      if (st->ev.sdp) st->ev.sdp(peer, type, sdp);
    };
    w.candidate = [st](const std::string &peer, const std::string &mid, int mline,
                       const std::string &cand) {
      if (!st->id_ok(peer, "")) return;
      if (auto why = sigcheck::check_candidate(mid, mline, cand))
        return st->refuse("a candidate from " + sigcheck::printable(peer, 80), *why);
      unsigned &n = st->candidates[peer];
      if (n >= sigcheck::kMaxCandidatesPerSdp) {
        if (n++ == sigcheck::kMaxCandidatesPerSdp) // reported once per SDP
          st->refuse("candidates from " + sigcheck::printable(peer, 80),
                     "more than " + std::to_string(sigcheck::kMaxCandidatesPerSdp) +
                         " for one SDP");
        return;
      }
      n++;
      if (st->ev.candidate) st->ev.candidate(peer, mid, mline, cand);
    };
    // Reasons may quote the server: escaped for the log, whatever it sent.
    w.error = [st](const std::string &reason, bool fatal) {
      if (st->ev.error) st->ev.error(safe_text(reason), fatal);
    };
    w.disconnected = [st](const std::string &reason) {
      if (st->ev.disconnected) st->ev.disconnected(safe_text(reason));
    };
    inner_->start(ctx, std::move(w));
  }
  void stop() override { inner_->stop(); }
  void send_sdp(const std::string &peer, const std::string &type, const std::string &sdp) override
  {
    inner_->send_sdp(peer, type, sdp);
  }
  void send_candidate(const std::string &peer, const std::string &mid, int mline,
                      const std::string &candidate) override
  {
    inner_->send_candidate(peer, mid, mline, candidate);
  }
  bool trickles() const override { return inner_->trickles(); }
  bool peer_trickles(const std::string &peer) const override { return inner_->peer_trickles(peer); }
  Role resolve_role(Role requested) const override { return inner_->resolve_role(requested); }

private:
  struct State {
    SignallerEvents ev;
    std::map<std::string, unsigned> candidates; // per peer, since its last SDP

    void refuse(const std::string &what, const std::string &why)
    {
      if (ev.error) ev.error("ignored " + what + ": " + why, false);
    }
    bool id_ok(const std::string &id, const std::string &type)
    {
      auto why = sigcheck::check_id("peer id", id);
      if (!why && !type.empty()) why = sigcheck::check_id("peer type", type);
      if (why) refuse("a message about peer " + sigcheck::printable(id, 80), *why);
      return !why;
    }
  };
  std::unique_ptr<Signaller> inner_;
};

std::unique_ptr<Signaller> make_transport(const SignallerConfig &cfg, std::string *error)
{
  const std::string &uri = cfg.uri;
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos || scheme_end == 0) {
    *error = "signaling URI '" + uri +
        "' has no scheme (expected ws://, wss://, tcp://, http://, "
        "https:// or local://)";
    return nullptr;
  }
  std::string scheme = uri.substr(0, scheme_end);
  for (auto &c : scheme) c = char(g_ascii_tolower(c));
  if (scheme == "ws" || scheme == "wss") return make_ws_signaller(cfg, error);
  if (scheme == "local") return make_local_signaller(cfg, error);
  if (scheme == "tcp") return make_tcp_signaller(cfg, error);
  if (scheme == "http" || scheme == "https") return make_http_signaller(cfg, error);
  *error = "unsupported signaling URI scheme '" + scheme + "' in '" + uri + "'";
  return nullptr;
}

} // namespace

std::unique_ptr<Signaller> make_signaller(const SignallerConfig &cfg, std::string *error)
{
  auto inner = make_transport(cfg, error);
  if (!inner) return nullptr;
  return std::make_unique<CheckedSignaller>(std::move(inner));
}

} // namespace pointcast
