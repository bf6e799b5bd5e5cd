// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's outgoing media: each video_%u / audio_%u sink pad is encoded once (its row in
 * rtc/codecs.h gives encoder, parser, payloader and RTP caps) into a tee; each session hangs a
 * queue off that tee into a send transceiver of its webrtcbin. */
#pragma once

#include "rtc/gstrtcpeer.h"
#include "rtc/mediacc.h"

#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace pointcast::rtc {

struct Session;

/* A video_%u / audio_%u sink pad: ghost -> identity -> (built on caps: convert ! encoder ! parse)
 * -> tee of encoded frames; each session hangs its own payloader ! capsfilter ! queue off the tee
 * (its own RTP sequence numbers and VP8 picture ids, so frames of temporal layers it does not get
 * can be left out with both still continuous). */
struct MediaSend {
  bool video = true;
  std::string name;
  GstPad *ghost = nullptr;
  GstElement *head = nullptr;
  GstElement *tee = nullptr;
  GstElement *encoder = nullptr; // under priv->lock; null when the input was already encoded
  GstCaps *rtp_caps = nullptr;   // what webrtcbin is told we send
  guint pt = 96;                 // payload type, distinct per pad (see alloc_payload_type)
  std::vector<GstElement *> chain;
  // Video from raw: its encoder's rate, driven by every viewer's congestion controller.
  std::unique_ptr<mediacc::EncoderControl> control;
  std::atomic<bool> built{false};
  bool eos = false; // under priv->lock
};

// One MediaSend feeding one session (ctx thread).
struct MediaLink {
  MediaSend *send = nullptr;
  GstPad *tee_pad = nullptr;
  GstElement *queue = nullptr;
  GstPad *webrtc_pad = nullptr;
  guint remote_pt = 0;       // the payload type the remote offered for our codec, when not ours
  GstElement *pay = nullptr; // this session's payloader (tee -> pay -> filter -> queue)
  GstElement *pay_filter = nullptr; // its output caps: what this session's transceiver was told
};

// request_new_pad for video_%u / audio_%u.
GstPad *request_media_pad(GstRtcPeer *self, GstPadTemplate *templ, bool video,
                          const gchar *req_name);

// ctx: a send transceiver and queue in the session for m (fed once connected).
void link_media(GstRtcPeer *self, const std::shared_ptr<Session> &s, MediaSend *m);
// ctx: answering, our tracks take the payload types the remote's offer gives their codecs.
void adopt_remote_payload_types(GstRtcPeer *self, const std::shared_ptr<Session> &s,
                                GstWebRTCSessionDescription *offer);
// Whether the track has an m-line in the negotiated session (an answer may leave some out).
bool media_negotiated(const MediaLink &l);
// ctx: the peer is connected: feed it the shared media, starting with a keyframe.
void connect_pending_media(GstRtcPeer *self, const std::shared_ptr<Session> &s);
// Asks every encoder for a keyframe. Any thread.
void request_keyframes(GstRtcPeer *self);
// Offering with no sink pad of that kind: one receive-only transceiver for every codec we decode
// (video with NACK/RTX and TWCC).
void add_recv_transceiver(GstElement *webrtc, bool video);
/* ctx, answering, before create-answer: the transceivers webrtcbin made from the remote's offer
 * have no codec preferences, and webrtcbin 1.22 then answers without NACK, RTX and the TWCC
 * extension even when offered. Their preferences become the offer's own codecs
 * (mediacc::caps_from_offer), with NACK on. True when it changed a transceiver. */
bool prepare_answer_transceivers(GstRtcPeer *self, const std::shared_ptr<Session> &s);
/* webrtcbin's deep-element-added: each rtpsession's RTCP timing (rtcprate.h), each
 * rtprtxsend's budget (mediacc::limit_retransmissions). */
void on_webrtc_deep_element_added(GstBin *, GstBin *, GstElement *element, gpointer);
// rtpbin's new-jitterbuffer: starts at 10 ms, gets `latency` once its first packet is out (the
// first packet waits `latency`, its deadline timer, and every frame arriving meanwhile: with
// 200 ms the first ~6 frames of every stream came 200 ms late). Its rtx-retry-period is then the
// latency: the automatic one is the latency minus a retry timeout, so a request whose retry
// would still be answered before the deadline was the last (the log of a packet lost for good at
// ~4 % bursty loss: one request 55 ms after it was due, the retry refused by 3 ms, the frames
// until the next keyframe lost).
void on_new_jitterbuffer(GstElement *, GstElement *jb, guint, guint, gpointer);
// webrtcbin's element-added: clocksync off for live input.
void on_webrtc_element_added(GstBin *, GstElement *element, gpointer user_data);
// ctx, removing a session: first cut it off the tees, then (its webrtcbin stopped) free the rest.
void unlink_media(std::vector<MediaLink> &media);
void release_media(GstRtcPeer *self, std::vector<MediaLink> &media);

} // namespace pointcast::rtc
