// SPDX-License-Identifier: LGPL-2.1-or-later
/* The buffers a buffer or buffer-list pad probe sees, one at a time: the loop that every data
 * probe on an RTP path needs (rtpbin pushes lists as well as single buffers), reading them or
 * dropping some. */
#pragma once

#include <gst/gst.h>

#include <type_traits>

namespace pointcast::rtc {

/* Calls FN(GstBuffer *) for each buffer of INFO, in order. FN may return bool: false stops the
 * walk. Returns false if FN stopped it. */
template <typename Fn>
bool for_each_buffer(GstPadProbeInfo *info, Fn &&fn)
{
  auto one = [&](GstBuffer *buf) {
    if (!buf) return true;
    if constexpr (std::is_same_v<std::invoke_result_t<Fn &, GstBuffer *>, bool>)
      return fn(buf);
    else {
      fn(buf);
      return true;
    }
  };
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) return one(GST_PAD_PROBE_INFO_BUFFER(info));
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    for (guint i = 0; list && i < gst_buffer_list_length(list); i++)
      if (!one(gst_buffer_list_get(list, i))) return false;
  }
  return true;
}

/* Lets through the buffers of INFO for which FN(GstBuffer **) is true; FN may replace the buffer
 * it is given (e.g. by gst_buffer_make_writable) and owns the pointer it leaves. A single buffer
 * is dropped, a list made writable and thinned (dropped when nothing is left). The probe's
 * return. */
template <typename Fn>
GstPadProbeReturn map_buffers(GstPadProbeInfo *info, Fn &&fn)
{
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    if (!buf) return GST_PAD_PROBE_OK;
    bool keep = fn(&buf);
    GST_PAD_PROBE_INFO_DATA(info) = buf;
    return keep ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
  }
  if (!(info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) || !GST_PAD_PROBE_INFO_BUFFER_LIST(info))
    return GST_PAD_PROBE_OK;
  GstBufferList *list = gst_buffer_list_make_writable(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
  GST_PAD_PROBE_INFO_DATA(info) = list;
  for (guint i = 0; i < gst_buffer_list_length(list);) {
    GstBuffer *was = gst_buffer_list_get(list, i);
    GstBuffer *buf = gst_buffer_ref(was);
    if (!fn(&buf)) {
      gst_buffer_unref(buf);
      gst_buffer_list_remove(list, i, 1);
      continue;
    }
    if (buf == was)
      gst_buffer_unref(buf);
    else {
      gst_buffer_list_remove(list, i, 1);
      gst_buffer_list_insert(list, gint(i), buf);
    }
    i++;
  }
  return gst_buffer_list_length(list) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

/* map_buffers for a KEEP(GstBuffer *) that only decides. */
template <typename Keep>
GstPadProbeReturn keep_buffers(GstPadProbeInfo *info, Keep &&keep)
{
  return map_buffers(info, [&](GstBuffer **buf) { return bool(keep(*buf)); });
}

/* Set while a probe chains a packet it made (not received) into the pad it watches: taps that
 * count what arrives skip it. */
inline thread_local bool made_here = false;
inline GstFlowReturn chain_made(GstPad *sink, GstBuffer *buf)
{
  bool was = made_here;
  made_here = true;
  GstFlowReturn ret = gst_pad_chain(sink, buf);
  made_here = was;
  return ret;
}

} // namespace pointcast::rtc
