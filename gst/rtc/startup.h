// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

namespace pointcast::rtc {

/* What the first peer connection of a process would otherwise wait for, started on threads of
 * their own when the first rtcpeer is created (once per process; later calls return at once):
 * - webrtcbin's DTLS certificate. webrtcbin 1.22's dtlsdec makes that RSA-2048 key and
 *   certificate when the first dtlsdec is created, and every later dtlsdec waits for it, so no
 *   offer or answer can be written before it exists.
 * - the plugins a session loads when it makes its webrtcbin and transports (webrtc, nice,
 *   rtpmanager, srtp, sctp: 40-60 ms here, more on a loaded machine). */
void prepare_first_connection();

/* Called by every rtcpeer's finalize, once per prepare_first_connection(): the last one joins
 * the start-up threads, so none outlives the elements (and races gst_deinit at exit). */
void release_first_connection();

} // namespace pointcast::rtc
