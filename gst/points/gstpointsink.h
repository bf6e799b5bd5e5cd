// SPDX-License-Identifier: LGPL-2.1-or-later
/* pointsink: logs and counts application/x-points buffers. */
#pragma once

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_POINT_SINK (gst_point_sink_get_type())
G_DECLARE_FINAL_TYPE(GstPointSink, gst_point_sink, GST, POINT_SINK, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE(pointsink);

G_END_DECLS
