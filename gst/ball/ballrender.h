// SPDX-License-Identifier: LGPL-2.1-or-later
/* Drawing the ball, its background and the frame mark into raw video memory (plain C++). */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ballmodel.h"

namespace pointcast::ball {

enum class PixelLayout {
  Packed, // RGB family: 3 or 4 bytes per pixel, channel offsets below
  I420,   // Y, U, V planes (YV12 is I420 with the chroma planes swapped by the caller)
  NV12,   // Y plane, interleaved UV plane
  Gray,   // one luma plane
};

struct Rgb {
  double r = 0, g = 0, b = 0; // 0..255
};

Rgb rgb_from_argb(uint32_t argb);

/* A frame in memory. For YUV layouts kr/kb and full_range describe the colour matrix. */
struct ImageView {
  PixelLayout layout = PixelLayout::Packed;
  int width = 0;
  int height = 0;
  uint8_t *data[3] = {nullptr, nullptr, nullptr};
  int stride[3] = {0, 0, 0};
  int pstride = 3;
  int off_r = 0, off_g = 1, off_b = 2, off_a = -1;
  double kr = 0.299, kb = 0.114;
  bool full_range = false;
};

struct Yuv {
  double y, u, v;
};
Yuv to_yuv(const ImageView &view, const Rgb &c);
/* Luma 0..255 as the mark decoder sees it (full range for RGB, the Y byte for YUV). */
double luma_of(const ImageView &view, const Rgb &c);

/* A premultiplied RGBA sprite, row-major, 4 floats per pixel. */
struct Sprite {
  int width = 0;
  int height = 0;
  std::vector<float> premul; // r*a, g*a, b*a, a with r,g,b in 0..255 and a in 0..1
  static Sprite from_rgba(const uint8_t *rgba, int width, int height, int stride);
  bool empty() const { return width <= 0 || height <= 0; }
};

void fill(ImageView &view, const Rgb &c);
/* Integer rectangle [x0, x1) x [y0, y1), clipped to the frame. */
void fill_rect(ImageView &view, int x0, int y0, int x1, int y1, const Rgb &c);
/* The mark band for this frame number (no-op if the layout does not fit the frame). */
void draw_mark(ImageView &view, const mark::Layout &layout, uint64_t frame);
/* An anti-aliased disc (or the sprite scaled to diameter 2r) centred on (cx, cy) over a
 * uniform background bg. alpha scales the ball's opacity. Only the ball's bounding box is
 * written. */
void draw_ball(ImageView &view, double cx, double cy, double radius, const Rgb &ball, double alpha,
               const Rgb &bg, const Sprite *sprite);

/* Mean luma of the central 8x8 pixels of each mark cell, row-major. */
std::vector<double> mark_cell_luma(const ImageView &view, const mark::Layout &layout);

} // namespace pointcast::ball
