// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/session.h"

#include "rtc/iceservers.h"
#include "rtc/mediarecv.h"
#include "rtc/pathwatch.h"
#include "rtc/rtcpeerpriv.h"
#include "rtc/sigcheck.h"

#include <gst/sdp/sdp.h>

#include <algorithm>

namespace pointcast::rtc {

namespace {
constexpr guint kLeftGraceMs = 5000;     // a connected peer whose signaling dropped may return
constexpr guint kGatherTimeoutMs = 5000; // non-trickle: send what we have after this
constexpr size_t kMaxMedia = 32;         // m-lines in one remote description
} // namespace

static void send_local_description(GstRtcPeer *self, const std::shared_ptr<Session> &s,
                                   const std::string &type, const std::string &sdp_text);

static void finish_gathering(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  ASSERT_CTX(self);
  auto *p = self->priv;
  if (s->removed || s->waiting_type.empty()) return;
  cancel_timeout(self, &s->gather_timer);
  std::string sdp_text = sdp::with_candidates(s->waiting_sdp, s->local_candidates);
  std::string type = s->waiting_type;
  s->waiting_type.clear();
  s->waiting_sdp.clear();
  GST_DEBUG_OBJECT(self, "sending complete %s to '%s'", type.c_str(), s->id.c_str());
  if (p->signaller) p->signaller->send_sdp(s->id, type, sdp_text);
}

static void send_local_description(GstRtcPeer *self, const std::shared_ptr<Session> &s,
                                   const std::string &type, const std::string &sdp_text)
{
  ASSERT_CTX(self);
  auto *p = self->priv;
  if (s->removed || !p->signaller) return;
  GST_LOG_OBJECT(self, "%s to '%s':\n%s", type.c_str(), s->id.c_str(), sdp_text.c_str());
  s->mids = sdp::mids(sdp_text);
  if (s->trickle) {
    p->signaller->send_sdp(s->id, type, sdp_text);
    return;
  }
  // Non-trickle peers (aiortc) need every candidate inside the SDP.
  s->waiting_type = type;
  s->waiting_sdp = sdp_text;
  /* Not webrtcbin's ice-gathering-state: it can read complete while the candidates it announced
   * still wait in the context queue behind us (the offer to aiortc went out without any, 1 run in
   * 7 under load). */
  if (s->gathered) {
    finish_gathering(self, s);
    return;
  }
  std::weak_ptr<Session> weak = s;
  s->gather_timer = add_timeout(self, kGatherTimeoutMs, [self, weak] {
    if (auto s = weak.lock()) {
      s->gather_timer = 0;
      GST_WARNING_OBJECT(self, "ICE gathering for '%s' did not finish; sending %zu candidates",
                         s->id.c_str(), s->local_candidates.size());
      finish_gathering(self, s);
    }
  });
}

static void negotiate(GstRtcPeer *self, std::shared_ptr<Session> s,
                      const std::vector<negotiation::Action> &actions,
                      GstWebRTCSessionDescription *remote = nullptr);

// *desc (freed) replaced by one of its type with SDP TEXT; false, *desc kept, if TEXT does not parse.
static bool replace_text(GstWebRTCSessionDescription **desc, const std::string &text)
{
  GstSDPMessage *msg = nullptr;
  if (gst_sdp_message_new_from_text(text.c_str(), &msg) != GST_SDP_OK || !msg) {
    if (msg) gst_sdp_message_free(msg);
    return false;
  }
  GstWebRTCSDPType type = (*desc)->type;
  gst_webrtc_session_description_free(*desc);
  *desc = gst_webrtc_session_description_new(type, msg);
  return true;
}

/* A re-offer on a negotiated connection, with the live m-lines' payload types kept
 * (negotiation::keep_payload_types). The reference is the answer that made the connection stable
 * (ours, or the remote's to our offer): webrtcbin's payload-type map, from which it sends RTX and
 * FEC and reads the peer's, comes from that answer. Applied and sent alike: the answer to it
 * builds the next map. */
static GstWebRTCSessionDescription *
keep_negotiated_payload_types(GstRtcPeer *self, const std::shared_ptr<Session> &s,
                              GstWebRTCSessionDescription *offer)
{
  GstWebRTCSessionDescription *ref = nullptr;
  g_object_get(s->webrtc, "current-local-description", &ref, nullptr);
  if (ref && ref->type != GST_WEBRTC_SDP_TYPE_ANSWER) {
    gst_webrtc_session_description_free(ref);
    ref = nullptr;
    g_object_get(s->webrtc, "current-remote-description", &ref, nullptr);
  }
  if (!ref) return offer;
  std::string text = description_text(offer);
  std::string kept = negotiation::keep_payload_types(text, description_text(ref));
  gst_webrtc_session_description_free(ref);
  if (kept != text && replace_text(&offer, kept))
    GST_INFO_OBJECT(self, "'%s': the re-offer keeps the negotiated payload types", s->id.c_str());
  return offer;
}

/* An answer to a re-offer, with every section keeping the DTLS role in use
 * (negotiation::keep_dtls_role): webrtcbin would answer an actpass re-offer (aiortc's, a
 * browser's) with active and then number the channels we open as the client's. */
static GstWebRTCSessionDescription *keep_dtls_role_in_answer(GstRtcPeer *self,
                                                             const std::shared_ptr<Session> &s,
                                                             GstWebRTCSessionDescription *answer)
{
  GstWebRTCSessionDescription *local = nullptr, *remote = nullptr;
  g_object_get(s->webrtc, "current-local-description", &local, "current-remote-description",
               &remote, nullptr);
  std::string role = local && remote
      ? negotiation::dtls_role(description_text(local), description_text(remote))
      : "";
  if (local) gst_webrtc_session_description_free(local);
  if (remote) gst_webrtc_session_description_free(remote);
  if (role.empty()) return answer;
  std::string text = description_text(answer);
  std::string kept = negotiation::keep_dtls_role(text, role);
  if (kept != text && replace_text(&answer, kept))
    GST_INFO_OBJECT(self, "'%s': the answer keeps DTLS role %s", s->id.c_str(), role.c_str());
  return answer;
}

static void on_answer_created(GstPromise *promise, gpointer user_data);

/* An answer to a video offer without the NACK, RTX or FEC the offer proposes
 * (negotiation::unanswered_feedback): webrtcbin 1.22 answers an m-line it has no transceiver for
 * (a receiver without a track of that kind: every first answer of a viewer, and a re-offer's new
 * m-line) with one it makes inside create-answer, without NACK, RTX or FEC, so that sender was
 * never asked for a retransmission (each jitterbuffer's do-retransmission follows what is
 * negotiated for its payload type: follow_negotiated_nack, rtc/mediarecv.h). Once create-answer has
 * made it, it gets the offer's caps, NACK and FEC (prepare_answer_transceivers) and webrtcbin is
 * asked for the answer again. (A transceiver of ours added before create-answer has no m-line
 * until the answer is applied, and a jitterbuffer made meanwhile tripped webrtcbin's
 * g_warn_if_reached for that SSRC.) True when the answer is being made again. */
static bool add_answer_feedback(GstRtcPeer *self, const std::shared_ptr<Session> &s,
                                const GstWebRTCSessionDescription *answer)
{
  bool redone = std::exchange(s->answer_redone, false);
  GstWebRTCSessionDescription *offer = nullptr;
  g_object_get(s->webrtc, "pending-remote-description", &offer, nullptr);
  if (!offer) return false;
  auto missing =
      negotiation::unanswered_feedback(description_text(offer), description_text(answer));
  gst_webrtc_session_description_free(offer);
  if (missing.empty()) return false;
  std::string what;
  for (auto &m : missing) what += (what.empty() ? "" : "; ") + m;
  if (redone || !prepare_answer_transceivers(self, s)) {
    GST_INFO_OBJECT(self, "'%s': answering without what its offer proposes (%s)", s->id.c_str(),
                    what.c_str());
    return false;
  }
  GST_INFO_OBJECT(self, "'%s': answering again, with what its offer proposes (%s)", s->id.c_str(),
                  what.c_str());
  s->answer_redone = true;
  g_signal_emit_by_name(s->webrtc, "create-answer", nullptr,
                        gst_promise_new_with_change_func(on_answer_created, new_handle(self, s),
                                                         [](gpointer d) { free_handle(d); }));
  return true;
}

// webrtcbin's thread: hand the description to the context thread, where the negotiator decides.
static void on_description_created(GstPromise *promise, gpointer user_data, const char *field,
                                   const char *type)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstRtcPeer *self = h->self;
  std::weak_ptr<Session> weak = h->session;
  const GstStructure *reply = gst_promise_get_reply(promise);
  GstWebRTCSessionDescription *desc = nullptr;
  GError *err = nullptr;
  if (reply) {
    gst_structure_get(reply, field, GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
    if (!desc) gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
  }
  std::string error = err ? err->message : "no description";
  g_clear_error(&err);
  bool is_offer = std::string_view(type) == "offer";
  run_async(self, [self, weak, desc, error, is_offer] {
    auto s = weak.lock();
    if (!s || s->removed) { // from a webrtcbin that was replaced meanwhile
      if (desc) gst_webrtc_session_description_free(desc);
      return;
    }
    if (!desc) {
      GST_ELEMENT_WARNING(
          self, LIBRARY, FAILED,
          ("Could not create an %s for peer '%s'", is_offer ? "offer" : "answer", s->id.c_str()),
          ("%s", error.c_str()));
      s->neg->failed();
      remove_session(self, s->id,
                     std::string("could not create an ") + (is_offer ? "offer" : "answer"));
      return;
    }
    if (!is_offer && add_answer_feedback(self, s, desc)) {
      gst_webrtc_session_description_free(desc);
      return;
    }
    auto &slot = is_offer ? s->offer : s->answer;
    if (slot) gst_webrtc_session_description_free(slot);
    slot = is_offer ? keep_negotiated_payload_types(self, s, desc)
                    : keep_dtls_role_in_answer(self, s, desc);
    negotiate(self, s, is_offer ? s->neg->offer_created() : s->neg->answer_created());
  });
}

static void on_offer_created(GstPromise *promise, gpointer user_data)
{
  on_description_created(promise, user_data, "offer", "offer");
  gst_promise_unref(promise);
}

static void on_answer_created(GstPromise *promise, gpointer user_data)
{
  on_description_created(promise, user_data, "answer", "answer");
  gst_promise_unref(promise);
}

std::string description_text(const GstWebRTCSessionDescription *d)
{
  gchar *t = gst_sdp_message_as_text(d->sdp);
  std::string out = t ? t : "";
  g_free(t);
  return out;
}

SessionHandle *new_handle(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  return new SessionHandle{self, s};
}

void free_handle(gpointer d, GClosure *)
{
  delete static_cast<SessionHandle *>(d);
}

static void on_ice_candidate(GstElement *webrtc, guint mline, gchar *candidate, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstRtcPeer *self = h->self;
  std::weak_ptr<Session> weak = h->session;
  std::string cand = candidate ? candidate : "";
  run_async(self, [self, weak, mline, cand] {
    auto s = weak.lock();
    if (!s || s->removed) return;
    s->local_candidates.push_back({int(mline), cand});
    if (s->trickle && self->priv->signaller) {
      std::string mid = mline < s->mids.size() ? s->mids[mline] : std::to_string(mline);
      self->priv->signaller->send_candidate(s->id, mid, int(mline), cand);
    }
  });
}

static void on_gathering_state(GstElement *webrtc, GParamSpec *, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstWebRTCICEGatheringState gs;
  g_object_get(webrtc, "ice-gathering-state", &gs, nullptr);
  GstRtcPeer *self = h->self;
  std::weak_ptr<Session> weak = h->session;
  bool complete = gs == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE;
  // Queued after the candidates webrtcbin emitted before this notification (its one task queue).
  run_async(self, [self, weak, complete] {
    auto s = weak.lock();
    if (!s) return;
    s->gathered = complete;
    if (!complete) return;
    warn_if_no_relay(self, s);
    finish_gathering(self, s);
  });
}

/* The remote's offer had fewer m-lines than we send tracks (e.g. it offered to receive one video
 * track and we send two cameras): once connected, offer again with every track. */
void renegotiate_if_needed(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  ASSERT_CTX(self);
  if (s->channels_pending) return; // open_channels_when_ready calls it after the channels
  bool missing = false;
  for (auto &l : s->media) missing |= !media_negotiated(l);
  if (!missing) return;
  GST_INFO_OBJECT(self, "offering '%s' the tracks its offer left out", s->id.c_str());
  negotiate(self, s, s->neg->negotiation_needed());
}

static void on_connection_state(GstElement *webrtc, GParamSpec *, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstWebRTCPeerConnectionState state;
  g_object_get(webrtc, "connection-state", &state, nullptr);
  GstRtcPeer *self = h->self;
  std::weak_ptr<Session> weak = h->session;
  run_async(self, [self, weak, state] {
    auto s = weak.lock();
    if (!s || s->removed) return;
    switch (state) {
    case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED:
      if (!s->connected) {
        s->connected = true;
        GST_INFO_OBJECT(self, "connected to '%s'", s->id.c_str());
        post_peer_message(self, "rtcpeer-peer-connected", s->id);
        g_object_notify(G_OBJECT(self), "connected-peers");
        // Start its media; a peer that joins late needs a keyframe to start decoding.
        connect_pending_media(self, s);
        renegotiate_if_needed(self, s);
        start_path_checks(self, s);
        report_selected_pair(self, s);
        request_keyframes(self);
        // Again shortly: the first one can be dropped while the new path is still settling.
        for (guint ms : {300u, 1000u}) add_timeout(self, ms, [self] { request_keyframes(self); });
      }
      break;
    case GST_WEBRTC_PEER_CONNECTION_STATE_FAILED:
      if (lose_path(self, s, "the connection failed")) break; // was connected: rebuild it
      GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ_WRITE,
                          ("Connection with peer '%s' failed", s->id.c_str()),
                          ("ICE or DTLS failed; removing this peer only"));
      remove_session(self, s->id, "connection failed");
      break;
    case GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED:
      remove_session(self, s->id, "connection closed");
      break;
    default: break;
    }
  });
}

