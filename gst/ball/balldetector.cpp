// SPDX-License-Identifier: LGPL-2.1-or-later
#include "balldetector.h"

#include <algorithm>
#include <array>
#include <cmath>

#include <opencv2/imgproc.hpp>

namespace pointcast::ball {

namespace {

/* Three channel values of one pixel: R, G, B for packed frames, Y, U, V for YUV, Y for gray. */
inline void read_px(const ImageView &v, int x, int y, int out[3])
{
  switch (v.layout) {
  case PixelLayout::Packed: {
    const uint8_t *p =
        v.data[0] + static_cast<size_t>(y) * v.stride[0] + static_cast<size_t>(x) * v.pstride;
    out[0] = p[v.off_r];
    out[1] = p[v.off_g];
    out[2] = p[v.off_b];
    return;
  }
  case PixelLayout::I420:
    out[0] = v.data[0][static_cast<size_t>(y) * v.stride[0] + x];
    out[1] = v.data[1][static_cast<size_t>(y / 2) * v.stride[1] + x / 2];
    out[2] = v.data[2][static_cast<size_t>(y / 2) * v.stride[2] + x / 2];
    return;
  case PixelLayout::NV12: {
    out[0] = v.data[0][static_cast<size_t>(y) * v.stride[0] + x];
    const uint8_t *c = v.data[1] + static_cast<size_t>(y / 2) * v.stride[1] + 2 * (x / 2);
    out[1] = c[0];
    out[2] = c[1];
    return;
  }
  case PixelLayout::Gray:
    out[0] = v.data[0][static_cast<size_t>(y) * v.stride[0] + x];
    out[1] = out[2] = 128;
    return;
  }
}

int median_of_hist(const std::array<int, 256> &h, int n)
{
  int acc = 0;
  for (int i = 0; i < 256; i++) {
    acc += h[i];
    if (2 * acc >= n) return i;
  }
  return 255;
}

// Fraction of the ball colour mapped to weight 0, and the range of the one mapped to 1
// (see detect()).
constexpr double kAlphaLow = 0.1;
constexpr double kAlphaHighShaded = 0.3;
constexpr double kAlphaHighPlain = 0.9;

} // namespace

std::optional<Circle> fit_circle(const std::vector<double> &xs, const std::vector<double> &ys)
{
  const size_t n = xs.size();
  if (n < 6) return std::nullopt;
  // Kasa: x^2 + y^2 + D x + E y + F = 0, least squares, centred on the mean for conditioning.
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; i++) {
    mx += xs[i];
    my += ys[i];
  }
  mx /= n;
  my /= n;
  cv::Mat A(static_cast<int>(n), 3, CV_64F), b(static_cast<int>(n), 1, CV_64F);
  for (size_t i = 0; i < n; i++) {
    const double u = xs[i] - mx, w = ys[i] - my;
    A.at<double>(static_cast<int>(i), 0) = u;
    A.at<double>(static_cast<int>(i), 1) = w;
    A.at<double>(static_cast<int>(i), 2) = 1.0;
    b.at<double>(static_cast<int>(i), 0) = -(u * u + w * w);
  }
  cv::Mat sol;
  if (!cv::solve(A, b, sol, cv::DECOMP_SVD)) return std::nullopt;
  Circle c;
  c.x = -sol.at<double>(0) / 2.0;
  c.y = -sol.at<double>(1) / 2.0;
  const double rr = c.x * c.x + c.y * c.y - sol.at<double>(2);
  if (!(rr > 0)) return std::nullopt;
  c.r = std::sqrt(rr);
  // Gauss-Newton on sum (|p - c| - r)^2: the algebraic fit is biased on short arcs.
  for (int it = 0; it < 8; it++) {
    cv::Matx33d JtJ = cv::Matx33d::zeros();
    cv::Vec3d Jtr(0, 0, 0);
    for (size_t i = 0; i < n; i++) {
      const double dx = xs[i] - mx - c.x, dy = ys[i] - my - c.y;
      const double d = std::hypot(dx, dy);
      if (d < 1e-9) continue;
      const cv::Vec3d J(-dx / d, -dy / d, -1.0);
      const double res = d - c.r;
      JtJ += J * J.t();
      Jtr += J * res;
    }
    cv::Vec3d step;
    if (!cv::solve(cv::Mat(JtJ), cv::Mat(-Jtr), cv::Mat(step), cv::DECOMP_CHOLESKY)) break;
    c.x += step[0];
    c.y += step[1];
    c.r += step[2];
    if (std::fabs(step[0]) + std::fabs(step[1]) + std::fabs(step[2]) < 1e-6) break;
  }
  c.x += mx;
  c.y += my;
  if (!(c.r > 0) || !std::isfinite(c.x) || !std::isfinite(c.y)) return std::nullopt;
  return c;
}

