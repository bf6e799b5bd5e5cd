// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's STUN/TURN set-up on its sessions' webrtcbins (see iceservers.h). */
#include "rtc/iceservers.h"

#include "rtc/iceconfig.h"
#include "rtc/rtcpeerpriv.h"
#include "rtc/sigcheck.h"
#include "rtc/turnprobe.h"

#include <gst/webrtc/ice.h>
#include <gst/webrtc/webrtc.h>

#include <thread>

namespace pointcast::rtc {

/* The userinfo of a TURN URI as written (still percent-encoded). */
static std::string raw_userinfo(const std::string &uri)
{
  auto start = uri.find("//") + 2, at = uri.rfind('@');
  return at == std::string::npos || at < start ? "" : uri.substr(start, at - start);
}

bool check_ice_servers(GstRtcPeer *self)
{
  auto *p = self->priv;
  std::string stun, turn, ca, error;
  bool relay_only;
  {
    std::lock_guard lk(p->props_lock);
    stun = p->stun_server;
    turn = p->turn_server;
    ca = p->turn_tls_ca;
    relay_only = p->relay_only;
  }
  if (!stun.empty() && !iceconfig::parse_stun(stun, &error)) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Bad stun-server: %s", error.c_str()), (nullptr));
    return false;
  }
  if (relay_only && turn.empty()) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("ice-transport-policy=relay needs a turn-server"),
                      (nullptr));
    return false;
  }
  std::vector<iceconfig::Server> servers;
  if (!turn.empty()) {
    auto list = iceconfig::parse_turn_list(turn, &error);
    if (!list) {
      GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Bad turn-server: %s", error.c_str()),
                        (nullptr));
      return false;
    }
    servers = std::move(*list);
  }
  bool ok = true;
  p->ctx.run_sync([&] {
    p->turn_tunnels.clear();
    for (auto &srv : servers) {
      if (srv.transport != "tls" || p->turn_tunnels.count(srv.uri)) continue;
      std::string shown = srv.display();
      auto on_error = [self, shown](const std::string &message, bool certificate) {
        GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ_WRITE,
                            ("TURN server %s: TLS failed: %s", shown.c_str(), message.c_str()),
                            ("%s",
                             certificate ? "to trust a self-signed certificate, set "
                                           "turn-tls-ca to a PEM file holding it"
                                         : "no relay over this server"));
      };
      auto tunnel = TurnTlsTunnel::start(srv.host, srv.port, ca, on_error, &error);
      if (!tunnel) {
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                          ("TURN server %s: %s", shown.c_str(), error.c_str()), (nullptr));
        ok = false;
        return;
      }
      GST_INFO_OBJECT(self, "%s through 127.0.0.1:%d", shown.c_str(), tunnel->local_port());
      p->turn_tunnels[srv.uri] = std::move(tunnel);
    }
  });
  return ok;
}

/* The checked values (check_ice_servers at start); one changed since then to something bad is
 * left out with a warning. Several TURN URIs: the first is webrtcbin's turn-server, the others
 * go through add-turn-server. A turns:// one goes to its TLS tunnel (rtc/turntls.h). */
void apply_ice_servers(GstRtcPeer *self, GstElement *webrtc, const std::string &stun,
                       const std::string &turn)
{
  ASSERT_CTX(self);
  std::string error;
  if (!stun.empty()) {
    if (iceconfig::parse_stun(stun, &error))
      g_object_set(webrtc, "stun-server", stun.c_str(), nullptr);
    else
      GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("Bad stun-server: %s", error.c_str()),
                          ("not used"));
  }
  bool relay_only;
  {
    std::lock_guard lk(self->priv->props_lock);
    relay_only = self->priv->relay_only;
  }
  if (relay_only)
    g_object_set(webrtc, "ice-transport-policy", GST_WEBRTC_ICE_TRANSPORT_POLICY_RELAY, nullptr);
  if (turn.empty()) return;
  auto servers = iceconfig::parse_turn_list(turn, &error);
  if (!servers) {
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("Bad turn-server: %s", error.c_str()),
                        ("not used"));
    return;
  }
  bool first = true;
  for (auto &srv : *servers) {
    std::string uri = srv.uri;
    if (srv.transport == "tls") {
      auto it = self->priv->turn_tunnels.find(srv.uri);
      if (it == self->priv->turn_tunnels.end()) {
        GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                            ("TURN server %s was set after start", srv.display().c_str()),
                            ("a turns:// server is used from the next start on"));
        continue;
      }
      uri = "turn://" + raw_userinfo(srv.uri) +
          "@127.0.0.1:" + std::to_string(it->second->local_port()) + "?transport=tcp";
    }
    if (first) {
      g_object_set(webrtc, "turn-server", uri.c_str(), nullptr);
      first = false;
      continue;
    }
    gboolean added = FALSE;
    g_signal_emit_by_name(webrtc, "add-turn-server", uri.c_str(), &added);
    if (!added)
      GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                          ("webrtcbin refused TURN server %s", srv.display().c_str()), (nullptr));
  }
}

/* Gathering ended without a relay candidate although turn-server is set: libnice drops a refused
 * or unanswered allocation without a word, and the peer then fails if no direct path works. Ask
 * each server why (turnprobe: one Allocate with the credentials, freed at once; up to ~3 s, so on
 * a thread of its own) and warn with the answer, naming the server but never the password. */