static void on_ice_connection_state(GstElement *webrtc, GParamSpec *, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstWebRTCICEConnectionState state;
  g_object_get(webrtc, "ice-connection-state", &state, nullptr);
  if (state != GST_WEBRTC_ICE_CONNECTION_STATE_FAILED) return;
  GstRtcPeer *self = h->self;
  std::weak_ptr<Session> weak = h->session;
  run_async(self, [self, weak] {
    auto s = weak.lock();
    if (!s || s->removed) return;
    if (lose_path(self, s, "ICE failed")) return; // was connected: rebuild it
    GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ_WRITE,
                        ("ICE failed with peer '%s'", s->id.c_str()),
                        ("no candidate pair works (firewall, or a STUN/TURN server is needed); "
                         "removing this peer only"));
    remove_session(self, s->id, "ICE failed");
  });
}

/* libnice sends one connectivity check per Ta (default 20 ms) and nominates a pair a tick or two
 * after the first valid one, so with three local addresses ICE took 45-65 ms on loopback. RFC 8445
 * (section 14.2) allows Ta down to 5 ms; with host candidates that is a burst of a few checks. */
constexpr guint kIcePacingMs = 5;

static void pace_ice_checks(GstElement *webrtc)
{
  GObject *ice = nullptr;
  g_object_get(webrtc, "ice-agent", &ice, nullptr);
  if (!ice) return;
  GObject *agent = nullptr;
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent"))
    g_object_get(ice, "agent", &agent, nullptr);
  if (agent && g_object_class_find_property(G_OBJECT_GET_CLASS(agent), "stun-pacing-timer"))
    g_object_set(agent, "stun-pacing-timer", kIcePacingMs, nullptr);
  // No UPnP port mapping (browsers make none either; STUN/TURN cover NAT): with it each session
  // searched for a router by SSDP multicast and took in every other session's searches, on this
  // host and others (bench/fanout: 0.1 % of a core per viewer).
  if (agent && g_object_class_find_property(G_OBJECT_GET_CLASS(agent), "upnp"))
    g_object_set(agent, "upnp", FALSE, nullptr);
  if (agent) g_object_unref(agent);
  g_object_unref(ice);
}

