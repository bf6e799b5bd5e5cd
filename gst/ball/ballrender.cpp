// SPDX-License-Identifier: LGPL-2.1-or-later
#include "ballrender.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace pointcast::ball {

Rgb rgb_from_argb(uint32_t argb)
{
  return Rgb{static_cast<double>((argb >> 16) & 0xff), static_cast<double>((argb >> 8) & 0xff),
             static_cast<double>(argb & 0xff)};
}

Yuv to_yuv(const ImageView &v, const Rgb &c)
{
  const double y = v.kr * c.r + (1.0 - v.kr - v.kb) * c.g + v.kb * c.b;
  const double cb = (c.b - y) / (2.0 * (1.0 - v.kb));
  const double cr = (c.r - y) / (2.0 * (1.0 - v.kr));
  if (v.full_range) return {y, 128.0 + cb, 128.0 + cr};
  return {16.0 + y * 219.0 / 255.0, 128.0 + cb * 224.0 / 255.0, 128.0 + cr * 224.0 / 255.0};
}

double luma_of(const ImageView &v, const Rgb &c)
{
  if (v.layout == PixelLayout::Packed) return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
  return to_yuv(v, c).y;
}

static inline uint8_t clamp_byte(double x)
{
  return static_cast<uint8_t>(std::clamp(std::lround(x), 0L, 255L));
}

Sprite Sprite::from_rgba(const uint8_t *rgba, int width, int height, int stride)
{
  Sprite s;
  s.width = width;
  s.height = height;
  s.premul.resize(static_cast<size_t>(width) * height * 4);
  for (int y = 0; y < height; y++) {
    const uint8_t *row = rgba + static_cast<size_t>(y) * stride;
    for (int x = 0; x < width; x++) {
      const float a = row[4 * x + 3] / 255.0f;
      float *o = &s.premul[(static_cast<size_t>(y) * width + x) * 4];
      o[0] = row[4 * x] * a;
      o[1] = row[4 * x + 1] * a;
      o[2] = row[4 * x + 2] * a;
      o[3] = a;
    }
  }
  return s;
}

/* Writes one pixel of a packed or gray frame. */
static inline void put_packed(ImageView &v, int x, int y, const Rgb &c)
{
  if (v.layout == PixelLayout::Gray) {
    v.data[0][static_cast<size_t>(y) * v.stride[0] + x] = clamp_byte(luma_of(v, c));
    return;
  }
  uint8_t *p =
      v.data[0] + static_cast<size_t>(y) * v.stride[0] + static_cast<size_t>(x) * v.pstride;
  p[v.off_r] = clamp_byte(c.r);
  p[v.off_g] = clamp_byte(c.g);
  p[v.off_b] = clamp_byte(c.b);
  if (v.off_a >= 0) p[v.off_a] = 255;
}

static inline void put_luma(ImageView &v, int x, int y, double luma)
{
  v.data[0][static_cast<size_t>(y) * v.stride[0] + x] = clamp_byte(luma);
}

static inline void put_chroma(ImageView &v, int cx, int cy, double u, double w)
{
  if (v.layout == PixelLayout::I420) {
    v.data[1][static_cast<size_t>(cy) * v.stride[1] + cx] = clamp_byte(u);
    v.data[2][static_cast<size_t>(cy) * v.stride[2] + cx] = clamp_byte(w);
  } else {
    uint8_t *p = v.data[1] + static_cast<size_t>(cy) * v.stride[1] + 2 * cx;
    p[0] = clamp_byte(u);
    p[1] = clamp_byte(w);
  }
}

static bool is_yuv(const ImageView &v)
{
  return v.layout == PixelLayout::I420 || v.layout == PixelLayout::NV12;
}

/* Calls shade(x, y) -> Rgb for every pixel of [x0, x1) x [y0, y1) (clipped) and stores it; for
 * subsampled YUV the chroma of each 2x2 block is the mean of its pixels' colours. */
