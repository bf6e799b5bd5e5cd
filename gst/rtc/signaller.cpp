// SPDX-License-Identifier: LGPL-2.1-or-later
/* make_signaller: picks the transport by the URI's scheme, and puts every event it reports
 * through the checks of rtc/sigcheck.h: whatever a (possibly malicious) signaling server sends,
 * webrtcbin and the logs only see bounded, valid UTF-8 SDP, candidates and peer ids. */
#include "rtc/signaller.h"
#include "rtc/sigcheck.h"

#include <gst/gst.h>

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

/* A signaller wrapped around another (the checks below, failover over a list): every call that
 * is not about the lifecycle goes to the current inner one; while there is none, sends are
 * dropped and the answers are those of a plain trickling transport. */
class Forwarder : public Signaller {
public:
  void send_sdp(const std::string &peer, const std::string &type, const std::string &sdp) override
  {
    if (inner_) inner_->send_sdp(peer, type, sdp);
  }
  void send_candidate(const std::string &peer, const std::string &mid, int mline,
                      const std::string &candidate) override
  {
    if (inner_) inner_->send_candidate(peer, mid, mline, candidate);
  }
  bool trickles() const override { return !inner_ || inner_->trickles(); }
  bool peer_trickles(const std::string &peer) const override
  {
    return !inner_ || inner_->peer_trickles(peer);
  }
  bool answerer_opens_channel(const std::string &peer) const override
  {
    return inner_ && inner_->answerer_opens_channel(peer);
  }
  std::string data_label(const std::string &peer) const override
  {
    return inner_ ? inner_->data_label(peer) : "";
  }
  Role resolve_role(Role requested) const override
  {
    return inner_ ? inner_->resolve_role(requested) : requested;
  }

protected:
  explicit Forwarder(std::unique_ptr<Signaller> inner = nullptr) : inner_(std::move(inner)) {}
  std::unique_ptr<Signaller> inner_;
};

class CheckedSignaller final : public Forwarder {
public:
  explicit CheckedSignaller(std::unique_ptr<Signaller> inner) : Forwarder(std::move(inner)) {}
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
};

std::unique_ptr<Signaller> make_transport(const SignallerConfig &cfg, std::string *error)
{
  const std::string &uri = cfg.uri;
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos || scheme_end == 0) {
    *error = "signaling URI '" + uri +
        "' has no scheme (expected ws://, wss://, tcp://, http://, "
        "https://, janus://, januss:// or local://)";
    return nullptr;
  }
  std::string scheme = uri.substr(0, scheme_end);
  for (auto &c : scheme) c = char(g_ascii_tolower(c));
  if (scheme == "ws" || scheme == "wss") return make_ws_signaller(cfg, error);
  if (scheme == "local") return make_local_signaller(cfg, error);
  if (scheme == "tcp") return make_tcp_signaller(cfg, error);
  if (scheme == "http" || scheme == "https") return make_http_signaller(cfg, error);
  if (scheme == "janus" || scheme == "januss") return make_janus_signaller(cfg, error);
  *error = "unsupported signaling URI scheme '" + scheme + "' in '" + uri + "'";
  return nullptr;
}

/* "uri1,uri2,...": one transport at a time, the next one once it drops (or cannot register),
 * round the list. Every transport registers with the same config (same peer id); the element
 * sees one disconnected and one ready per switch, its peer connections untouched. Events from a
 * transport that is no longer current are dropped. Runs in ctx only, as the transports do. */
class FailoverSignaller final : public Forwarder {
public:
  explicit FailoverSignaller(std::vector<SignallerConfig> cfgs, Role role)
      : cfgs_(std::move(cfgs)), role_(role)
  {
  }
  ~FailoverSignaller() override { stop(); }

  void start(GMainContext *ctx, SignallerEvents ev) override
  {
    ctx_ = ctx;
    ev_ = std::move(ev);
    stopped_ = false;
    open(0);
  }
  void stop() override
  {
    if (stopped_) return;
    stopped_ = true;
    if (switch_) {
      g_source_destroy(switch_);
      g_source_unref(switch_);
      switch_ = nullptr;
    }
    if (inner_) inner_->stop();
  }
  // The role of the first URI's transport, whichever is current.
  Role resolve_role(Role requested) const override { return role_; }

private:
  static constexpr unsigned kMaxBackoffMs = 4000;

