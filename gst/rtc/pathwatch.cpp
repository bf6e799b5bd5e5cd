// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/pathwatch.h"

#include "rtc/iceservers.h"
#include "rtc/rtcpeerpriv.h"
#include "rtc/session.h"

#include <algorithm>
#include <array>
#include <set>
#include <sstream>
#include <vector>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

namespace pointcast::rtc {

namespace {
constexpr gint64 kArmAfterUs = 300000; // later than a delayed SACK (200 ms) answering inbound data
constexpr gint64 kSilenceUs = 3000000; // no reply this long to what we sent: the path is dead
constexpr guint kCheckMs = 500;
constexpr guint kConnectMs = 10000; // a rebuilt session must connect within this
constexpr guint kMaxRebuilds = 4;   // in a row without connecting, then the peer is removed
/* Consent freshness of our own (RFC 7675 gives up after 30 s): nothing back this long after
 * sending, the addresses all there, is a path that a NAT or firewall on the way cut (UDP mappings
 * forgotten). Above anything a live peer leaves unanswered: RTCP reports come at most 7.5 s
 * apart (RFC 3550's 5 s minimum, randomized by up to 1.5; an audio-only browser), everything else
 * within an RTT; and twice the longest outage the net suite rides through on one connection
 * (5 s, net-data-points-outage). An outage longer than this gets a new connection, which
 * delivers the same data. */
constexpr gint64 kConsentUs = 10000000;
/* A connection that goes silent within kShortLived of connecting, kMaxSilentLosses times in a
 * row: the path keeps dying (a NAT that drops mappings faster than traffic refreshes them); the
 * peer is removed rather than reconnected forever. */
constexpr gint64 kShortLivedUs = 60000000;
constexpr guint kMaxSilentLosses = 3;
} // namespace

static GstPadProbeReturn on_inbound(GstPad *, GstPadProbeInfo *info, gpointer d)
{
  auto &w = **static_cast<std::shared_ptr<PathWatch> *>(d);
  gint64 now = g_get_monotonic_time();
  w.last_in_us = now;
  w.armed_us = 0;
  return GST_PAD_PROBE_OK;
}

/* Every packet: DTLS draws a SACK or heartbeat ack, RTP the receiver's RTCP (reports, NACK,
 * transport-wide feedback; ours at least every few tens of ms, browsers' every 1 s at most), and
 * a receiver's RTCP the sender's RTP or reports. So a video-only session, which sends no DTLS
 * after its handshake, is watched too. */
static GstPadProbeReturn on_outbound(GstPad *, GstPadProbeInfo *, gpointer d)
{
  auto &w = **static_cast<std::shared_ptr<PathWatch> *>(d);
  gint64 now = g_get_monotonic_time(), none = 0;
  if (w.armed_us == 0 && now - w.last_in_us > kArmAfterUs)
    w.armed_us.compare_exchange_strong(none, now);
  return GST_PAD_PROBE_OK;
}

static void free_watch_ref(gpointer d)
{
  delete static_cast<std::shared_ptr<PathWatch> *>(d);
}

// webrtcbin makes its ICE transport's nicesrc / nicesink during negotiation.
static void on_deep_element_added(GstBin *, GstBin *, GstElement *element, gpointer d)
{
  auto &watch = *static_cast<std::shared_ptr<PathWatch> *>(d);
  GstElementFactory *f = gst_element_get_factory(element);
  if (!f) return;
  bool src = g_strcmp0(GST_OBJECT_NAME(f), "nicesrc") == 0;
  if (!src && g_strcmp0(GST_OBJECT_NAME(f), "nicesink") != 0) return;
  GstPad *pad = gst_element_get_static_pad(element, src ? "src" : "sink");
  if (!pad) return;
  gst_pad_add_probe(
      pad, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      src ? on_inbound : on_outbound, new std::shared_ptr<PathWatch>(watch), free_watch_ref);
  gst_object_unref(pad);
}

namespace {
struct PairWatch {
  GstRtcPeer *self;
  std::weak_ptr<Session> session;
  std::shared_ptr<PathWatch> watch;
};
} // namespace

/* libnice's new-selected-pair (its thread): which local candidate the connection uses now. A pair
 * selected after the connection is up (a better pair's check succeeding later) is posted as
 * rtcpeer-ice-pair again; report_selected_pair posts only changes. */
static void on_selected_pair(GObject *, guint, guint, gchar *local, gchar *, gpointer d)
{
  auto *pw = static_cast<PairWatch *>(d);
  {
    std::lock_guard lk(pw->watch->lock);
    pw->watch->selected_local = local ? local : "";
  }
  GstRtcPeer *self = pw->self;
  run_async(self, [self, weak = pw->session] {
    auto s = weak.lock();
    if (s && s->connected && !s->removed) report_selected_pair(self, s);
  });
}

/* libnice's `keepalive-conncheck` (settable after the agent is made: read at each keepalive) is
 * not used: it fails a pair only after 50 s without replies (NICE_AGENT_TIMER_KEEPALIVE_TIMEOUT,
 * 0.1.21), and a link that is down for a while but comes back would lose its connection. */
void watch_path(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  g_signal_connect_data(
      s->webrtc, "deep-element-added", G_CALLBACK(on_deep_element_added),
      new std::shared_ptr<PathWatch>(s->watch), [](gpointer d, GClosure *) { free_watch_ref(d); },
      GConnectFlags(0));
  // The NiceAgent behind webrtcbin's ICE object (no libnice headers: by property and signal).
  GObject *ice = nullptr, *agent = nullptr;
  g_object_get(s->webrtc, "ice-agent", &ice, nullptr);
  if (ice && g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent"))
    g_object_get(ice, "agent", &agent, nullptr);
  if (agent && g_signal_lookup("new-selected-pair", G_OBJECT_TYPE(agent)))
    g_signal_connect_data(
        agent, "new-selected-pair", G_CALLBACK(on_selected_pair), new PairWatch{self, s, s->watch},
        [](gpointer d, GClosure *) { delete static_cast<PairWatch *>(d); }, GConnectFlags(0));
  if (agent) g_object_unref(agent);
  if (ice) g_object_unref(ice);
}

/* Something to lose: an open channel or a track. After its channels closed at the end of stream
 * a session has nothing left that draws replies (and nothing that a new connection would carry). */
static bool carries_anything(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  std::lock_guard lk(self->priv->lock);
  if (!s->media.empty()) return true;
  for (auto *ch : s->channels)
    if (auto *cs = channel_state(ch); cs && cs->open) return true;
  return false;
}

// The host's interface addresses now.
static std::set<std::string> host_addresses()
{
  std::set<std::string> out;
  struct ifaddrs *list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (auto *a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr) continue;
    char buf[INET6_ADDRSTRLEN] = "";
    if (a->ifa_addr->sa_family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in *>(a->ifa_addr)->sin_addr, buf, sizeof buf);
    else if (a->ifa_addr->sa_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6 *>(a->ifa_addr)->sin6_addr, buf,
                sizeof buf);
    if (*buf) out.insert(buf);
  }
  freeifaddrs(list);
  return out;
}

/* The interface address the selected pair's local candidate sends from, if the host no longer
 * has it (its interface went away), or "". Before libnice named a selected pair: any host
 * candidate's address. A silent path whose address is still there is an outage that may end (a
 * link down for a while keeps its connection, as before); an address gone elsewhere on the host
 * (another interface, a container network) is not this path's. */
static std::string vanished_address(const std::shared_ptr<Session> &s, bool *of_selected)
{
  *of_selected = false;
  auto have = host_addresses();
  std::string selected;
  {
    std::lock_guard lk(s->watch->lock);
    selected = s->watch->selected_local;
  }
  // candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY ADDRESS PORT typ TYPE [raddr BASE ...]
  std::vector<std::array<std::string, 10>> cands;
  std::set<std::string> hosts;
  for (auto &c : s->local_candidates) {
    std::istringstream in(c.candidate);
    auto &f = cands.emplace_back();
    for (auto &x : f) in >> x;
    if (f[6] == "typ" && f[7] == "host") hosts.insert(f[4]);
  }
  bool known = false;
  for (auto &f : cands) {
    if (f[6] != "typ") continue;
    std::string foundation = f[0].substr(f[0].find(':') + 1);
    if (!selected.empty() && foundation != selected) continue;
    // A server-reflexive or relayed candidate sends from its base: its raddr when that is one of
    // our host addresses (a relayed one may name its mapped address there instead).
    std::string base = f[7] == "host" ? f[4] : f[8] == "raddr" ? f[9] : "";
    if (base.empty() || !hosts.count(base)) continue;
    known = true;
    *of_selected = !selected.empty();
    if (!have.count(base)) return base;
  }
  *of_selected = false;
  if (known || selected.empty()) return "";
  // The selected candidate's line was not seen (peer-reflexive), or names no base of ours: any
  // host candidate's.
  for (auto &h : hosts)
    if (!have.count(h)) return h;
  return "";
}

/* One more connection to s's peer went silent. The count is the peer's (priv), not the
 * session's: a lost connection is replaced by a new session, ours or one the remote's offer makes,
 * and either side may find the silence first. True when that was one too many: the peer is gone. */
static bool count_silent_loss(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  gint64 lived = g_get_monotonic_time() - s->connected_us;
  guint &n = self->priv->silent_losses[s->id];
  n = lived < kShortLivedUs ? n + 1 : 1;
  if (n <= kMaxSilentLosses) return false;
  GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ_WRITE,
                      ("Could not keep a connection to peer '%s'", s->id.c_str()),
                      ("%u connections in a row went silent within %u s of connecting; removing "
                       "this peer only",
                       n, guint(kShortLivedUs / 1000000)));
  /* Until it registers again: its side, counting the same losses, gives up too, or (one loss
   * behind) its next offers go unanswered and it gives up after kMaxRebuilds. */
  self->priv->given_up.insert(s->id);
  remove_session(self, s->id, "its connections keep going silent");
  return true;
}

