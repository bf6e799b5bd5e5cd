// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer: a bin around webrtcbin that does its own signaling. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_RTC_PEER (gst_rtc_peer_get_type())
G_DECLARE_FINAL_TYPE(GstRtcPeer, gst_rtc_peer, GST, RTC_PEER, GstBin)

#define GST_TYPE_RTC_PEER_ROLE (gst_rtc_peer_role_get_type())
GType gst_rtc_peer_role_get_type(void);

GST_ELEMENT_REGISTER_DECLARE(rtcpeer);

G_END_DECLS