/* A session for `peer`; offer_first: we make the first offer (role, target), which then carries
 * the receive-only tracks and a data section. Null past max-peers (one warning for a run of
 * refusals; the next one after a session was made again warns again). */
std::shared_ptr<Session> create_session(GstRtcPeer *self, const std::string &peer,
                                        const std::string &type, bool offer_first)
{
  ASSERT_CTX(self);
  auto *p = self->priv;
  guint max_peers;
  {
    std::lock_guard lk(p->props_lock);
    max_peers = p->max_peers;
  }
  size_t count;
  {
    std::lock_guard lk(p->lock);
    count = p->sessions.size();
  }
  if (max_peers && count >= max_peers) {
    if (p->refused_peers++ == 0)
      GST_ELEMENT_WARNING(self, RESOURCE, BUSY, ("Too many peers"),
                          ("already %zu peer connections (max-peers=%u); ignoring '%s' and further "
                           "new peers until one leaves",
                           count, max_peers, sigcheck::printable(peer, 80).c_str()));
    return nullptr;
  }
  p->refused_peers = 0;
  auto s = std::make_shared<Session>();
  s->self = self;
  s->id = peer;
  s->type = type;
  s->trickle = p->signaller ? p->signaller->peer_trickles(peer) : true;
  if (p->signaller) s->data_label = p->signaller->data_label(peer);
  {
    std::lock_guard lk(p->props_lock);
    negotiation::Negotiator::Options o;
    o.polite = negotiation::is_polite(p->peer_id, peer);
    o.trickle = s->trickle;
    o.redo_withdrawn = false; // renegotiate_if_needed checks once connected
    s->neg = std::make_unique<negotiation::Negotiator>(o);
  }
  std::string stun, turn;
  guint latency;
  gboolean recv_video, recv_audio;
  {
    std::lock_guard lk(p->props_lock);
    stun = p->stun_server;
    turn = p->turn_server;
    latency = p->latency;
    recv_video = p->receive_video;
    recv_audio = p->receive_audio;
  }
  std::string name;
  {
    std::lock_guard lk(p->lock);
    name = "session" + std::to_string(p->next_session++);
  }
  s->webrtc = gst_element_factory_make("webrtcbin", name.c_str());
  if (!s->webrtc) {
    GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("webrtcbin is missing"),
                      ("install gstreamer1.0-plugins-bad and gstreamer1.0-nice"));
    return nullptr;
  }
  g_object_set(s->webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency", latency,
               nullptr);
  apply_ice_servers(self, s->webrtc, stun, turn);
  pace_ice_checks(s->webrtc);
  auto connect = [&](const char *sig, GCallback cb) {
    g_signal_connect_data(s->webrtc, sig, cb, new_handle(self, s), free_handle, GConnectFlags(0));
  };
  connect("on-ice-candidate", G_CALLBACK(on_ice_candidate));
  connect("notify::ice-gathering-state", G_CALLBACK(on_gathering_state));
  connect("notify::connection-state", G_CALLBACK(on_connection_state));
  connect("notify::ice-connection-state", G_CALLBACK(on_ice_connection_state));
  connect("on-data-channel", G_CALLBACK(on_data_channel));
  connect("pad-added", G_CALLBACK(on_webrtc_pad_added));
  g_signal_connect(s->webrtc, "element-added", G_CALLBACK(on_webrtc_element_added), self);
  g_signal_connect(s->webrtc, "deep-element-added", G_CALLBACK(on_webrtc_deep_element_added),
                   nullptr);
  watch_path(self, s);
  if (GstElement *rtpbin = gst_bin_get_by_name(GST_BIN(s->webrtc), "rtpbin")) {
    g_signal_connect(rtpbin, "new-jitterbuffer", G_CALLBACK(on_new_jitterbuffer), nullptr);
    gst_object_unref(rtpbin);
  }
  {
    std::lock_guard lk(p->lock);
    p->sessions[peer] = s;
  }
  gst_bin_add(GST_BIN(self), s->webrtc);
  restore_flags(self);
  std::vector<MediaSend *> sends;
  {
    std::lock_guard lk(p->lock);
    for (auto &m : p->media_sends) sends.push_back(m.get());
  }
  bool has_video = false, has_audio = false;
  for (auto *m : sends) {
    link_media(self, s, m);
    (m->video ? has_video : has_audio) = true;
  }
  if (offer_first) {
    if (recv_video && !has_video) add_recv_transceiver(s->webrtc, true);
    if (recv_audio && !has_audio) add_recv_transceiver(s->webrtc, false);
  }
  gst_element_sync_state_with_parent(s->webrtc);
  post_peer_message(self, "rtcpeer-session-created", peer, "role",
                    offer_first ? "offerer" : "answerer");
  if (offer_first) {
    create_channels(self, s, true);
    negotiate(self, s, s->neg->negotiation_needed());
  }
  return s;
}