bool replaced_while_silent(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  ASSERT_CTX(self);
  if (!s->connected) return false;
  gint64 armed = s->watch->armed_us;
  if (!armed || g_get_monotonic_time() - armed <= kSilenceUs || !carries_anything(self, s)) {
    self->priv->silent_losses.erase(s->id); // a loss of another kind: not "in a row"
    return false;
  }
  return count_silent_loss(self, s);
}

static void check_path(GstRtcPeer *self, const std::weak_ptr<Session> &weak)
{
  ASSERT_CTX(self);
  auto s = weak.lock();
  if (!s || s->removed) return;
  s->watch_timer = 0;
  gint64 armed = s->watch->armed_us;
  if (armed && g_get_monotonic_time() - armed > kSilenceUs && carries_anything(self, s)) {
    bool of_selected;
    std::string gone = vanished_address(s, &of_selected);
    std::string why = "nothing came back for 3 s after sending and the local address " + gone +
        (of_selected ? " of the selected ICE pair" : "") + " is gone";
    if (!gone.empty() && lose_path(self, s, why.c_str())) return;
  }
  gint64 now = g_get_monotonic_time();
  if (armed && now - armed > kConsentUs && carries_anything(self, s) && !s->left_timer) {
    if (count_silent_loss(self, s)) return;
    char why[160];
    g_snprintf(why, sizeof why,
               "nothing came back for %.1f s after sending (no consent: a NAT or firewall on the "
               "way may have dropped the connection's UDP mappings)",
               (now - armed) / 1e6);
    if (lose_path(self, s, why)) return;
  }
  s->watch_timer = add_timeout(self, kCheckMs, [self, weak] { check_path(self, weak); });
}