// Two passes with union-find: the grid is small (160x120 at 640x480), and OpenCV's
// connectedComponentsWithStats ran it through its thread pool (TBB), whose hand-offs and
// spinning cost more than the labelling itself.
int Detector::label_components(const uint8_t *diff, size_t stride, int gw, int gh, int thr)
{
  labels_.assign(static_cast<size_t>(gw) * gh, 0);
  parent_.assign(1, 0);
  auto find = [&](int a) {
    while (parent_[a] != a) a = parent_[a] = parent_[parent_[a]];
    return a;
  };
  auto unite = [&](int a, int b) {
    a = find(a);
    b = find(b);
    if (a != b) parent_[std::max(a, b)] = std::min(a, b);
  };
  for (int j = 0; j < gh; j++) {
    const uint8_t *d = diff + static_cast<size_t>(j) * stride;
    int *row = &labels_[static_cast<size_t>(j) * gw];
    const int *up = j > 0 ? row - gw : nullptr;
    for (int i = 0; i < gw; i++) {
      if (d[i] <= thr) continue;
      int l = 0;
      // Neighbours already visited: left, up-left, up, up-right.
      const int nb[4] = {i > 0 ? row[i - 1] : 0, up && i > 0 ? up[i - 1] : 0, up ? up[i] : 0,
                         up && i + 1 < gw ? up[i + 1] : 0};
      for (int k : nb) {
        if (!k) continue;
        if (!l)
          l = k;
        else
          unite(l, k);
      }
      if (!l) {
        l = static_cast<int>(parent_.size());
        parent_.push_back(l);
      }
      row[i] = l;
    }
  }
  // Final labels in raster order of each component's first sample; stats in the same pass.
  std::vector<int> &final_of = parent_; // reused: provisional root -> final label, after find
  const size_t nprov = parent_.size();
  std::vector<int> root(nprov);
  for (size_t k = 0; k < nprov; k++) root[k] = find(static_cast<int>(k));
  std::fill(final_of.begin(), final_of.end(), 0);
  comps_.assign(1, CompStats{});
  for (int j = 0; j < gh; j++) {
    int *row = &labels_[static_cast<size_t>(j) * gw];
    for (int i = 0; i < gw; i++) {
      if (!row[i]) continue;
      const int r = root[row[i]];
      if (!final_of[r]) {
        final_of[r] = static_cast<int>(comps_.size());
        comps_.push_back(CompStats{0, i, j, i, j});
      }
      const int l = final_of[r];
      row[i] = l;
      CompStats &c = comps_[l];
      c.area++;
      c.left = std::min(c.left, i);
      c.right = std::max(c.right, i);
      c.bottom = j;
    }
  }
  return static_cast<int>(comps_.size());
}