// ctx
void remove_session(GstRtcPeer *self, const std::string &peer, const std::string &reason)
{
  ASSERT_CTX(self);
  auto *p = self->priv;
  std::shared_ptr<Session> s;
  std::vector<GstWebRTCDataChannel *> channels;
  std::vector<MediaLink> media;
  std::vector<GstElement *> decoders;
  std::vector<GstPad *> media_srcs;
  {
    std::lock_guard lk(p->lock);
    auto it = p->sessions.find(peer);
    if (it == p->sessions.end()) return;
    s = it->second;
    p->sessions.erase(it);
    s->removed = true;
    channels.swap(s->channels);
    s->send_channels.clear();
    media.swap(s->media);
    decoders.swap(s->decoders);
    media_srcs.swap(s->media_srcs);
  }
  p->cond.notify_all();
  GST_INFO_OBJECT(self, "removing peer '%s': %s", peer.c_str(), reason.c_str());
  // A new connection is coming (keep_srcs): it gets what these channels had not confirmed.
  hand_over_channels(self, peer, channels, s->keep_srcs, reason);
  warn_unconfirmed(self, peer, channels, reason);
  if (!s->keep_srcs) {
    forget_peer(self, peer, reason);
    p->silent_losses.erase(peer);
  }
  cancel_timeout(self, &s->gather_timer);
  cancel_timeout(self, &s->left_timer);
  cancel_timeout(self, &s->watch_timer);
  cancel_timeout(self, &s->rebuild_timer);
  cancel_timeout(self, &s->rejoin_timer);
  std::vector<std::string> labels;
  for (auto *ch : channels) {
    if (auto *cs = channel_state(ch)) labels.push_back(cs->label);
    g_signal_handlers_disconnect_by_data(ch, self);
    GstWebRTCDataChannelState st;
    g_object_get(ch, "ready-state", &st, nullptr);
    if (st == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) gst_webrtc_data_channel_close(ch);
    gst_object_unref(ch);
  }
  // Cut the session off the shared tees, then stop its webrtcbin first: that flushes what the
  // session's queues are pushing into it, so the queues can stop without waiting on it.
  for (auto &m : media)
    if (m.send->control) m.send->control->forget(peer);
  unlink_media(media);
  shut_down(self, s->webrtc);
  release_media(self, media);
  if (s->keep_srcs) {
    park_received_media(self, peer, media_srcs, decoders);
  } else {
    release_received_media(self, media_srcs, decoders);
    release_parked_media(self, peer); // of an earlier connection the new one did not take up
  }

  s->webrtc = nullptr;
  if (s->offer) gst_webrtc_session_description_free(s->offer);
  if (s->answer) gst_webrtc_session_description_free(s->answer);
  s->offer = s->answer = nullptr;
  restore_flags(self);
  post_peer_message(self, "rtcpeer-peer-left", peer, "reason", reason);
  // end-with-peers: a sender that leaves (or fails) without closing its channels first ends
  // them too; not while we shut down ourselves.
  bool stopping;
  {
    std::lock_guard lk(p->lock);
    stopping = p->flushing || p->eos_posted;
  }
  if (!stopping)
    for (auto &label : labels) maybe_end_src(self, label);
  if (s->connected) g_object_notify(G_OBJECT(self), "connected-peers");
}