void start_path_checks(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  ASSERT_CTX(self);
  s->watch->last_in_us = s->connected_us = g_get_monotonic_time();
  s->watch->armed_us = 0;
  cancel_timeout(self, &s->rebuild_timer);
  if (s->rebuilds)
    GST_ELEMENT_INFO(self, RESOURCE, READ, ("Reconnected to peer '%s'", s->id.c_str()),
                     ("after %u attempt(s)", s->rebuilds));
  s->rebuilds = 0;
  std::weak_ptr<Session> weak = s;
  if (!s->watch_timer)
    s->watch_timer = add_timeout(self, kCheckMs, [self, weak] { check_path(self, weak); });
}

// A fresh session offering to `id`, after a backoff; again if it does not connect in time.
static void rebuild(GstRtcPeer *self, const std::string &id, const std::string &type, guint attempt)
{
  guint delay = attempt == 0 ? 0 : std::min(4000u, 500u << attempt);
  add_timeout(self, delay, [self, id, type, attempt] {
    if (find_session(self, id)) return; // the peer made a new connection itself meanwhile
    auto fresh = create_session(self, id, type, true);
    if (!fresh) return;
    fresh->rebuilds = attempt + 1;
    std::weak_ptr<Session> weak = fresh;
    fresh->rebuild_timer = add_timeout(self, kConnectMs, [self, weak, id, type] {
      auto s = weak.lock();
      if (!s || s->removed || s->connected) return;
      s->rebuild_timer = 0;
      guint n = s->rebuilds;
      if (n >= kMaxRebuilds) {
        GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ_WRITE,
                            ("Could not reconnect to peer '%s'", id.c_str()),
                            ("%u new connections did not connect within %u s; removing this "
                             "peer only",
                             n, kConnectMs / 1000));
        remove_session(self, id, "could not reconnect");
        return;
      }
      s->keep_srcs = true;
      remove_session(self, id, "reconnecting again");
      rebuild(self, id, type, n);
    });
  });
}

