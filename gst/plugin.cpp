/* pointcast: NumPy points and video over WebRTC, as GStreamer elements. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>


static gboolean
plugin_init(GstPlugin *plugin)
{
  gboolean ok = FALSE;
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, pointcast,
    "NumPy points and video over WebRTC", plugin_init, VERSION, "LGPL",
    "pointcast", "https://github.com/pointcast/pointcast")
