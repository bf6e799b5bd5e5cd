// SPDX-License-Identifier: LGPL-2.1-or-later
/* balldetect: raw video in, [frame, x, y] points out (see gstballdetect.cpp). */
#pragma once

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_BALL_DETECT (gst_ball_detect_get_type())
G_DECLARE_FINAL_TYPE(GstBallDetect, gst_ball_detect, GST, BALL_DETECT, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE(balldetect);

G_END_DECLS