  void open(size_t i)
  {
    cur_ = i;
    gen_++;
    std::string error;
    inner_ = make_transport(cfgs_[i], &error); // checked when made: cannot fail here
    if (!inner_) {
      if (ev_.error) ev_.error(error, true);
      return;
    }
    GST_INFO("signaling through %s", cfgs_[i].uri.c_str());
    unsigned gen = gen_;
    SignallerEvents w;
    w.ready = [this, gen](const std::vector<std::pair<std::string, std::string>> &present) {
      if (gen != gen_) return;
      registered_ = true;
      failures_ = 0;
      if (ev_.ready) ev_.ready(present);
    };
    w.peer_joined = [this, gen](const std::string &peer, const std::string &type) {
      if (gen == gen_ && ev_.peer_joined) ev_.peer_joined(peer, type);
    };
    w.peer_left = [this, gen](const std::string &peer) {
      if (gen == gen_ && ev_.peer_left) ev_.peer_left(peer);
    };
    w.sdp = [this, gen](const std::string &peer, const std::string &type, const std::string &sdp) {
      if (gen == gen_ && ev_.sdp) ev_.sdp(peer, type, sdp);
    };
    w.candidate = [this, gen](const std::string &peer, const std::string &mid, int mline,
                              const std::string &c) {
      if (gen == gen_ && ev_.candidate) ev_.candidate(peer, mid, mline, c);
    };
    w.error = [this, gen](const std::string &reason, bool fatal) {
      if (gen != gen_) return;
      if (ev_.error) ev_.error(reason, fatal);
      // Not registered yet (unreachable, refused, duplicate id): try the next one.
      if (!fatal && !registered_) next();
    };
    w.disconnected = [this, gen](const std::string &reason) {
      if (gen != gen_) return;
      registered_ = false;
      if (ev_.disconnected)
        ev_.disconnected(reason + "; failing over to " + cfgs_[(cur_ + 1) % cfgs_.size()].uri);
      next();
    };
    registered_ = false;
    inner_->start(ctx_, std::move(w));
  }

  // Switches outside the transport's own callback (it may still touch itself after the event).
  void next()
  {
    if (stopped_ || switch_) return;
    failures_++;
    // A round with no registration anywhere: wait a little longer before each further try.
    unsigned rounds = (failures_ - 1) / unsigned(cfgs_.size());
    unsigned delay = rounds ? std::min(kMaxBackoffMs, 250u << std::min(rounds, 5u)) : 0;
    switch_ = g_timeout_source_new(delay);
    g_source_set_callback(
        switch_,
        [](gpointer d) -> gboolean {
          auto *self = static_cast<FailoverSignaller *>(d);
          g_source_unref(self->switch_);
          self->switch_ = nullptr;
          if (self->inner_) self->inner_->stop();
          self->inner_.reset();
          self->open((self->cur_ + 1) % self->cfgs_.size());
          return G_SOURCE_REMOVE;
        },
        this, nullptr);
    g_source_attach(switch_, ctx_);
  }

  std::vector<SignallerConfig> cfgs_;
  Role role_;
  GMainContext *ctx_ = nullptr;
  SignallerEvents ev_;
  GSource *switch_ = nullptr;
  size_t cur_ = 0;
  unsigned gen_ = 0;
  unsigned failures_ = 0;
  bool registered_ = false;
  bool stopped_ = true;
};

std::unique_ptr<Signaller> make_failover(const SignallerConfig &cfg, std::string *error)
{
  std::vector<SignallerConfig> cfgs;
  Role role = cfg.role;
  gchar **parts = g_strsplit(cfg.uri.c_str(), ",", -1);
  for (gchar **p = parts; *p; p++) {
    std::string uri = g_strstrip(*p);
    if (uri.empty()) continue;
    SignallerConfig one = cfg;
    one.uri = uri;
    // Made once here to check every URI up front.
    auto t = make_transport(one, error);
    if (!t) {
      g_strfreev(parts);
      return nullptr;
    }
    if (cfgs.empty()) role = t->resolve_role(cfg.role);
    cfgs.push_back(std::move(one));
  }
  g_strfreev(parts);
  if (cfgs.empty()) {
    *error = "signaling URI list '" + cfg.uri + "' holds no URI";
    return nullptr;
  }
  if (cfgs.size() == 1) return make_transport(cfgs[0], error);
  return std::make_unique<FailoverSignaller>(std::move(cfgs), role);
}

} // namespace

std::unique_ptr<Signaller> make_signaller(const SignallerConfig &cfg, std::string *error)
{
  auto inner = cfg.uri.find(',') != std::string::npos ? make_failover(cfg, error)
                                                      : make_transport(cfg, error);
  if (!inner) return nullptr;
  return std::make_unique<CheckedSignaller>(std::move(inner));
}

} // namespace pointcast
