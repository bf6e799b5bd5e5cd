// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's end of stream: the element posts EOS once every sink pad that carried something has
 * ended and the data channels drained; an EOS sent to the element (gst-launch -e) ends its src
 * pads, after its own sinks when replies may still come. */
#pragma once

#include "rtc/gstrtcpeer.h"

#include <set>
#include <string>

namespace pointcast::rtc {

struct RtcPeerPrivate;

// Under priv->lock: every sink pad that carries something has ended (but those in `except`).
bool sinks_ended(RtcPeerPrivate *p, const std::set<std::string> &except = {});
// Posts EOS (once) when sinks_ended: drains the channels first, then ends the src pads if asked.
void maybe_post_eos(GstRtcPeer *self, guint32 seqnum);
// Posts our EOS message (seqnum may be GST_SEQNUM_INVALID).
void post_eos_message(GstRtcPeer *self, guint32 seqnum);
// Ends every src pad with the pending EOS (the element's send_event), once.
void end_src_pads(GstRtcPeer *self);
// Names of our sink pads fed (through the pipeline) by our own src pads.
std::set<std::string> sinks_fed_by_self(GstRtcPeer *self);

} // namespace pointcast::rtc
