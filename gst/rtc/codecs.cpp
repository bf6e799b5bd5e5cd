// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/codecs.h"

#include <cctype>

namespace pointcast::codecs {

namespace {
bool iequal(std::string_view a, std::string_view b)
{
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}
} // namespace

const std::vector<Codec> &all()
{
  // nack-pli / ccm-fir let a receiver ask for a keyframe (a late joiner, a loss).
  static const std::vector<Codec> table = {
      {"vp8", "VP8", true, "video/x-vp8", "vp8enc", nullptr, "rtpvp8pay", "rtpvp8depay", 90000,
       "rtcp-fb-nack-pli=(boolean)true,rtcp-fb-ccm-fir=(boolean)true"},
      {"vp9", "VP9", true, "video/x-vp9", "vp9enc", nullptr, "rtpvp9pay", "rtpvp9depay", 90000,
       "rtcp-fb-nack-pli=(boolean)true,rtcp-fb-ccm-fir=(boolean)true"},
      // H.264 as browsers decode it: constrained baseline, level 3.1, the SPS x264 writes
      // (42c01f: x264 never sets constraint_set2, which 42e01f has; both are constrained
      // baseline to libwebrtc). rtph264pay puts the SPS's value in its caps, and webrtcbin
      // refuses caps whose profile-level-id differs from the transceiver's.
      {"h264", "H264", true, "video/x-h264", "x264enc", "h264parse", "rtph264pay", "rtph264depay",
       90000,
       "rtcp-fb-nack-pli=(boolean)true,rtcp-fb-ccm-fir=(boolean)true,"
       "packetization-mode=(string)1,profile-level-id=(string)42c01f",
       "video/x-h264,profile=(string)constrained-baseline,level=(string)3.1"},
      {"opus", "OPUS", false, "audio/x-opus", "opusenc", nullptr, "rtpopuspay", "rtpopusdepay",
       48000, "encoding-params=(string)2"},
  };
  return table;
}

const Codec *by_name(std::string_view name)
{
  for (auto &c : all())
    if (iequal(c.name, name)) return &c;
  return nullptr;
}

const Codec *by_encoded(std::string_view caps_name)
{
  for (auto &c : all())
    if (caps_name == c.encoded) return &c;
  return nullptr;
}

const Codec *by_encoding(std::string_view encoding)
{
  for (auto &c : all())
    if (iequal(c.encoding, encoding)) return &c;
  return nullptr;
}

std::string rtp_caps(const Codec &c, unsigned pt)
{
  std::string s = std::string("application/x-rtp,media=") + (c.video ? "video" : "audio") +
      ",encoding-name=" + c.encoding + ",payload=" + std::to_string(pt) +
      ",clock-rate=" + std::to_string(c.clock_rate);
  if (*c.rtp_extra) s += std::string(",") + c.rtp_extra;
  return s;
}

} // namespace pointcast::codecs