Detector::Result Detector::detect(const ImageView &v)
{
  Result res;
  const int W = v.width, H = v.height;
  if (W <= 0 || H <= 0) return res;

  // Frame mark first: once a stream has shown a mark, its band is never searched for balls.
  const mark::Layout layout = mark::layout_for_width(W);
  if (layout.valid() && layout.band_height + 2 < H) {
    const std::vector<double> cells = mark_cell_luma(v, layout);
    if (!cells.empty()) {
      res.mark = mark::decode_cells(layout, cells.data()).frame;
      if (res.mark) mark_seen_ = true;
    }
  }
  const int top = mark_seen_ ? std::min(H, layout.band_height + 2) : 0;
  if (top >= H) return res;

  // Coarse pass.
  const int s = std::clamp(static_cast<int>(params_.min_radius), 2, 8);
  const int gw = (W - 1 - s / 2) / s + 1;
  const int gh = (H - top - 1 - s / 2) / s + 1;
  if (gw <= 0 || gh <= 0) return res;
  cv::Mat samples(gh, gw, CV_8UC3);
  std::array<std::array<int, 256>, 3> hist{};
  for (int j = 0; j < gh; j++) {
    const int y = top + s / 2 + j * s;
    uint8_t *row = samples.ptr<uint8_t>(j);
    if (v.layout == PixelLayout::I420) {
      // The common case (decoder output) without a per-pixel switch.
      const uint8_t *ly = v.data[0] + static_cast<size_t>(y) * v.stride[0];
      const uint8_t *lu = v.data[1] + static_cast<size_t>(y / 2) * v.stride[1];
      const uint8_t *lv = v.data[2] + static_cast<size_t>(y / 2) * v.stride[2];
      for (int i = 0, x = s / 2; i < gw; i++, x += s) {
        row[3 * i] = ly[x];
        row[3 * i + 1] = lu[x / 2];
        row[3 * i + 2] = lv[x / 2];
      }
    } else {
      for (int i = 0; i < gw; i++) {
        int px[3] = {0, 0, 0};
        read_px(v, s / 2 + i * s, y, px);
        for (int c = 0; c < 3; c++) row[3 * i + c] = static_cast<uint8_t>(px[c]);
      }
    }
    for (int i = 0; i < gw; i++)
      for (int c = 0; c < 3; c++) hist[c][row[3 * i + c]]++;
  }
  const int n = gw * gh;
  const int bg[3] = {median_of_hist(hist[0], n), median_of_hist(hist[1], n),
                     median_of_hist(hist[2], n)};
  cv::Mat diff(gh, gw, CV_8U);
  int max_d = 0;
  for (int j = 0; j < gh; j++) {
    const uint8_t *row = samples.ptr<uint8_t>(j);
    uint8_t *d = diff.ptr<uint8_t>(j);
    for (int i = 0; i < gw; i++) {
      const int m = std::max({std::abs(row[3 * i] - bg[0]), std::abs(row[3 * i + 1] - bg[1]),
                              std::abs(row[3 * i + 2] - bg[2])});
      d[i] = static_cast<uint8_t>(m);
      max_d = std::max(max_d, m);
    }
  }
  // Noise level: the median difference from the background (the ball covers far less than
  // half of the frame). Half of the strongest contrast, kept well above the noise, separates
  // ball from background; a frame without a difference well above the noise has no ball.
  std::array<int, 256> dhist{};
  for (int j = 0; j < gh; j++) {
    const uint8_t *d = diff.ptr<uint8_t>(j);
    for (int i = 0; i < gw; i++) dhist[d[i]]++;
  }
  const int noise = median_of_hist(dhist, n);
  constexpr int kMinContrast = 32;
  const int min_contrast = std::max(kMinContrast, 4 * noise + 16);
  if (max_d < min_contrast) return res;
  const int thr = std::max({kMinContrast / 2, max_d / 2, 3 * noise + 8});
  const int ncomp = label_components(diff.ptr<uint8_t>(0), diff.step, gw, gh, thr);

  for (int comp = 1; comp < ncomp; comp++) {
    const CompStats &st = comps_[comp];
    const int area = st.area;
    const double coarse_r = std::sqrt(area * double(s) * s / M_PI);
    if (coarse_r < 0.5 * params_.min_radius || coarse_r > 1.5 * params_.max_radius + s) continue;
    const int cl = st.left, ct = st.top;
    const int cw = st.right - st.left + 1, ch = st.bottom - st.top + 1;
    auto label_at = [&](int j, int i) { return labels_[static_cast<size_t>(j) * gw + i]; };

    // Ball colour: mean of the component's samples near its strongest difference.
    int comp_max = 0;
    for (int j = ct; j < ct + ch; j++)
      for (int i = cl; i < cl + cw; i++)
        if (label_at(j, i) == comp) comp_max = std::max<int>(comp_max, diff.at<uint8_t>(j, i));
    if (comp_max < min_contrast) continue;
    double ball[3] = {0, 0, 0};
    int nb = 0;
    for (int j = ct; j < ct + ch; j++) {
      for (int i = cl; i < cl + cw; i++) {
        if (label_at(j, i) != comp || diff.at<uint8_t>(j, i) * 4 < comp_max * 3) continue;
        const uint8_t *p = samples.ptr<uint8_t>(j) + 3 * i;
        for (int c = 0; c < 3; c++) ball[c] += p[c];
        nb++;
      }
    }
    const double dir[3] = {ball[0] / nb - bg[0], ball[1] / nb - bg[1], ball[2] / nb - bg[2]};
    const double norm2 = dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2];
    if (norm2 < kMinContrast * kMinContrast / 4.0) continue;
    // How uniform is the ball? Over the blob's interior samples (all four neighbours in the
    // blob too, so no rim), the low end of the fraction of ball colour is ~1 for a plain disc
    // and lower for a shaded sprite.
    std::vector<double> fracs;
    auto in_comp = [&](int j, int i) {
      return j >= 0 && i >= 0 && j < gh && i < gw && label_at(j, i) == comp;
    };
    for (int j = ct; j < ct + ch; j++) {
      for (int i = cl; i < cl + cw; i++) {
        if (!in_comp(j, i) || !in_comp(j - 1, i) || !in_comp(j + 1, i) || !in_comp(j, i - 1) ||
            !in_comp(j, i + 1))
          continue;
        const uint8_t *q = samples.ptr<uint8_t>(j) + 3 * i;
        fracs.push_back(
            ((q[0] - bg[0]) * dir[0] + (q[1] - bg[1]) * dir[1] + (q[2] - bg[2]) * dir[2]) / norm2);
      }
    }
    double low_frac = 1.0;
    if (!fracs.empty()) {
      const size_t k = fracs.size() / 20;
      std::nth_element(fracs.begin(), fracs.begin() + k, fracs.end());
      low_frac = fracs[k];
    }
    // A plain disc keeps a wide ramp (finest sub-pixel information); a shaded one saturates
    // early so that its darker side weighs as much as its highlight.
    const double alpha_high = low_frac > 0.8 ? kAlphaHighPlain : kAlphaHighShaded;

    // Fine pass over the blob's box grown by one coarse step and the anti-aliased rim.
    const int margin = s + 3;
    const int x0 = std::max(0, cl * s + s / 2 - margin);
    const int x1 = std::min(W, (cl + cw - 1) * s + s / 2 + margin + 1);
    const int y0 = std::max(top, top + ct * s + s / 2 - margin);
    const int y1 = std::min(H, top + (ct + ch - 1) * s + s / 2 + margin + 1);
    const int rw = x1 - x0, rh = y1 - y0;
    alpha_.assign(static_cast<size_t>(rw) * rh, 0.0f);
    double sa = 0, sx = 0, sy = 0;
    int n_half = 0;
    bool touches = false;
    for (int y = y0; y < y1; y++) {
      float *arow = &alpha_[static_cast<size_t>(y - y0) * rw];
      for (int x = x0; x < x1; x++) {
        int px[3] = {0, 0, 0};
        read_px(v, x, y, px);
        const double proj =
            ((px[0] - bg[0]) * dir[0] + (px[1] - bg[1]) * dir[1] + (px[2] - bg[2]) * dir[2]) /
            norm2;
        // Dead band against coding noise, and saturation below the ball's darkest parts so that
        // a shaded ball (a sprite) weighs as a solid disc. Any monotonic map of a radially
        // symmetric picture stays symmetric, so the centroid of a disc is unaffected.
        const double a = std::clamp((proj - kAlphaLow) / (alpha_high - kAlphaLow), 0.0, 1.0);
        arow[x - x0] = static_cast<float>(a);
        sa += a;
        sx += a * x;
        sy += a * y;
        n_half += a >= 0.5;
        if (a >= 0.5 && (x == 0 || x == W - 1 || y == top || y == H - 1)) touches = true;
      }
    }
    if (sa <= 0) continue;
    Detection det{sx / sa, sy / sa, std::sqrt(sa / M_PI), false};
    // A disc is solid: its centre is ball colour and its weight sits inside its 50% rim.
    // Scattered noise fails both.
    {
      const int ix = static_cast<int>(std::lround(det.x)),
                iy = static_cast<int>(std::lround(det.y));
      if (!touches &&
          (ix < x0 || ix >= x1 || iy < y0 || iy >= y1 ||
           alpha_[static_cast<size_t>(iy - y0) * rw + (ix - x0)] < 0.5f))
        continue;
      if (!touches && std::fabs(n_half - sa) > 0.25 * sa + 4.0) continue;
    }

    if (touches) {
      // Rim points where the fraction crosses 50%, along rows and columns, only where the rim
      // is steep in the scan direction and not cut by the frame edge.
      std::vector<double> xs, ys;
      for (int y = y0; y < y1; y++) {
        const float *a = &alpha_[static_cast<size_t>(y - y0) * rw];
        for (int i = 1; i < rw; i++) {
          const float p = a[i - 1], q = a[i];
          if ((p < 0.5f) == (q < 0.5f) || std::fabs(q - p) < 0.4f) continue;
          xs.push_back(x0 + (i - 1) + (0.5 - p) / (q - p));
          ys.push_back(y);
        }
      }
      for (int x = x0; x < x1; x++) {
        for (int j = 1; j < rh; j++) {
          const float p = alpha_[static_cast<size_t>(j - 1) * rw + (x - x0)];
          const float q = alpha_[static_cast<size_t>(j) * rw + (x - x0)];
          if ((p < 0.5f) == (q < 0.5f) || std::fabs(q - p) < 0.4f) continue;
          xs.push_back(x);
          ys.push_back(y0 + (j - 1) + (0.5 - p) / (q - p));
        }
      }
      if (auto c = fit_circle(xs, ys)) {
        det = Detection{c->x, c->y, c->r, true};
      }
    }
    if (det.radius < params_.min_radius || det.radius > params_.max_radius) continue;
    res.balls.push_back(det);
  }
  return res;
}

} // namespace pointcast::ball
