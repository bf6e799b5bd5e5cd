// SPDX-License-Identifier: LGPL-2.1-or-later
#include "ballvideo.h"

#include <utility>

namespace pointcast::ball {

/* Describes a mapped frame for the renderer. */
bool view_for_frame(GstVideoFrame *frame, ImageView &v)
{
  const GstVideoInfo *info = &frame->info;
  const GstVideoFormatInfo *f = info->finfo;
  v.width = GST_VIDEO_INFO_WIDTH(info);
  v.height = GST_VIDEO_INFO_HEIGHT(info);
  gdouble kr = 0.299, kb = 0.114;
  if (gst_video_color_matrix_get_Kr_Kb(info->colorimetry.matrix, &kr, &kb)) {
    v.kr = kr;
    v.kb = kb;
  }
  v.full_range = info->colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255;
  for (guint i = 0; i < GST_VIDEO_FRAME_N_PLANES(frame) && i < 3; i++) {
    v.data[i] = static_cast<uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(frame, i));
    v.stride[i] = GST_VIDEO_FRAME_PLANE_STRIDE(frame, i);
  }
  switch (GST_VIDEO_INFO_FORMAT(info)) {
  case GST_VIDEO_FORMAT_I420: v.layout = PixelLayout::I420; return true;
  case GST_VIDEO_FORMAT_YV12:
    v.layout = PixelLayout::I420;
    std::swap(v.data[1], v.data[2]);
    std::swap(v.stride[1], v.stride[2]);
    return true;
  case GST_VIDEO_FORMAT_NV12: v.layout = PixelLayout::NV12; return true;
  case GST_VIDEO_FORMAT_GRAY8: v.layout = PixelLayout::Gray; return true;
  default: break;
  }
  if (!GST_VIDEO_FORMAT_INFO_IS_RGB(f) || GST_VIDEO_FORMAT_INFO_N_PLANES(f) != 1 ||
      GST_VIDEO_FORMAT_INFO_BITS(f) != 8)
    return false;
  v.layout = PixelLayout::Packed;
  v.pstride = GST_VIDEO_FORMAT_INFO_PSTRIDE(f, 0);
  v.off_r = GST_VIDEO_FORMAT_INFO_POFFSET(f, 0);
  v.off_g = GST_VIDEO_FORMAT_INFO_POFFSET(f, 1);
  v.off_b = GST_VIDEO_FORMAT_INFO_POFFSET(f, 2);
  v.off_a = -1;
  if (v.pstride == 4) {
    // Alpha or padding: written as 255 so that equal properties give equal bytes.
    v.off_a = 6 - v.off_r - v.off_g - v.off_b;
  }
  return true;
}

} // namespace pointcast::ball