template <typename Shade>
static void paint(ImageView &v, int x0, int y0, int x1, int y1, Shade &&shade)
{
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, v.width);
  y1 = std::min(y1, v.height);
  if (x0 >= x1 || y0 >= y1) return;
  if (!is_yuv(v)) {
    for (int y = y0; y < y1; y++)
      for (int x = x0; x < x1; x++) put_packed(v, x, y, shade(x, y));
    return;
  }
  // Whole 2x2 chroma blocks, so a block half inside the rectangle gets its full mean.
  const int bx0 = x0 & ~1, by0 = y0 & ~1;
  for (int by = by0; by < y1; by += 2) {
    for (int bx = bx0; bx < x1; bx += 2) {
      Rgb sum;
      int n = 0;
      for (int dy = 0; dy < 2; dy++) {
        for (int dx = 0; dx < 2; dx++) {
          const int x = bx + dx, y = by + dy;
          if (x >= v.width || y >= v.height) continue;
          const Rgb c = shade(x, y);
          if (x >= x0 && x < x1 && y >= y0 && y < y1) put_luma(v, x, y, to_yuv(v, c).y);
          sum.r += c.r;
          sum.g += c.g;
          sum.b += c.b;
          n++;
        }
      }
      const Yuv m = to_yuv(v, Rgb{sum.r / n, sum.g / n, sum.b / n});
      put_chroma(v, bx / 2, by / 2, m.u, m.v);
    }
  }
}

/* One colour over [x0, x1) x [y0, y1) of a YUV frame, as paint() would store it but with the
 * bytes computed once: rows of luma, and chroma for every 2x2 block the rectangle touches (a
 * constant colour's block mean is that colour). Rendering a frame was dominated by per-pixel
 * colour conversion before. */
static void fill_yuv_rect(ImageView &v, int x0, int y0, int x1, int y1, const Rgb &c)
{
  const Yuv yuv = to_yuv(v, c);
  const uint8_t luma = clamp_byte(yuv.y), u = clamp_byte(yuv.u), w = clamp_byte(yuv.v);
  for (int y = y0; y < y1; y++)
    std::memset(v.data[0] + static_cast<size_t>(y) * v.stride[0] + x0, luma, x1 - x0);
  const int cx0 = x0 / 2, cx1 = (x1 + 1) / 2, cy0 = y0 / 2, cy1 = (y1 + 1) / 2;
  for (int cy = cy0; cy < cy1; cy++) {
    if (v.layout == PixelLayout::I420) {
      std::memset(v.data[1] + static_cast<size_t>(cy) * v.stride[1] + cx0, u, cx1 - cx0);
      std::memset(v.data[2] + static_cast<size_t>(cy) * v.stride[2] + cx0, w, cx1 - cx0);
    } else {
      uint8_t *p = v.data[1] + static_cast<size_t>(cy) * v.stride[1] + 2 * cx0;
      for (int cx = cx0; cx < cx1; cx++, p += 2) {
        p[0] = u;
        p[1] = w;
      }
    }
  }
}

void fill(ImageView &v, const Rgb &c)
{
  if (is_yuv(v)) {
    fill_yuv_rect(v, 0, 0, v.width, v.height, c);
    return;
  }
  if (v.layout == PixelLayout::Gray) {
    const uint8_t luma = clamp_byte(luma_of(v, c));
    for (int y = 0; y < v.height; y++)
      std::memset(v.data[0] + static_cast<size_t>(y) * v.stride[0], luma, v.width);
    return;
  }
  // One row by pixel, the others copied from it.
  for (int x = 0; x < v.width; x++) put_packed(v, x, 0, c);
  const size_t row_bytes = static_cast<size_t>(v.width) * v.pstride;
  for (int y = 1; y < v.height; y++)
    std::memcpy(v.data[0] + static_cast<size_t>(y) * v.stride[0], v.data[0], row_bytes);
}

void fill_rect(ImageView &v, int x0, int y0, int x1, int y1, const Rgb &c)
{
  if (is_yuv(v)) {
    x0 = std::max(x0, 0);
    y0 = std::max(y0, 0);
    x1 = std::min(x1, v.width);
    y1 = std::min(y1, v.height);
    if (x0 < x1 && y0 < y1) fill_yuv_rect(v, x0, y0, x1, y1, c);
    return;
  }
  paint(v, x0, y0, x1, y1, [&](int, int) { return c; });
}

void draw_mark(ImageView &v, const mark::Layout &l, uint64_t frame)
{
  if (!l.valid() || l.band_height > v.height) return;
  const uint64_t word = mark::encode_word(frame);
  const Rgb black{0, 0, 0}, white{255, 255, 255};
  for (int row = 0; row < l.rows; row++) {
    for (int col = 0; col < l.cells_per_row; col++) {
      const int k = row * l.cells_per_row + col;
      fill_rect(v, col * mark::kCell, row * mark::kCell, (col + 1) * mark::kCell,
                (row + 1) * mark::kCell, mark::cell_value(l, word, k) ? white : black);
    }
    // Columns right of the last whole cell stay black.
    fill_rect(v, l.cells_per_row * mark::kCell, row * mark::kCell, v.width, (row + 1) * mark::kCell,
              black);
  }
}