std::shared_ptr<Session> find_session(GstRtcPeer *self, const std::string &peer)
{
  std::lock_guard lk(self->priv->lock);
  auto it = self->priv->sessions.find(peer);
  return it == self->priv->sessions.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Session>> all_sessions(GstRtcPeer *self)
{
  std::vector<std::shared_ptr<Session>> all;
  std::lock_guard lk(self->priv->lock);
  for (auto &[id, s] : self->priv->sessions) all.push_back(s);
  return all;
}

void remove_all_sessions(GstRtcPeer *self)
{
  ASSERT_CTX(self);
  for (auto &s : all_sessions(self)) remove_session(self, s->id, "shutting down");
  release_parked_media(self, ""); // of peers whose new connection was not made yet
  forget_peer(self, "", "shutting down");
  self->priv->silent_losses.clear();
  self->priv->given_up.clear();
}

/* Without this a peer that announced a large message, sent most of it and went silent kept what
 * it sent (up to 256 MiB) until its next message on that channel or a reservation that did not
 * fit. */
static void expire_tick(GstRtcPeer *self)
{
  ASSERT_CTX(self);
  auto *p = self->priv;
  p->expire_timer = 0;
  auto now = framing::Clock::now();
  for (auto &s : all_sessions(self)) {
    std::vector<std::string> reasons;
    s->reasm_budget->expire(now, &reasons);
    for (auto &why : reasons)
      GST_ELEMENT_WARNING(self, STREAM, DECODE, ("Dropped a stalled fragmented message"),
                          ("from peer '%s': %s", s->id.c_str(), why.c_str()));
  }
  p->expire_timer = add_timeout(self, 1000, [self] { expire_tick(self); });
}

void start_expiry(GstRtcPeer *self)
{
  ASSERT_CTX(self);
  if (!self->priv->expire_timer)
    self->priv->expire_timer = add_timeout(self, 1000, [self] { expire_tick(self); });
}

void stop_expiry(GstRtcPeer *self)
{
  ASSERT_CTX(self);
  cancel_timeout(self, &self->priv->expire_timer);
}

/* Who makes the first offer. role=answerer never does; a target gets one; role=offerer offers to
 * every peer. role=auto: whoever was in the room first offers to the newcomer, so between two
 * rtcpeers there is one offer and no glare; we also offer to present peers that may only answer
 * (client_type answerer or receiver) and to browsers, whose page role we cannot see (a page in
 * role answer waits for us; in role auto it offers too, and the polite rule settles the glare). */
static bool should_offer(GstRtcPeer *self, const std::string &peer, const std::string &type,
                         bool joined_after_us)
{
  auto *p = self->priv;
  std::lock_guard lk(p->props_lock);
  if (p->role == Role::Answerer) return false;
  if (!p->target.empty()) return peer == p->target;
  if (p->role == Role::Offerer) return true;
  return joined_after_us || type == "answerer" || type == "receiver" || type == "browser";
}

static void on_remote_set(GstPromise *promise, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstRtcPeer *self = h->self;
  auto s = h->session.lock();
  const GstStructure *reply = gst_promise_get_reply(promise);
  GError *err = nullptr;
  if (reply && gst_structure_has_field(reply, "error"))
    gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
  gst_promise_unref(promise);
  if (!s) return;
  std::weak_ptr<Session> weak = s;
  std::string error = err ? err->message : "";
  g_clear_error(&err);
  run_async(self, [self, weak, error] {
    auto s = weak.lock();
    if (!s || s->removed) return;
    if (!error.empty()) {
      GST_ELEMENT_WARNING(self, STREAM, FORMAT,
                          ("Peer '%s' sent an unusable description", s->id.c_str()),
                          ("%s", error.c_str()));
      remove_session(self, s->id, "unusable description");
      return;
    }
    s->remote_set = true;
    for (auto &c : s->pending_candidates)
      g_signal_emit_by_name(s->webrtc, "add-ice-candidate", guint(c.mline), c.candidate.c_str());
    s->pending_candidates.clear();
    if (s->connected)
      connect_pending_media(self, s); // a renegotiation: the new tracks have m-lines
  });
}

static void handle_remote_sdp(GstRtcPeer *self, const std::string &peer, const std::string &type,
                              const std::string &received)
{
  ASSERT_CTX(self);
  const std::string text = sdp::drop_bundle_with_split_ice(received);
  bool offer = type == "offer";
  if (!offer && type != "answer") {
    GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("Ignored a malformed signaling message"),
                        ("SDP of unknown type '%s' from '%s'", type.c_str(), peer.c_str()));
    return;
  }
  GstSDPMessage *msg = nullptr;
  gst_sdp_message_new_from_text(text.c_str(), &msg);
  if (sdp::media_count(text) > int(kMaxMedia)) {
    GST_ELEMENT_WARNING(
        self, STREAM, FORMAT, ("Ignored an offer with too many m-lines"),
        ("%d sections from '%s'; at most %zu", sdp::media_count(text), peer.c_str(), kMaxMedia));
    if (msg) gst_sdp_message_free(msg);
    return;
  }
  if (!msg || sdp::media_count(text) == 0) {
    GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("Ignored a malformed signaling message"),
                        ("unparsable %s SDP from '%s'", type.c_str(), peer.c_str()));
    if (msg) gst_sdp_message_free(msg);
    return;
  }
  auto s = find_session(self, peer);
  if (!s) {
    if (!offer) {
      GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("Ignored a malformed signaling message"),
                          ("answer from '%s', to which no offer was made", peer.c_str()));
      gst_sdp_message_free(msg);
      return;
    }
    if (self->priv->given_up.count(peer)) {
      GST_INFO_OBJECT(self, "offer from '%s' ignored: its connections keep going silent",
                      peer.c_str());
      gst_sdp_message_free(msg);
      return;
    }
    s = create_session(self, peer, "", false);
    if (!s) {
      gst_sdp_message_free(msg);
      return;
    }
  }
  std::string fp = negotiation::connection_identity(text);
  if (!offer && s->neg->new_connection(fp)) {
    // Our offer on the live connection (check_rejoined's) answered by a new process of that
    // peer: it restarted, and what we had is dead.
    if (!lose_path(self, s, "the peer restarted (it answered from a new connection)"))
      GST_INFO_OBJECT(self, "answer from '%s' for another connection ignored", peer.c_str());
    gst_sdp_message_free(msg);
    return;
  }
  if (s->verifying && !s->neg->new_connection(fp)) {
    // Its answer, or its own offer crossing ours (both registered again after a daemon
    // restart), on the same connection: a signaling hiccup.
    s->verifying = false;
    GST_INFO_OBJECT(self, "'%s' is on the same connection: a signaling hiccup", peer.c_str());
  }
  auto actions = offer ? s->neg->remote_offer(fp) : s->neg->remote_answer(fp);
  if (actions.empty()) {
    // Glare we win (the polite side answers ours instead), or an answer to nothing pending.
    GST_INFO_OBJECT(self, "%s from '%s' ignored (%s)", type.c_str(), peer.c_str(),
                    offer ? "offer glare: the polite side answers ours" : "no offer pending");
    gst_sdp_message_free(msg);
    return;
  }
  // Pieces no larger than the remote accepts (0 = any size; webrtcbin itself takes 64 KiB).
  uint64_t mms = sdp::max_message_size(text);
  *s->chunk = (mms == 0 || mms > 65536) ? 65536 : std::max<uint64_t>(mms, kMinChunk);
  GstWebRTCSessionDescription *desc = gst_webrtc_session_description_new(
      offer ? GST_WEBRTC_SDP_TYPE_OFFER : GST_WEBRTC_SDP_TYPE_ANSWER, msg);
  negotiate(self, s, actions, desc);
  gst_webrtc_session_description_free(desc);
}

