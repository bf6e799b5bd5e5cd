// SPDX-License-Identifier: LGPL-2.1-or-later
/* pointcast: NumPy points and video over WebRTC, as GStreamer elements. */
#include <gst/gst.h>

#include "ball/gstballdetect.h"
#include "ball/gstballscore.h"
#include "ball/gstballsrc.h"
#include "points/gstnpypack.h"
#include "points/gstnpyunpack.h"
#include "points/gstpointsink.h"
#include "points/gstpointsrc.h"
#include "rtc/gstrtcpeer.h"

static gboolean plugin_init(GstPlugin *plugin)
{
  gboolean ok = FALSE;
  ok |= GST_ELEMENT_REGISTER(pointsrc, plugin);
  ok |= GST_ELEMENT_REGISTER(npypack, plugin);
  ok |= GST_ELEMENT_REGISTER(npyunpack, plugin);
  ok |= GST_ELEMENT_REGISTER(pointsink, plugin);
  ok |= GST_ELEMENT_REGISTER(ballsrc, plugin);
  ok |= GST_ELEMENT_REGISTER(ballscore, plugin);
  ok |= GST_ELEMENT_REGISTER(balldetect, plugin);
  ok |= GST_ELEMENT_REGISTER(rtcpeer, plugin);
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, pointcast,
                  "NumPy points and video over WebRTC", plugin_init, VERSION, "LGPL", "pointcast",
                  "https://github.com/pointcast/pointcast")
