// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

namespace pointcast::rtc {

/* Starts making webrtcbin's per-process DTLS certificate on a thread of its own (once per
 * process; later calls return at once). webrtcbin 1.22's dtlsdec makes that RSA-2048 key and
 * certificate when the first dtlsdec is created, and every later dtlsdec waits for it, so an
 * answer or offer cannot be written before it exists: it is on the way to the first frame. */
void prepare_dtls_certificate();

} // namespace pointcast::rtc