/* Bilinear sample of a premultiplied sprite at sprite-pixel coordinates (centre of pixel i at
 * i); transparent outside. */
static inline void sample_sprite(const Sprite &s, double u, double w, float out[4])
{
  const double fu = std::floor(u), fw = std::floor(w);
  const int iu = static_cast<int>(fu), iw = static_cast<int>(fw);
  const double au = u - fu, aw = w - fw;
  out[0] = out[1] = out[2] = out[3] = 0.0f;
  for (int dy = 0; dy < 2; dy++) {
    const int y = iw + dy;
    if (y < 0 || y >= s.height) continue;
    const double wy = dy ? aw : 1.0 - aw;
    for (int dx = 0; dx < 2; dx++) {
      const int x = iu + dx;
      if (x < 0 || x >= s.width) continue;
      const double wt = wy * (dx ? au : 1.0 - au);
      const float *p = &s.premul[(static_cast<size_t>(y) * s.width + x) * 4];
      for (int c = 0; c < 4; c++) out[c] += static_cast<float>(wt * p[c]);
    }
  }
}

void draw_ball(ImageView &v, double cx, double cy, double r, const Rgb &ball, double alpha,
               const Rgb &bg, const Sprite *sprite)
{
  if (r <= 0.0) return;
  const int x0 = static_cast<int>(std::floor(cx - r - 1.0));
  const int y0 = static_cast<int>(std::floor(cy - r - 1.0));
  const int x1 = static_cast<int>(std::ceil(cx + r + 2.0));
  const int y1 = static_cast<int>(std::ceil(cy + r + 2.0));
  alpha = std::clamp(alpha, 0.0, 1.0);
  if (sprite && !sprite->empty()) {
    // The sprite's larger side spans the diameter; 4x4 samples per pixel keep a downscaled
    // sprite smooth and its centre exact.
    const double scale = std::max(sprite->width, sprite->height) / (2.0 * r);
    const double su = sprite->width / 2.0 - 0.5, sw = sprite->height / 2.0 - 0.5;
    paint(v, x0, y0, x1, y1, [&](int x, int y) {
      float acc[4] = {0, 0, 0, 0};
      for (int j = 0; j < 4; j++) {
        for (int i = 0; i < 4; i++) {
          const double px = x - 0.375 + 0.25 * i, py = y - 0.375 + 0.25 * j;
          float s[4];
          sample_sprite(*sprite, su + (px - cx) * scale, sw + (py - cy) * scale, s);
          for (int c = 0; c < 4; c++) acc[c] += s[c];
        }
      }
      const double a = acc[3] / 16.0 * alpha;
      return Rgb{bg.r * (1.0 - a) + acc[0] / 16.0 * alpha, bg.g * (1.0 - a) + acc[1] / 16.0 * alpha,
                 bg.b * (1.0 - a) + acc[2] / 16.0 * alpha};
    });
    return;
  }
  paint(v, x0, y0, x1, y1, [&](int x, int y) {
    // Coverage falls linearly over the one pixel straddling the rim: radially symmetric, so
    // the intensity centroid is exactly (cx, cy) and the 50% level lies exactly on the rim.
    const double d = std::hypot(x - cx, y - cy);
    const double a = std::clamp(r + 0.5 - d, 0.0, 1.0) * alpha;
    return Rgb{bg.r + (ball.r - bg.r) * a, bg.g + (ball.g - bg.g) * a, bg.b + (ball.b - bg.b) * a};
  });
}

std::vector<double> mark_cell_luma(const ImageView &v, const mark::Layout &l)
{
  std::vector<double> out;
  if (!l.valid() || l.band_height > v.height || l.cells_per_row * mark::kCell > v.width) return out;
  out.reserve(static_cast<size_t>(l.rows) * l.cells_per_row);
  for (int row = 0; row < l.rows; row++) {
    for (int col = 0; col < l.cells_per_row; col++) {
      const int x0 = col * mark::kCell + 4, y0 = row * mark::kCell + 4;
      double sum = 0;
      for (int y = y0; y < y0 + 8; y++) {
        const uint8_t *line = v.data[0] + static_cast<size_t>(y) * v.stride[0];
        for (int x = x0; x < x0 + 8; x++) {
          if (v.layout == PixelLayout::Packed) {
            const uint8_t *p = line + static_cast<size_t>(x) * v.pstride;
            sum += 0.299 * p[v.off_r] + 0.587 * p[v.off_g] + 0.114 * p[v.off_b];
          } else {
            sum += line[x];
          }
        }
      }
      out.push_back(sum / 64.0);
    }
  }
  return out;
}

} // namespace pointcast::ball
