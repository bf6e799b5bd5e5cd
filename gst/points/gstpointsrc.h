// SPDX-License-Identifier: LGPL-2.1-or-later
/* pointsrc: live source of application/x-points, columns=3. */
#pragma once

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_POINT_SRC (gst_point_src_get_type())
G_DECLARE_FINAL_TYPE(GstPointSrc, gst_point_src, GST, POINT_SRC, GstPushSrc)

#define GST_TYPE_POINT_SRC_PATTERN (gst_point_src_pattern_get_type())
GType gst_point_src_pattern_get_type(void);

typedef enum {
  GST_POINT_SRC_PATTERN_RANDOM,
  GST_POINT_SRC_PATTERN_SPHERE,
  GST_POINT_SRC_PATTERN_COUNTER,
} GstPointSrcPattern;

GST_ELEMENT_REGISTER_DECLARE(pointsrc);

G_END_DECLS
