// SPDX-License-Identifier: LGPL-2.1-or-later
#include "ballmodel.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace pointcast::ball {

uint64_t splitmix64(uint64_t &state)
{
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double unit_double(uint64_t &state)
{
  return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
}

Field Field::whole_frame(int width, int height, double top_reserved)
{
  return Field{-0.5, -0.5 + top_reserved, width - 0.5, height - 0.5};
}

Motion::Motion(const MotionParams &p, const Field &f)
{
  const double r = std::max(0.0, p.radius);
  lo_x_ = f.left + r;
  hi_x_ = f.right - r;
  lo_y_ = f.top + r;
  hi_y_ = f.bottom - r;
  // A ball wider than the field cannot move along that axis: it stays centred.
  if (hi_x_ < lo_x_) lo_x_ = hi_x_ = 0.5 * (f.left + f.right);
  if (hi_y_ < lo_y_) lo_y_ = hi_y_ = 0.5 * (f.top + f.bottom);
  uint64_t state = p.seed;
  const double ux = unit_double(state);
  const double uy = unit_double(state);
  start_ = {lo_x_ + ux * (hi_x_ - lo_x_), lo_y_ + uy * (hi_y_ - lo_y_)};
  const double a = p.angle_deg * M_PI / 180.0;
  vx_ = p.speed * std::cos(a);
  vy_ = -p.speed * std::sin(a);
}

double Motion::reflect(double lo, double hi, double start, double v, double t)
{
  const double len = hi - lo;
  if (len <= 0.0) return lo;
  // Unfold the bounces: position along an infinite line, folded back into [lo, hi] with a
  // period of 2 * len.
  double u = std::fmod(start - lo + v * t, 2.0 * len);
  if (u < 0.0) u += 2.0 * len;
  return lo + (u <= len ? u : 2.0 * len - u);
}

Point Motion::at_time(double t) const
{
  return {reflect(lo_x_, hi_x_, start_.x, vx_, t), reflect(lo_y_, hi_y_, start_.y, vy_, t)};
}

Point Motion::at_frame(uint64_t frame, int fps_n, int fps_d) const
{
  if (fps_n <= 0 || fps_d <= 0) return start_;
  return at_time(static_cast<double>(frame) * fps_d / fps_n);
}

namespace mark {

Layout layout_for_width(int width)
{
  Layout l;
  l.cells_per_row = width / kCell;
  if (l.cells_per_row <= 0) return l;
  const int need = kMinCopies * kWordBits;
  l.rows = (need + l.cells_per_row - 1) / l.cells_per_row;
  l.copies = l.rows * l.cells_per_row / kWordBits;
  l.band_height = l.rows * kCell;
  return l;
}

uint16_t crc16(const uint8_t *data, size_t len)
{
  uint16_t crc = 0xffff;
  for (size_t i = 0; i < len; i++) {
    crc ^= static_cast<uint16_t>(data[i]) << 8;
    for (int b = 0; b < 8; b++)
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
  }
  return crc;
}

static uint16_t crc_of_frame(uint32_t f)
{
  const uint8_t bytes[3] = {static_cast<uint8_t>(f >> 16), static_cast<uint8_t>(f >> 8),
                            static_cast<uint8_t>(f)};
  return crc16(bytes, 3);
}

uint64_t encode_word(uint64_t frame)
{
  const uint32_t f = static_cast<uint32_t>(frame % kFrameModulo);
  return (static_cast<uint64_t>(f) << kCrcBits) | crc_of_frame(f);
}

std::optional<uint32_t> decode_word(uint64_t word)
{
  const uint32_t f = static_cast<uint32_t>((word >> kCrcBits) & (kFrameModulo - 1));
  if ((word & 0xffff) != crc_of_frame(f)) return std::nullopt;
  return f;
}

bool cell_value(const Layout &l, uint64_t word, int k)
{
  if (k < 0 || k >= l.copies * kWordBits) return false;
  return (word >> (kWordBits - 1 - k % kWordBits)) & 1;
}

DecodeResult decode_cells(const Layout &l, const double *luma)
{
  DecodeResult res;
  if (!l.valid()) return res;
  // A copy counts only when every one of its cells is clearly black or white: a band that
  // is merely grey (no mark, or a frame wrecked by the codec) never yields a number.
  constexpr double kLow = 100.0, kHigh = 156.0;
  std::map<uint32_t, int> votes;
  std::array<double, kWordBits> soft{};
  for (int c = 0; c < l.copies; c++) {
    uint64_t word = 0;
    bool clear = true;
    for (int b = 0; b < kWordBits; b++) {
      const double v = luma[c * kWordBits + b];
      soft[b] += v - 128.0;
      clear = clear && (v < kLow || v > kHigh);
      word = (word << 1) | (v > 128.0 ? 1u : 0u);
    }
    if (!clear) continue;
    if (auto f = decode_word(word)) {
      votes[*f]++;
      res.valid_copies++;
    }
  }
  if (votes.size() == 1) {
    res.frame = votes.begin()->first;
    return res;
  }
  if (votes.size() > 1) {
    // Copies disagree, each with a valid CRC: take a strict majority or nothing.
    auto best = std::max_element(votes.begin(), votes.end(),
                                 [](const auto &a, const auto &b) { return a.second < b.second; });
    if (best->second * 2 > res.valid_copies) res.frame = best->first;
    return res;
  }
  if (l.copies < 2) return res;
  // No copy clean on its own: sum the copies' soft values; every summed bit must be clear.
  uint64_t word = 0;
  for (int b = 0; b < kWordBits; b++) {
    if (std::fabs(soft[b]) < 20.0 * l.copies) return res;
    word = (word << 1) | (soft[b] > 0 ? 1u : 0u);
  }
  res.frame = decode_word(word);
  return res;
}

} // namespace mark

} // namespace pointcast::ball
