// SPDX-License-Identifier: LGPL-2.1-or-later
/* Ball detection on raw frames (plain C++ with OpenCV, no GObject): balldetect's core, also
 * used directly by the tests and the benchmark. */
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ballrender.h"

namespace pointcast::ball {

struct Detection {
  double x = 0.0;
  double y = 0.0;
  double radius = 0.0;
  bool clipped = false; // touched the frame's edge: centre from a circle fit of the visible rim
};

struct DetectorParams {
  double min_radius = 4.0;
  double max_radius = 400.0;
};

/* Finds discs that differ from a uniform background. Coarse pass: every s-th pixel
 * (s ~ min-radius), the background as the per-channel median, blobs of pixels far from it.
 * Fine pass, in each blob's region at full resolution: every pixel's fraction of ball colour
 * (projection of its colour onto the background-to-ball colour line), then the weighted
 * centroid, or for a ball cut by the frame edge a least-squares circle through the 50% rim. */
class Detector {
public:
  explicit Detector(const DetectorParams &params = {}) : params_(params) {}

  struct Result {
    std::optional<uint32_t> mark; // frame number read from the frame mark
    std::vector<Detection> balls;
  };
  Result detect(const ImageView &view);
  /* Forget that a mark band was seen (new stream). */
  void reset() { mark_seen_ = false; }
  void set_params(const DetectorParams &p) { params_ = p; }

  struct CompStats {
    int area = 0, left = 0, top = 0, right = 0, bottom = 0; // box corners inclusive
  };
  /* 8-connected components of the coarse grid's samples above `thr` (gw x gh, row stride
   * `stride`): labels() (row-major, 0 = background, 1.. in raster order of their first sample)
   * and components() (index = label). Returns the number of labels including the background.
   * detect()'s coarse pass; public for the tests. */
  int label_components(const uint8_t *diff, size_t stride, int gw, int gh, int thr);
  const std::vector<int> &labels() const { return labels_; }
  const std::vector<CompStats> &components() const { return comps_; }

private:
  DetectorParams params_;
  bool mark_seen_ = false;
  std::vector<float> alpha_;
  std::vector<int> labels_, parent_;
  std::vector<CompStats> comps_;
};

/* Circle through points (algebraic fit refined by Gauss-Newton on the geometric distance). */
struct Circle {
  double x = 0, y = 0, r = 0;
};
std::optional<Circle> fit_circle(const std::vector<double> &xs, const std::vector<double> &ys);

} // namespace pointcast::ball
