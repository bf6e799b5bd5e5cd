// SPDX-License-Identifier: LGPL-2.1-or-later
/* ballscore: scores detections against ballsrc's true positions (see gstballscore.cpp). */
#pragma once

#include <gst/base/gstbasesink.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_BALL_SCORE (gst_ball_score_get_type())
G_DECLARE_FINAL_TYPE(GstBallScore, gst_ball_score, GST, BALL_SCORE, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE(ballscore);

G_END_DECLS
