// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer: a bin around webrtcbin that does its own signaling.
 *
 * Files: gstrtcpeer.cpp (properties, pad dispatch, state changes, wiring), session.* (one remote
 * peer: its webrtcbin, negotiation glue, candidates, connection state, removal), negotiation.*
 * (the pure perfect-negotiation state machine), datachannels.* (channels, flow control,
 * fragmentation, reassembly), mediasend.* (codec table to encoders, payloaders, transceivers, the
 * shared encoder and tee), mediarecv.* (incoming tracks, decodebin, src pads), eos.* (end of
 * stream), contextthread.* (the context thread), rtcpeerpriv.h (the state they share).
 *
 * Threads:
 * - the context thread (ctx, contextthread.h) runs signaller events, negotiation, session set-up
 *   and tear-down; functions that need it start with ASSERT_CTX. Every other thread hands it work
 *   with run_async (rtcpeerpriv.h), the one way onto it.
 * - webrtcbin's threads (promises, ICE, SCTP receive, decodebin's pad-added) only read what they
 *   were given, push received data, and post to ctx.
 * - streaming threads run the sink pads (data_chain, the media chains) and the application's
 *   thread the state changes and properties.
 * Cross-thread fields are atomics or guarded by the lock named beside them.
 *
 * Lock order, outer first: src_create_lock -> lock -> props_lock. DataSrc::push and wake_lock are
 * leaves (nothing else is taken while holding them). No lock is held while calling into a
 * webrtcbin (signals, properties, pads): its threads call back into this element and take `lock`.
 * The exception: a channel's send_mu (datachannels.h ChannelState) is held around its send calls,
 * and no webrtcbin thread ever takes it. Per channel: turn -> send_mu -> acct -> resend_lock
 * (RtcPeerPrivate's; `lock` is never taken with it held, nor it under `lock`; InStream::mu a leaf).
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_RTC_PEER (gst_rtc_peer_get_type())
G_DECLARE_FINAL_TYPE(GstRtcPeer, gst_rtc_peer, GST, RTC_PEER, GstBin)

#define GST_TYPE_RTC_PEER_ROLE (gst_rtc_peer_role_get_type())
GType gst_rtc_peer_role_get_type(void);

GST_ELEMENT_REGISTER_DECLARE(rtcpeer);

G_END_DECLS
