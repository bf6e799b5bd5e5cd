/* pointcast: NumPy points and video over WebRTC, as GStreamer elements. */
#include <gst/gst.h>

#ifdef PC_HAVE_POINTS
#include "points/gstnpypack.h"
#include "points/gstnpyunpack.h"
#include "points/gstpointsink.h"
#include "points/gstpointsrc.h"
#endif
#ifdef PC_HAVE_BALL
#include "ball/gstballscore.h"
#include "ball/gstballsrc.h"
#ifdef PC_HAVE_OPENCV
#include "ball/gstballdetect.h"
#endif
#endif
#ifdef PC_HAVE_RTC
#include "rtc/gstrtcpeer.h"
#endif

static gboolean
plugin_init(GstPlugin *plugin)
{
  gboolean ok = FALSE;
#ifdef PC_HAVE_POINTS
  ok |= GST_ELEMENT_REGISTER(pointsrc, plugin);
  ok |= GST_ELEMENT_REGISTER(npypack, plugin);
  ok |= GST_ELEMENT_REGISTER(npyunpack, plugin);
  ok |= GST_ELEMENT_REGISTER(pointsink, plugin);
#endif
#ifdef PC_HAVE_BALL
  ok |= GST_ELEMENT_REGISTER(ballsrc, plugin);
  ok |= GST_ELEMENT_REGISTER(ballscore, plugin);
#ifdef PC_HAVE_OPENCV
  ok |= GST_ELEMENT_REGISTER(balldetect, plugin);
#endif
#endif
#ifdef PC_HAVE_RTC
  ok |= GST_ELEMENT_REGISTER(rtcpeer, plugin);
#endif
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, pointcast,
    "NumPy points and video over WebRTC", plugin_init, VERSION, "LGPL",
    "pointcast", "https://github.com/pointcast/pointcast")
