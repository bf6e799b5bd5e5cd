// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's one codec table (as webrtcsink's utils.rs): what each codec it sends is called in
 * the codec property, in caps and in RTP, and which elements encode, parse, payload and depayload
 * it. Adding a codec is one row here plus its encoder settings (mediasend.cpp configure_encoder). */
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pointcast::codecs {

struct Codec {
  const char *name;     // video-codec property value: "vp8"
  const char *encoding; // RTP encoding-name: "VP8"
  bool video;
  const char *encoded; // caps name of the encoded stream: "video/x-vp8"
  const char *encoder; // raw -> encoded
  const char *parser;  // between encoder (or input) and payloader; nullptr if none
  const char *payloader;
  const char *depayloader;
  int clock_rate;
  const char *rtp_extra; // further application/x-rtp fields, "" if none
  // What the encoder must write, as caps after it; nullptr if anything it picks will do.
  const char *encoder_caps = nullptr;
};

const std::vector<Codec> &all();
const Codec *by_name(std::string_view name);         // property value, case-insensitive
const Codec *by_encoded(std::string_view caps_name); // "video/x-h264"
const Codec *by_encoding(std::string_view encoding); // RTP encoding-name, case-insensitive
// The caps webrtcbin is told we send: application/x-rtp with payload type pt.
std::string rtp_caps(const Codec &c, unsigned pt);

} // namespace pointcast::codecs
