// SPDX-License-Identifier: LGPL-2.1-or-later
/* balldetect's per-frame cost next to cv::HoughCircles on the same frames, in the same run.
 * Frames: I420 (what vp8dec/avdec_h264 deliver), a ball on a coloured background with the frame
 * mark, mild noise; 640x480 and 1920x1080. One core (OpenCV threads off). */
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "balldetector.h"
#include "ballmodel.h"
#include "ballrender.h"

using namespace pointcast::ball;
using Clock = std::chrono::steady_clock;

/* CPU time of this thread in ms: on a shared machine wall time also counts other processes. */
static double cpu_ms()
{
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

namespace {

struct I420 {
  int w, h;
  std::vector<uint8_t> y, u, v;
  ImageView view;
  I420(int w_, int h_) : w(w_), h(h_), y(w_ * h_), u((w_ / 2) * (h_ / 2)), v((w_ / 2) * (h_ / 2))
  {
    view.layout = PixelLayout::I420;
    view.width = w;
    view.height = h;
    view.data[0] = y.data();
    view.data[1] = u.data();
    view.data[2] = v.data();
    view.stride[0] = w;
    view.stride[1] = view.stride[2] = w / 2;
  }
};

struct Figures {
  double ms_per_frame = 0, wall_ms = 0, mean_err = 0;
  int found = 0;
};

void run_size(int w, int h, double radius, int frames)
{
  const Rgb bg{40, 60, 90}, ball{240, 200, 40};
  const auto layout = mark::layout_for_width(w);
  Motion motion(MotionParams{radius, 400, 33, 5}, Field::whole_frame(w, h, layout.band_height + 4));
  std::mt19937 gen(7);
  std::normal_distribution<double> noise(0.0, 2.0);
  std::vector<I420> imgs;
  std::vector<cv::Mat> grays;
  std::vector<Point> truth;
  for (int i = 0; i < frames; i++) {
    imgs.emplace_back(w, h);
  }
  for (int i = 0; i < frames; i++) {
    I420 &f = imgs[i];
    fill(f.view, bg);
    draw_mark(f.view, layout, i);
    const Point p = motion.at_frame(i * 7, 30, 1);
    draw_ball(f.view, p.x, p.y, radius, ball, 1.0, bg, nullptr);
    for (auto &b : f.y) b = static_cast<uint8_t>(std::clamp(std::lround(b + noise(gen)), 0L, 255L));
    truth.push_back(p);
    grays.push_back(cv::Mat(h, w, CV_8U, f.y.data()));
  }

  Figures ours, hough;
  Detector det(DetectorParams{4, 400});
  // Warm up, then time: best of three passes over all frames (the machine is shared).
  for (int i = 0; i < std::min(frames, 5); i++) det.detect(imgs[i].view);
  double best = 1e9;
  for (int pass = 0; pass < 3; pass++) {
    const auto t0 = Clock::now();
    const double c0 = cpu_ms();
    int found = 0;
    double err = 0;
    for (int i = 0; i < frames; i++) {
      auto r = det.detect(imgs[i].view);
      if (r.balls.size() == 1) {
        found++;
        err += std::hypot(r.balls[0].x - truth[i].x, r.balls[0].y - truth[i].y);
      }
    }
    const double ms = (cpu_ms() - c0) / frames;
    const double wall =
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / frames;
    if (ms < best) {
      best = ms;
      ours = Figures{ms, wall, found ? err / found : -1, found};
    }
  }

  best = 1e9;
  const int hough_frames = std::min(frames, 20);
  for (int pass = 0; pass < 2; pass++) {
    const auto t0 = Clock::now();
    const double c0 = cpu_ms();
    int found = 0;
    double err = 0;
    for (int i = 0; i < hough_frames; i++) {
      std::vector<cv::Vec3f> circles;
      cv::HoughCircles(grays[i], circles, cv::HOUGH_GRADIENT, 1, h / 4.0, 100, 20,
                       static_cast<int>(radius * 0.7), static_cast<int>(radius * 1.3));
      if (!circles.empty()) {
        found++;
        err += std::hypot(circles[0][0] - truth[i].x, circles[0][1] - truth[i].y);
      }
    }
    const double ms = (cpu_ms() - c0) / hough_frames;
    const double wall =
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / hough_frames;
    if (ms < best) {
      best = ms;
      hough = Figures{ms, wall, found ? err / found : -1, found};
    }
  }
  printf("%dx%d r=%.0f: balldetect %.3f ms/frame CPU (%.3f wall; found %d/%d, mean error %.3f px); "
         "cv::HoughCircles %.3f ms/frame CPU (%.3f wall; found %d/%d, mean error %.3f px); "
         "balldetect/Hough = %.3f\n",
         w, h, radius, ours.ms_per_frame, ours.wall_ms, ours.found, frames, ours.mean_err,
         hough.ms_per_frame, hough.wall_ms, hough.found, hough_frames, hough.mean_err,
         ours.ms_per_frame / hough.ms_per_frame);
  printf("  target: <= %s ms CPU per frame on one core: %s\n", w <= 640 ? "1" : "4",
         ours.ms_per_frame <= (w <= 640 ? 1.0 : 4.0) ? "met" : "NOT met");
}

} // namespace

int main()
{
  cv::setNumThreads(1);
  run_size(640, 480, 20, 200);
  run_size(1920, 1080, 40, 100);
  return 0;
}