/* Carries out the negotiator's actions on the session's webrtcbin, in order (webrtcbin queues
 * them as tasks, so an answer can be asked for right after the remote offer is set). remote: the
 * description that came with the event, if any. Context thread. */
static void negotiate(GstRtcPeer *self, std::shared_ptr<Session> s,
                      const std::vector<negotiation::Action> &actions,
                      GstWebRTCSessionDescription *remote)
{
  ASSERT_CTX(self);
  using negotiation::Action;
  auto promise = [&](void (*fn)(GstPromise *, gpointer)) {
    return gst_promise_new_with_change_func(fn, new_handle(self, s),
                                            [](gpointer d) { free_handle(d); });
  };
  for (Action a : actions) {
    if (s->removed) return;
    GST_DEBUG_OBJECT(self, "'%s': %s", s->id.c_str(), negotiation::action_name(a));
    switch (a) {
    case Action::CreateOffer:
      g_signal_emit_by_name(s->webrtc, "create-offer", nullptr, promise(on_offer_created));
      break;
    case Action::ApplyLocalOffer:
      if (s->offer) g_signal_emit_by_name(s->webrtc, "set-local-description", s->offer, nullptr);
      break;
    case Action::SendOffer:
      // Queued before any candidate: candidates reach this thread only after this call.
      // A re-offer keeps the live BUNDLE transport's port and DTLS role in every section (the
      // remote answers that; webrtcbin keeps its own copy, which only differs there).
      if (s->offer)
        send_local_description(self, s, "offer",
                               sdp::keep_bundle_in_reoffer(description_text(s->offer)));
      break;
    case Action::ApplyRemoteOffer:
      if (remote) adopt_remote_payload_types(self, s, remote);
      [[fallthrough]];
    case Action::ApplyRemoteAnswer:
      if (remote)
        g_signal_emit_by_name(s->webrtc, "set-remote-description", remote, promise(on_remote_set));
      break;
    case Action::CreateAnswer:
      prepare_answer_transceivers(self, s);
      g_signal_emit_by_name(s->webrtc, "create-answer", nullptr, promise(on_answer_created));
      break;
    case Action::ApplyLocalAnswer:
      if (s->answer) g_signal_emit_by_name(s->webrtc, "set-local-description", s->answer, nullptr);
      break;
    case Action::SendAnswer:
      if (s->answer) send_local_description(self, s, "answer", description_text(s->answer));
      // Our own channels open once SCTP is up; a renegotiation keeps the ones it has.
      if (!s->connected) {
        s->channels_pending = true;
        open_channels_when_ready(self, s, 0);
      }
      break;
    case Action::Recreate: {
      // A restarted peer, or our first offer withdrawn: a fresh webrtcbin for the same peer.
      GST_INFO_OBJECT(self, "'%s': new peer connection", s->id.c_str());
      bool restart = s->connected;
      if (restart && replaced_while_silent(self, s)) return;
      auto neg = std::move(s->neg);
      std::string id = s->id, type = s->type;
      s->keep_srcs = true; // the new connection's tracks come out of the same src pads
      // A restart: remove_session's warning counts what the old connection left unconfirmed.
      remove_session(self, id,
                     restart ? "the peer restarted its connection"
                             : "its offer crossed our first one: answering on a new connection");
      auto fresh = create_session(self, id, type, false);
      if (!fresh) return;
      fresh->neg = std::move(neg);
      s = fresh;
      break;
    }
    }
  }
}

