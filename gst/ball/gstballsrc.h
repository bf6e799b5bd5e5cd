// SPDX-License-Identifier: LGPL-2.1-or-later
/* ballsrc: live video of a bouncing ball (see gstballsrc.cpp). */
#pragma once

#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_BALL_SRC (gst_ball_src_get_type())
G_DECLARE_FINAL_TYPE(GstBallSrc, gst_ball_src, GST, BALL_SRC, GstPushSrc)

GST_ELEMENT_REGISTER_DECLARE(ballsrc);

G_END_DECLS
