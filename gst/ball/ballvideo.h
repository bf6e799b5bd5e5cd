// SPDX-License-Identifier: LGPL-2.1-or-later
/* Mapping a GstVideoFrame to the renderer's and detector's ImageView. */
#pragma once

#include <gst/video/video.h>

#include "ballrender.h"

namespace pointcast::ball {

/* Fills v from a mapped frame; false for a format neither renderer nor detector handles. */
bool view_for_frame(GstVideoFrame *frame, ImageView &v);

} // namespace pointcast::ball