void offer_again(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  ASSERT_CTX(self);
  if (s->removed) return;
  negotiate(self, s, s->neg->negotiation_needed());
}

static void handle_remote_candidate(GstRtcPeer *self, const std::string &peer,
                                    const std::string &mid, int mline, const std::string &cand)
{
  ASSERT_CTX(self);
  auto s = find_session(self, peer);
  if (!s) {
    GST_DEBUG_OBJECT(self, "candidate from '%s' without a session", peer.c_str());
    return;
  }
  if (cand.empty()) return; // end of candidates
  if (mline < 0) {
    // Only a mid was given: find its m-line in the local description.
    for (size_t i = 0; i < s->mids.size(); i++)
      if (s->mids[i] == mid) mline = int(i);
    if (mline < 0) mline = 0;
  }
  std::string text(sdp::candidate_value(cand));
  if (s->neg->remote_candidate() == negotiation::CandidateFate::Drop) {
    GST_DEBUG_OBJECT(self, "candidate of the offer from '%s' we ignored", peer.c_str());
    return;
  }
  if (!s->remote_set) {
    s->pending_candidates.push_back({mline, text});
    return;
  }
  g_signal_emit_by_name(s->webrtc, "add-ice-candidate", guint(mline), text.c_str());
}

/* ---------------------------------------------------------------------------------------------
 * Signaller events (context thread) */

