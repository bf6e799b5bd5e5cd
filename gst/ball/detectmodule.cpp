// SPDX-License-Identifier: LGPL-2.1-or-later
/* The OpenCV module's entry point (built into libpcballdetect.so.0, see detectmodule.h). */
#include "detectmodule.h"

extern "C" __attribute__((visibility("default"))) void
pointcast_ball_detect(pointcast::ball::Detector *detector, const pointcast::ball::ImageView *view,
                      pointcast::ball::Detector::Result *out)
{
  *out = detector->detect(*view);
}