bool lose_path(GstRtcPeer *self, const std::shared_ptr<Session> &s, const char *why)
{
  ASSERT_CTX(self);
  auto *p = self->priv;
  // A peer whose signaling left is on its way out (the 5 s grace of session.cpp decides).
  if (!s->connected || s->removed || s->left_timer) return false;
  bool may_offer;
  {
    std::lock_guard lk(p->props_lock);
    may_offer = p->role != Role::Answerer;
  }
  // An answerer waits for the remote's new offer.
  bool rebuilding = may_offer && p->signaller;
  std::string id = s->id, type = s->type;
  // Its tracks go on from the same src pads once the new connection (ours or the remote's) is up.
  s->keep_srcs = true;
  // remove_session's warning ("Lost the connection to peer") counts what it left unconfirmed.
  remove_session(self, id,
                 std::string(kLostPrefix) + why +
                     (rebuilding ? "; making a new connection" : "; removing this peer"));
  if (rebuilding) rebuild(self, id, type, 0);
  return true;
}

namespace {
constexpr guint kRejoinWindowMs = 300; // a live connection is heard from within this
constexpr guint kVerifyMs = 5000;      // our offer on it is answered within this
} // namespace

void check_rejoined(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  ASSERT_CTX(self);
  if (!s->connected || s->removed) return;
  gint64 since = g_get_monotonic_time();
  cancel_timeout(self, &s->rejoin_timer);
  s->verifying = false;
  std::weak_ptr<Session> weak = s;
  s->rejoin_timer = add_timeout(self, kRejoinWindowMs, [self, weak, since] {
    auto s = weak.lock();
    if (!s || s->removed) return;
    s->rejoin_timer = 0;
    // A killed process sends nothing: anything that came after its new registration is from a
    // live peer connection (a signaling hiccup).
    if (s->watch->last_in_us > since) {
      GST_INFO_OBJECT(self, "'%s' registered again; its connection is alive", s->id.c_str());
      return;
    }
    bool may_offer;
    {
      std::lock_guard lk(self->priv->props_lock);
      may_offer = self->priv->role != Role::Answerer;
    }
    if (!may_offer || !self->priv->signaller) return;
    GST_INFO_OBJECT(self, "'%s' registered again and is silent: offering on the connection",
                    s->id.c_str());
    s->verifying = true;
    offer_again(self, s);
    s->rejoin_timer = add_timeout(self, kVerifyMs, [self, weak, since] {
      auto s = weak.lock();
      if (!s || s->removed) return;
      s->rejoin_timer = 0;
      if (s->watch->last_in_us > since) return; // heard from: alive
      if (s->verifying) {
        s->verifying = false;
        lose_path(self, s, "the peer registered again and did not answer on this connection");
        return;
      }
      // It answered with this connection's identity, yet what we sent on it since has drawn
      // nothing: both ends are alive but the path between them is not (a NAT that rebooted
      // forgot its mappings, and the signaling connection through it was cut as well).
      if (s->watch->armed_us && g_get_monotonic_time() - s->watch->armed_us > kSilenceUs &&
          carries_anything(self, s))
        lose_path(self, s, "the peer registered again and nothing came back on this connection");
    });
  });
}

} // namespace pointcast::rtc
