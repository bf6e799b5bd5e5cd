// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's incoming media: each track a webrtcbin adds is decoded (decodebin) and comes out of a
 * video_%u / audio_%u src pad through a tee that may run unlinked, so media nobody links is
 * dropped with one warning instead of stopping the pipeline. */
#pragma once

#include "rtc/gstrtcpeer.h"

#include <memory>
#include <string>
#include <vector>

namespace pointcast::rtc {

struct Session;

// webrtcbin's pad-added (user data: a SessionHandle). webrtcbin's thread.
void on_webrtc_pad_added(GstElement *webrtc, GstPad *pad, gpointer user_data);
// A media src pad that no peer's track filled: made at EOS so the branch linked to it ends.
GstPad *make_ended_media_src(GstRtcPeer *self, const std::string &name);
// ctx, removing a session (after its webrtcbin stopped): its src pads and decoders go.
void release_received_media(GstRtcPeer *self, std::vector<GstPad *> &media_srcs,
                            std::vector<GstElement *> &decoders);

/* A connection to `peer` rebuilt (its path died, or the peer restarted it): its decoders go, but
 * its src pads stay on the element, without a target, for the new connection's tracks of the same
 * kind (the same m-line first), so that the pipeline linked to them (gst-launch links a
 * sometimes pad once) goes on. ctx, after the old webrtcbin stopped. */
void park_received_media(GstRtcPeer *self, const std::string &peer,
                         std::vector<GstPad *> &media_srcs, std::vector<GstElement *> &decoders);
// ctx: the parked src pads of `peer` ("": of every peer) are released as a removed session's.
void release_parked_media(GstRtcPeer *self, const std::string &peer);
// Under priv->lock: every parked src pad, ref'd (EOS goes to them too).
void parked_media_pads(GstRtcPeer *self, std::vector<GstPad *> &out);

/* rtpbin's new-jitterbuffer, after webrtcbin's: do-retransmission as the negotiated description
 * says for the stream's codec (its payload type's rtcp-fb nack, from webrtcbin's payload map),
 * decided on its first media packet. webrtcbin 1.22 takes it from whichever transceiver of the
 * bundle it looks at last (jitter_buffer_set_retransmission compares no SSRC): with audio
 * bundled, or a transceiver without NACK, video went without it. RTX, RED and ULPFEC packets
 * (before the first media packet) leave it as webrtcbin set it. */
void follow_negotiated_nack(GstElement *jitterbuffer);

} // namespace pointcast::rtc