void warn_if_no_relay(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  ASSERT_CTX(self);
  if (s->removed || s->turn_checked) return;
  std::string turn;
  {
    std::lock_guard lk(self->priv->props_lock);
    turn = self->priv->turn_server;
  }
  auto servers = iceconfig::parse_turn_list(turn, nullptr);
  if (turn.empty() || !servers) return;
  s->turn_checked = true;
  for (auto &c : s->local_candidates)
    if (iceconfig::is_relay_candidate(c.candidate)) return;
  struct Probe {
    iceconfig::Server srv;
    int port;
    std::string transport;
  };
  std::vector<Probe> probes;
  for (auto &srv : *servers) {
    if (srv.transport != "tls") {
      probes.push_back({srv, srv.port, srv.transport == "tcp" ? "tcp" : "udp"});
      continue;
    }
    auto it = self->priv->turn_tunnels.find(srv.uri);
    if (it != self->priv->turn_tunnels.end())
      probes.push_back({srv, it->second->local_port(), "tcp"});
  }
  std::string peer = sigcheck::printable(s->id, 80);
  gst_object_ref(self);
  std::thread([self, probes, peer] {
    for (auto &p : probes) {
      std::string host = p.srv.transport == "tls" ? "127.0.0.1" : p.srv.host;
      std::string why = turnprobe::probe(host, p.port, p.transport, p.srv.user, p.srv.password);
      GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ_WRITE,
                          ("TURN server %s gave no relay candidate (peer '%s'): %s",
                           p.srv.display().c_str(), peer.c_str(), why.c_str()),
                          ("without a relay this peer can connect only directly"));
    }
    gst_object_unref(self);
  }).detach();
}

/* The ICE transport of a session: its SCTP association's, else its first transceiver's (BUNDLE:
 * one for everything). A new reference or nullptr. */
static GObject *ice_transport_of(GstElement *webrtc)
{
  GObject *dtls = nullptr, *ice = nullptr;
  GObject *sctp = nullptr;
  g_object_get(webrtc, "sctp-transport", &sctp, nullptr);
  if (sctp) {
    g_object_get(sctp, "transport", &dtls, nullptr);
    g_object_unref(sctp);
  }
  if (!dtls) {
    GstWebRTCRTPTransceiver *trans = nullptr;
    g_signal_emit_by_name(webrtc, "get-transceiver", 0, &trans);
    if (trans) {
      GObject *receiver = nullptr;
      g_object_get(trans, "receiver", &receiver, nullptr);
      if (receiver) {
        g_object_get(receiver, "transport", &dtls, nullptr);
        g_object_unref(receiver);
      }
      gst_object_unref(trans);
    }
  }
  if (dtls) {
    g_object_get(dtls, "transport", &ice, nullptr);
    g_object_unref(dtls);
  }
  return ice;
}

void report_selected_pair(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  ASSERT_CTX(self);
  if (s->removed || !s->webrtc) return;
  GObject *transport = ice_transport_of(s->webrtc), *stream = nullptr;
  GstWebRTCICE *ice = nullptr;
  if (transport && g_object_class_find_property(G_OBJECT_GET_CLASS(transport), "stream"))
    g_object_get(transport, "stream", &stream, nullptr);
  g_object_get(s->webrtc, "ice-agent", &ice, nullptr);
  GstWebRTCICECandidateStats *local = nullptr, *remote = nullptr;
  if (ice && stream &&
      gst_webrtc_ice_get_selected_pair(ice, GST_WEBRTC_ICE_STREAM(stream), &local, &remote) &&
      local && remote) {
    auto str = [](const char *v) { return std::string(v ? v : "?"); };
    auto where = [&](const GstWebRTCICECandidateStats *c) { // [v6]:port as in a URI
      std::string a = str(c->ipaddr);
      return (a.find(':') != std::string::npos ? "[" + a + "]" : a) + ":" + std::to_string(c->port);
    };
    std::string lt = str(local->type), rt = str(remote->type), proto = str(local->proto);
    std::string la = where(local), ra = where(remote);
    std::string key = proto + " " + lt + " " + la + " " + rt + " " + ra;
    if (key != s->watch->reported_pair) { // posted once per pair: on connecting, then on changes
      bool again = !s->watch->reported_pair.empty();
      s->watch->reported_pair = key;
      GST_INFO_OBJECT(self, "peer '%s' %s over %s %s %s -> %s %s", s->id.c_str(),
                      again ? "now connected" : "connected", proto.c_str(), lt.c_str(), la.c_str(),
                      rt.c_str(), ra.c_str());
      GstStructure *m = gst_structure_new(
          "rtcpeer-ice-pair", "peer-id", G_TYPE_STRING, s->id.c_str(), "local-type", G_TYPE_STRING,
          lt.c_str(), "local-address", G_TYPE_STRING, la.c_str(), "remote-type", G_TYPE_STRING,
          rt.c_str(), "remote-address", G_TYPE_STRING, ra.c_str(), "protocol", G_TYPE_STRING,
          proto.c_str(), nullptr);
      gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), m));
    }
  } else {
    GST_INFO_OBJECT(self, "peer '%s' connected; libnice names no selected pair", s->id.c_str());
  }
  if (local) gst_webrtc_ice_candidate_stats_free(local);
  if (remote) gst_webrtc_ice_candidate_stats_free(remote);
  if (ice) gst_object_unref(ice);
  if (stream) g_object_unref(stream);
  if (transport) g_object_unref(transport);
}

} // namespace pointcast::rtc
