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

} // namespace pointcast::rtc
