// SPDX-License-Identifier: LGPL-2.1-or-later
/* One remote peer of rtcpeer: its webrtcbin (peer connection), the perfect-negotiation glue
 * between rtc/negotiation.h and that webrtcbin, candidates, connection state and removal; and the
 * signaller events that create and remove sessions. Context thread unless noted. */
#pragma once

#include "rtc/datachannels.h"
#include "rtc/framing.h"
#include "rtc/gstrtcpeer.h"
#include "rtc/mediasend.h"
#include "rtc/negotiation.h"
#include "rtc/pathwatch.h"
#include "sdp.h"
#include "rtc/signaller.h"

#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pointcast::rtc {

struct Session {
  GstRtcPeer *self = nullptr;
  std::string id, type;
  // Bytes of partial (announced, incomplete) messages this peer may hold over all its channels.
  std::shared_ptr<framing::Budget> reasm_budget =
      std::make_shared<framing::Budget>(framing::Limits{}.max_message);
  GstElement *webrtc = nullptr; // set before the session is published; cleared when removed
  // ctx thread: who offers when (perfect negotiation), and the descriptions webrtcbin made that
  // it still has to be given (our offer may be applied only when its answer comes).
  std::unique_ptr<negotiation::Negotiator> neg;
  GstWebRTCSessionDescription *offer = nullptr, *answer = nullptr;
  // Written on the context thread, read from others (get_property, streaming threads).
  std::atomic<bool> removed{false};
  std::atomic<bool> peer_closed{false}; // closed all its channels; removed a moment later
  std::atomic<bool> connected{false};
  bool remote_set = false;  // ctx thread
  bool trickle = true;      // ctx thread
  std::string data_label;   // non-empty: the label the channels this peer opens come out as
  std::string waiting_type; // ctx: non-trickle, local description waiting for gathering to finish
  std::string waiting_sdp;
  /* ctx: webrtcbin's gathering is complete as the context thread has seen it, i.e. after the
   * candidates webrtcbin announced before (its property can be ahead of them). */
  bool gathered = false;
  guint gather_timer = 0, left_timer = 0; // ctx
  // ctx: warn_if_no_relay has looked at this session's candidates.
  bool turn_checked = false;
  // The transport's liveness (rtc/pathwatch.h); ctx: its check timer, the connect deadline of a
  // rebuilt session and how many rebuilds in a row have not connected yet.
  std::shared_ptr<PathWatch> watch = std::make_shared<PathWatch>();
  guint watch_timer = 0, rebuild_timer = 0;
  guint rebuilds = 0;
  // ctx: when it connected (monotonic us; rtc/pathwatch.cpp's bound on silent connections).
  gint64 connected_us = 0;
  // ctx: the peer registered again while connected (rtc/pathwatch.h check_rejoined): the timer
  // of that check, and whether our offer asking "same connection?" is out.
  guint rejoin_timer = 0;
  bool verifying = false;
  // ctx: its removal makes way for a new connection to the same peer, which takes over the src
  // pads of its tracks (rtc/mediarecv.h park_received_media).
  bool keep_srcs = false;
  struct RemoteCandidate {
    int mline;
    std::string candidate;
  };
  std::vector<RemoteCandidate> pending_candidates; // ctx
  std::vector<sdp::Candidate> local_candidates;    // ctx
  std::vector<std::string> mids;                   // ctx
  std::shared_ptr<std::atomic<uint64_t>> chunk = std::make_shared<std::atomic<uint64_t>>(65536);
  // Channels the remote opened beyond kMaxChannels (closed at once), counted for one warning.
  std::atomic<guint> refused_channels{0};
  // ctx: an answerer's own channels wait for SCTP (open_channels_when_ready), and its own
  // renegotiation waits for them: webrtcbin 1.22 takes the DTLS role for a new channel's SCTP
  // stream id from the last offer/answer, and after the answerer's own offer that is the
  // offerer's parity (both sides' first channel on stream 1, our messages in its channel).
  bool channels_pending = false;
  bool answer_redone = false; // add_answer_feedback asked webrtcbin for this answer again
  // Under priv->lock: the channel used to send each label, every channel of this session, its
  // send links, its decoders and the src pads of its tracks (added on decodebin's thread).
  std::map<std::string, GstWebRTCDataChannel *> send_channels;
  std::vector<GstWebRTCDataChannel *> channels;
  std::vector<MediaLink> media;
  std::vector<GstElement *> decoders;
  std::vector<GstPad *> media_srcs;
};

// Signal user data for webrtcbin callbacks: keeps only a weak reference to its session.
struct SessionHandle {
  GstRtcPeer *self;
  std::weak_ptr<Session> session;
};
SessionHandle *new_handle(GstRtcPeer *self, const std::shared_ptr<Session> &s);
void free_handle(gpointer d, GClosure * = nullptr);

// The SDP text of a description.
std::string description_text(const GstWebRTCSessionDescription *d);

// Any thread.
std::shared_ptr<Session> find_session(GstRtcPeer *self, const std::string &peer);
// Every session, connected or not. Any thread.
std::vector<std::shared_ptr<Session>> all_sessions(GstRtcPeer *self);
// A new session for `peer` (offer_first: we offer); null past max-peers or without webrtcbin.
std::shared_ptr<Session> create_session(GstRtcPeer *self, const std::string &peer,
                                        const std::string &type, bool offer_first);
// Offers again on the session's connection (a renegotiation; perfect negotiation's rules).
void offer_again(GstRtcPeer *self, const std::shared_ptr<Session> &s);
// Removes the session (if any) and everything it added to the element.
void remove_session(GstRtcPeer *self, const std::string &peer, const std::string &reason);
// Removes every session (the element stops).
void remove_all_sessions(GstRtcPeer *self);
// Once a second, until stop_expiry: every session's fragmented messages with no piece for the
// idle timeout are dropped with a warning, releasing their memory (framing::Budget::expire).
void start_expiry(GstRtcPeer *self);
void stop_expiry(GstRtcPeer *self);
// The signaller's events: sessions made and removed as peers come and go. Run on ctx.
SignallerEvents make_events(GstRtcPeer *self);

} // namespace pointcast::rtc