SignallerEvents make_events(GstRtcPeer *self)
{
  SignallerEvents ev;
  ev.ready = [self](const std::vector<std::pair<std::string, std::string>> &present) {
    auto *p = self->priv;
    std::string room, target, my_id;
    Role role;
    {
      std::lock_guard lk(p->props_lock);
      room = p->room;
      target = p->target;
      my_id = p->peer_id;
      role = p->role;
    }
    if (p->signaling_lost)
      GST_ELEMENT_INFO(self, RESOURCE, OPEN_READ_WRITE, ("Signaling reconnected"),
                       ("registered again as '%s'", my_id.c_str()));
    p->signaling_lost = false;
    GST_INFO_OBJECT(self, "registered as '%s' in room '%s' with %zu peers", my_id.c_str(),
                    room.c_str(), present.size());
    GstStructure *st = gst_structure_new("rtcpeer-registered", "peer-id", G_TYPE_STRING,
                                         my_id.c_str(), "room", G_TYPE_STRING, room.c_str(),
                                         "peers", G_TYPE_UINT, guint(present.size()), nullptr);
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), st));
    bool target_present = target.empty();
    for (auto &[peer, type] : present) {
      target_present |= peer == target;
      auto s = find_session(self, peer);
      if (s) {
        cancel_timeout(self, &s->left_timer);
        if (s->connected) check_rejoined(self, s); // it may have restarted meanwhile
        continue;
      }
      if (p->given_up.count(peer)) continue; // still there, on the path that kept dying
      if (should_offer(self, peer, type, false)) create_session(self, peer, type, true);
    }
    if (!target_present && role != Role::Answerer)
      GST_ELEMENT_WARNING(
          self, RESOURCE, NOT_FOUND, ("Unknown target peer '%s'", target.c_str()),
          ("'%s' is not in room '%s'; waiting for it to join", target.c_str(), room.c_str()));
  };
  ev.peer_joined = [self](const std::string &peer, const std::string &type) {
    GST_INFO_OBJECT(self, "peer '%s' (%s) joined", peer.c_str(), type.c_str());
    self->priv->given_up.erase(peer); // registered again: a new process, maybe a new path
    post_peer_message(self, "rtcpeer-peer-joined", peer, "peer-type", type);
    auto s = find_session(self, peer);
    if (s) {
      // Back after a signaling hiccup (the connection is still good), or a new process under
      // the same id (SIGKILL, a container restart) that waits for our offer: check_rejoined.
      cancel_timeout(self, &s->left_timer);
      if (s->connected) {
        check_rejoined(self, s);
        return;
      }
      remove_session(self, peer, "the peer joined again");
    }
    if (should_offer(self, peer, type, true)) create_session(self, peer, type, true);
  };
  ev.peer_left = [self](const std::string &peer) {
    auto s = find_session(self, peer);
    if (!s) {
      release_parked_media(self, peer); // its connection was lost and not made again
      forget_peer(self, peer, "the peer left");
      self->priv->silent_losses.erase(peer);
      self->priv->given_up.erase(peer);
      return;
    }
    if (!s->connected) {
      remove_session(self, peer, "the peer left");
      return;
    }
    // Its signaling went away but the media path may still be up (a signaling hiccup); wait a
    // little for it to come back or for the connection to close.
    cancel_timeout(self, &s->left_timer);
    std::weak_ptr<Session> weak = s;
    s->left_timer = add_timeout(self, kLeftGraceMs, [self, weak] {
      if (auto s = weak.lock()) {
        s->left_timer = 0;
        remove_session(self, s->id, "the peer left");
      }
    });
  };
  ev.sdp = [self](const std::string &peer, const std::string &type, const std::string &sdp) {
    handle_remote_sdp(self, peer, type, sdp);
  };
  ev.candidate = [self](const std::string &peer, const std::string &mid, int mline,
                        const std::string &cand) {
    handle_remote_candidate(self, peer, mid, mline, cand);
  };
  ev.error = [self](const std::string &reason, bool fatal) {
    if (fatal)
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ_WRITE, ("Signaling failed: %s", reason.c_str()),
                        (nullptr));
    else
      GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ_WRITE, ("Signaling: %s", reason.c_str()),
                          (nullptr));
  };
  ev.disconnected = [self](const std::string &reason) {
    self->priv->signaling_lost = true;
    GST_ELEMENT_WARNING(self, RESOURCE, READ, ("Signaling connection lost: %s", reason.c_str()),
                        ("reconnecting; established peer connections keep flowing"));
    GstStructure *st = gst_structure_new("rtcpeer-signaling-disconnected", "reason", G_TYPE_STRING,
                                         reason.c_str(), nullptr);
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), st));
  };
  return ev;
}

} // namespace pointcast::rtc
