// SPDX-License-Identifier: LGPL-2.1-or-later
/* Ball motion model and frame-mark codec: plain C++, no GObject, shared by ballsrc, balldetect,
 * ballscore, the tests and the benchmark.
 *
 * Coordinates: pixel (i, j) is the unit square centred on (i, j), so a W x H frame spans
 * [-0.5, W - 0.5] x [-0.5, H - 0.5]. This is the convention of OpenCV moments and NumPy indices,
 * so a tracker in any language gets the same numbers without an offset. */
#pragma once

#include <array>
#include <cstdint>
#include <optional>

namespace pointcast::ball {

/* splitmix64: tiny, well-mixed, identical on every platform (unlike std:: distributions). */
uint64_t splitmix64(uint64_t &state);
/* A double in [0, 1) from the next 53 bits of the generator. */
double unit_double(uint64_t &state);

struct MotionParams {
  double radius = 20.0;    // px
  double speed = 200.0;    // px/s
  double angle_deg = 30.0; // 0 = right, 90 = up (screen y grows downwards)
  uint64_t seed = 0;
};

struct Point {
  double x = 0.0;
  double y = 0.0;
};

/* Where the ball's centre may go: a rectangle of the frame in pixel-edge coordinates
 * (top-left corner -0.5, -0.5 for the whole frame). */
struct Field {
  double left = -0.5;
  double top = -0.5;
  double right = 639.5;
  double bottom = 479.5;
  static Field whole_frame(int width, int height, double top_reserved = 0.0);
};

/* A ball moving in a straight line at constant speed and bouncing elastically off the field's
 * walls. The position is analytic (a triangle wave per axis), so any frame can be computed
 * directly without stepping through the ones before it and without accumulating error. */
class Motion {
public:
  Motion(const MotionParams &params, const Field &field);

  Point start() const { return start_; }
  Point velocity() const { return {vx_, vy_}; }
  Point at_time(double seconds) const;
  /* Frame n at fps_n/fps_d frames per second is shown at t = n * fps_d / fps_n. */
  Point at_frame(uint64_t frame, int fps_n, int fps_d) const;

private:
  static double reflect(double lo, double hi, double start, double v, double t);
  double lo_x_, hi_x_, lo_y_, hi_y_;
  Point start_;
  double vx_, vy_;
};

/* Frame mark: the frame number as black/white 16x16 cells in a band at the top of the frame.
 * See README "Ball tracking" for the exact layout. */
namespace mark {

constexpr int kCell = 16;     // px; equal to the macroblock size of VP8 and H.264
constexpr int kDataBits = 24; // frame number modulo 2^24 (exact in float32)
constexpr int kCrcBits = 16;  // CRC-16/CCITT-FALSE of the three frame-number bytes
constexpr int kWordBits = kDataBits + kCrcBits;
constexpr int kMinCopies = 2; // the band holds at least two copies of the word
constexpr uint32_t kFrameModulo = 1u << kDataBits;

struct Layout {
  int cells_per_row = 0;
  int rows = 0;
  int copies = 0;
  int band_height = 0; // px from the top of the frame
  bool valid() const { return copies > 0; }
};

/* The layout depends only on the frame width. */
Layout layout_for_width(int width);

uint16_t crc16(const uint8_t *data, size_t len);
/* The 40-bit word for a frame number: bit 39 (first cell) is the frame number's MSB. */
uint64_t encode_word(uint64_t frame);
/* The frame number if the word's CRC matches. */
std::optional<uint32_t> decode_word(uint64_t word);

/* Cell k (row-major over the band) carries bit (39 - k % 40) of the word for k < copies * 40;
 * cells after the last copy are black. Returns true for a white cell. */
bool cell_value(const Layout &layout, uint64_t word, int cell_index);

/* Decoder over per-cell luma means (0..255, row-major, layout.rows * cells_per_row values),
 * each the mean of the cell's central 8x8 pixels. */
struct DecodeResult {
  std::optional<uint32_t> frame;
  int valid_copies = 0;
};
DecodeResult decode_cells(const Layout &layout, const double *cell_luma);

} // namespace mark

} // namespace pointcast::ball
