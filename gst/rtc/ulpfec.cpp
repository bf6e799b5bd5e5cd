// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/ulpfec.h"

#include <algorithm>
#include <cmath>

namespace pointcast::ulpfec {

namespace {
constexpr size_t kRtpHeader = 12;
constexpr size_t kFecHeader = 10;       // E L P X CC M PT, SN base, TS recovery, length recovery
constexpr int kWindow = 256;            // media seqnums kept
constexpr size_t kMaxFec = 64;          // FEC packets waiting for their protected packets
constexpr int64_t kWindowUs = 500'000;  // loss measured per half second
constexpr int64_t kPriorUs = 3'000'000; // protected as for kPriorLoss until then
constexpr double kPriorLoss = 0.01;

uint16_t rd16(const uint8_t *p)
{
  return uint16_t(p[0] << 8 | p[1]);
}

uint32_t rd32(const uint8_t *p)
{
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

int16_t seq_diff(uint16_t a, uint16_t b) // a - b, wrapping
{
  return int16_t(uint16_t(a - b));
}

// The RTP payload of a packet (after CSRCs and the header extension), or false.
bool payload_of(const uint8_t *d, size_t n, size_t &off, size_t &len)
{
  if (n < kRtpHeader || (d[0] >> 6) != 2) return false;
  off = kRtpHeader + 4 * size_t(d[0] & 0x0f);
  if (d[0] & 0x10) {
    if (n < off + 4) return false;
    off += 4 + 4 * size_t(rd16(d + off + 2));
  }
  if (off > n) return false;
  len = n - off;
  if (d[0] & 0x20) { // padding
    if (!len || d[n - 1] > len) return false;
    len -= d[n - 1];
  }
  return true;
}
} // namespace

void Recovery::store(uint16_t seq, const uint8_t *data, size_t size)
{
  if (!any_ || seq_diff(seq, newest_) > 0) newest_ = seq;
  any_ = true;
  media_[seq] = Packet(data, data + size);
  // Forget what fell out of the window (the map is ordered by raw seqnum, so check each).
  for (auto it = media_.begin(); it != media_.end();)
    it = seq_diff(newest_, it->first) >= kWindow ? media_.erase(it) : std::next(it);
}

std::vector<Packet> Recovery::media(const uint8_t *data, size_t size, std::vector<Packet> *fills)
{
  if (size < kRtpHeader || (data[0] >> 6) != 2) return {};
  uint16_t seq = rd16(data + 2);
  if (media_.count(seq)) return {};
  store(seq, data, size);
  note_frame(media_[seq]);
  auto out = resolve();
  if (fills && vp8_start(media_[seq])) fill_lost_fec(seq, *fills);
  if (fills && (data[1] & 0x80)) {
    for (uint16_t b = uint16_t(seq + 2); b != uint16_t(seq + 9); b++) {
      auto it = media_.find(b);
      if (it != media_.end() && vp8_start(it->second)) {
        fill_between(seq, b, *fills);
        break;
      }
    }
    for (auto &f : seen_)
      if (seq_diff(f.base, seq) > 0 && seq_diff(f.base, seq) <= 8 && frame_start(f)) {
        fill_between(seq, f.base, *fills);
        break;
      }
    // The frame's first FEC packet came before its last media packet: its base is known now.
    for (auto &f : seen_)
      if (f.seq == uint16_t(seq + 1) && frame_start(f)) {
        fill_lost_fec(f.base, *fills);
        break;
      }
  }
  return out;
}

/* Whether F's SN base is the first packet of its frame. rtpulpfecenc (multipacket) sends a
 * frame's k FEC packets right after its last packet, the i-th protecting the i-th of k slices
 * of the frame (at most its last 48 packets): only the first one's base starts the frame. It is
 * that one when it protects the packets up to the one right before it (k = 1), or when the
 * packet right before it is the frame's last (marker) packet. */
bool Recovery::frame_start(const Seen &f) const
{
  if (f.seq == uint16_t(f.last + 1) && seq_diff(f.last, f.base) < 47) return true;
  auto m = media_.find(uint16_t(f.seq - 1));
  return m != media_.end() && (m->second[1] & 0x80) && seq_diff(f.last, f.base) < 47;
}

// The VP8 payload descriptor's PictureID (RFC 7741 4.2), + 0x10000 when 15 bits; -1: none.
int Recovery::vp8_picture_id(const Packet &p) const
{
  size_t off = 0, len = 0;
  if (!vp8_ || !payload_of(p.data(), p.size(), off, len) || len < 3) return -1;
  const uint8_t *d = p.data() + off;
  if (!(d[0] & 0x80) || !(d[1] & 0x80)) return -1;           // X, then I
  if (!(d[2] & 0x80)) return d[2];                           // 7 bits
  return len < 4 ? -1 : 0x10000 | (d[2] & 0x7f) << 8 | d[3]; // M: 15 bits
}

bool Recovery::vp8_start(const Packet &p) const
{
  size_t off = 0, len = 0;
  if (!vp8_ || !payload_of(p.data(), p.size(), off, len) || !len) return false;
  return (p[off] & 0x10) && !(p[off] & 0x07); // S, PID 0
}

// The frame rate in RTP time, from the timestamps of consecutive frames' last packets.
void Recovery::note_frame(const Packet &p)
{
  if (!(p[1] & 0x80)) return; // marker: the frame's last packet
  uint32_t ts = rd32(p.data() + 4);
  if (have_frame_ && ts != last_frame_ts_ && int32_t(ts - last_frame_ts_) > 0) {
    intervals_.push_back(ts - last_frame_ts_);
    if (intervals_.size() > 9) intervals_.pop_front();
  }
  if (!have_frame_ || int32_t(ts - last_frame_ts_) > 0) last_frame_ts_ = ts;
  have_frame_ = true;
}

/* The jitterbuffer hands packets on in seqnum order, and FEC packets share the media's
 * seqnums: a lost FEC packet held the next frame back until its retransmission (68 ms at 50 ms
 * RTT), though nothing needs it. rtpulpfecenc sends a frame's FEC packets right after the
 * frame's last (marker) packet and protects exactly one frame's packets, so a received FEC
 * packet's base is the first packet of its frame. Seqnums missing between the previous frame's
 * marker packet (or an FEC packet after it) and that base were FEC packets, unless a whole frame
 * sent without FEC fell in between: only taken as FEC when the two frames are one frame
 * interval apart. */
void Recovery::fill_lost_fec(uint16_t base, std::vector<Packet> &fills)
{
  uint16_t s = uint16_t(base - 1);
  for (int i = 0; i < 8; i++, s--)
    if (media_.count(s)) {
      fill_between(s, base, fills);
      return;
    }
}

/* MARKER: a frame's last media packet; BASE: the first of a later frame. Every seqnum between
 * them is an FEC packet of MARKER's frame when the frames are one interval apart (and none of
 * them is a media packet we have). */
void Recovery::fill_between(uint16_t marker, uint16_t base, std::vector<Packet> &fills)
{
  auto m = media_.find(marker), b = media_.find(base);
  if (m == media_.end() || b == media_.end()) return;
  const Packet &prev = m->second;
  if (!(prev[1] & 0x80)) return;
  // VP8 picture IDs say whether a frame lies in between (an encoder's skipped frame does not).
  int pm = vp8_picture_id(prev), pb = vp8_picture_id(b->second);
  if (pm >= 0 && pb >= 0) {
    int mod = pm & 0x10000 ? 0x8000 : 0x80;
    if ((pm & 0x10000) != (pb & 0x10000) || ((pm & 0xffff) + 1) % mod != (pb & 0xffff)) return;
  } else {
    if (intervals_.size() < 3) return;
    std::vector<uint32_t> sorted(intervals_.begin(), intervals_.end());
    std::sort(sorted.begin(), sorted.end());
    uint32_t interval = sorted[sorted.size() / 2];
    uint32_t gap = rd32(b->second.data() + 4) - rd32(prev.data() + 4);
    if (gap > interval + interval / 2) return;
  }
  std::vector<uint16_t> missing;
  for (uint16_t x = uint16_t(marker + 1); x != base; x++) {
    if (media_.count(x)) return;
    if (std::find(fec_seen_.begin(), fec_seen_.end(), x) == fec_seen_.end()) missing.push_back(x);
  }
  for (uint16_t x : missing) {
    Packet f(12, 0);
    f[0] = 0x80;
    f[1] = fec_pt_ & 0x7f;
    f[2] = uint8_t(x >> 8);
    f[3] = uint8_t(x);
    for (int k = 0; k < 4; k++) f[4 + k] = prev[4 + k]; // the frame it protected
    for (int k = 0; k < 4; k++) f[8 + k] = uint8_t(ssrc_ >> (24 - 8 * k));
    fec_seen_.push_back(x);
    fills.push_back(std::move(f));
    filled_++;
  }
}

bool Recovery::looks_like_fec(const uint8_t *data, size_t size)
{
  size_t off = 0, len = 0;
  if (!payload_of(data, size, off, len) || len < kFecHeader + 4) return false;
  const uint8_t *p = data + off;
  if (p[0] & 0x80) return false;
  size_t headers = kFecHeader + ((p[0] & 0x40) ? 8 : 4);
  if (len < headers || headers + rd16(p + kFecHeader) != len) return false;
  if (!rd16(p + kFecHeader + 2)) return false; // the mask's first 16 bits hold its first packet
  int16_t behind = seq_diff(rd16(data + 2), rd16(p + 2));
  return behind > 0 && behind <= 96;
}

std::vector<Packet> Recovery::fec(const uint8_t *data, size_t size, std::vector<Packet> *fills)
{
  size_t off = 0, len = 0;
  if (!payload_of(data, size, off, len) || len < kFecHeader + 4) return {};
  const uint8_t *p = data + off;
  if (p[0] & 0x80) return {}; // E: an extension of RFC 5109 we do not know
  bool long_mask = p[0] & 0x40;
  Fec f;
  f.headers = kFecHeader + (long_mask ? 8 : 4);
  if (len < f.headers) return {};
  uint16_t protection = rd16(p + kFecHeader);
  if (f.headers + protection != len) return {};
  f.base = rd16(p + 2);
  uint64_t mask = uint64_t(rd16(p + kFecHeader + 2)) << 32;
  if (long_mask) mask |= rd32(p + kFecHeader + 4);
  for (int d = 0; d < 48; d++)
    if (mask & (uint64_t(1) << (47 - d))) f.protects.push_back(uint16_t(f.base + d));
  if (f.protects.empty()) return {};
  f.body.assign(p, p + len);
  f.ssrc = rd32(data + 8);
  fec_in_++;
  uint16_t base = f.base;
  fec_pt_ = data[1] & 0x7f;
  ssrc_ = f.ssrc;
  fec_seen_.push_back(rd16(data + 2));
  while (fec_seen_.size() > 64) fec_seen_.pop_front();
  Seen seen{rd16(data + 2), base, f.protects.back()};
  seen_.push_back(seen);
  while (seen_.size() > 32) seen_.pop_front();
  fecs_.push_back(std::move(f));
  if (fecs_.size() > kMaxFec) fecs_.pop_front();
  auto out = resolve(); // first: the frame's first packet may be the one rebuilt
  if (fills && frame_start(seen)) fill_lost_fec(base, *fills);
  return out;
}

/* Every waiting FEC packet that now misses exactly one of its packets rebuilds it; a rebuilt
 * packet may complete another FEC packet's set, so until nothing changes. */
std::vector<Packet> Recovery::resolve()
{
  std::vector<Packet> out;
  for (bool again = true; again;) {
    again = false;
    for (auto it = fecs_.begin(); it != fecs_.end();) {
      int missing = 0;
      uint16_t which = 0;
      bool stale = any_ && seq_diff(newest_, it->base) >= kWindow - 48;
      for (uint16_t s : it->protects)
        if (!media_.count(s)) {
          missing++;
          which = s;
        }
      if (missing == 1 && !stale) {
        Packet p;
        if (rebuild(*it, which, p)) {
          store(which, p.data(), p.size());
          out.push_back(std::move(p));
          recovered_++;
          again = true;
        }
        it = fecs_.erase(it);
      } else if (missing == 0 || stale) {
        it = fecs_.erase(it);
      } else {
        ++it;
      }
    }
  }
  return out;
}

/* RFC 5109 section 8.2: the missing packet is the XOR of the FEC packet with every other packet
 * it protects: of each packet its first 8 header bytes (then V, P, X, CC, M, PT and the
 * timestamp are right; the sequence number is the missing one's), its length after the fixed
 * header, and the bytes after the fixed header (CSRCs, extension, payload, padding). */
bool Recovery::rebuild(const Fec &f, uint16_t missing, Packet &out) const
{
  Packet acc = f.body;
  for (uint16_t s : f.protects) {
    if (s == missing) continue;
    const Packet &m = media_.at(s);
    size_t rest = m.size() - kRtpHeader;
    if (acc.size() < f.headers + rest) acc.resize(f.headers + rest, 0);
    for (size_t i = 0; i < 8; i++) acc[i] ^= m[i];
    acc[8] ^= uint8_t(rest >> 8);
    acc[9] ^= uint8_t(rest);
    for (size_t i = 0; i < rest; i++) acc[f.headers + i] ^= m[kRtpHeader + i];
  }
  size_t len = rd16(acc.data() + 8);
  if (len > acc.size() - f.headers) return false;
  out.assign(kRtpHeader + len, 0);
  std::copy(acc.begin(), acc.begin() + 8, out.begin());
  out[0] = uint8_t(0x80 | (out[0] & 0x3f)); // version 2; P, X, CC recovered
  out[2] = uint8_t(missing >> 8);
  out[3] = uint8_t(missing);
  for (int i = 0; i < 4; i++) out[8 + i] = uint8_t(f.ssrc >> (24 - 8 * i));
  std::copy(acc.begin() + long(f.headers), acc.begin() + long(f.headers + len),
            out.begin() + kRtpHeader);
  // A rebuilt packet must parse as RTP (a wrong XOR set gives garbage: drop it, not the stream).
  size_t off = 0, plen = 0;
  return payload_of(out.data(), out.size(), off, plen);
}

unsigned percentage_for_loss(double loss, double packets_per_frame)
{
  if (!(loss >= 0.004)) return 0;
  double k = std::max(1.0, packets_per_frame);
  // FEC packets per frame: the frame's expected losses three times over, at least one.
  double per_frame = std::max(1.0, std::ceil(k * loss * 3.0));
  // +1: rtpulpfecenc adds percentage/100 per packet and sends the whole part at the frame's
  // end; exactly 100/k can fall short of 1.0 by a rounding error and skip a frame.
  return unsigned(std::min(100.0, std::ceil(100.0 * per_frame / k) + 1.0));
}

void LossMeter::close_window(int64_t now_us)
{
  unsigned n = got_ + lost_;
  if (n >= 10) {
    double w = double(lost_) / n;
    loss_ = measured_ ? 0.6 * loss_ + 0.4 * w : w;
    measured_ = true;
  }
  got_ = lost_ = 0;
  window_start_ = now_us;
  unsigned p = percentage_for_loss(loss_, frame_packets_);
  if (now_us - start_ < kPriorUs) { // before the loss is known (see the header)
    held_ = std::max(p, percentage_for_loss(kPriorLoss, frame_packets_));
    held_since_ = now_us;
    return;
  }
  // Up at once; down only after 5 s without a higher need.
  if (p >= held_) {
    held_ = p;
    held_since_ = now_us;
  } else if (now_us - held_since_ >= 5'000'000) {
    held_ = p;
    held_since_ = now_us;
  }
}

void LossMeter::add(int64_t now_us, unsigned received, unsigned lost)
{
  if (start_ < 0) {
    start_ = window_start_ = held_since_ = now_us;
    held_ = percentage_for_loss(kPriorLoss, frame_packets_); // see the header
  }
  got_ += received;
  lost_ += lost;
  // A loss closes the window early once it holds enough packets: protection starts a
  // feedback interval after the first loss, not up to half a second later.
  if (now_us - window_start_ >= kWindowUs || (lost && got_ + lost_ >= 10)) close_window(now_us);
}

} // namespace pointcast::ulpfec
