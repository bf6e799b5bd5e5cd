// SPDX-License-Identifier: LGPL-2.1-or-later
/* The buffer-or-list walk of rtcpeer's RTP probes (gst/rtc/probeutil.h) on real pads: rtpbin
 * pushes buffer lists as well as single buffers, and a probe that reads or thins only one of the
 * two forms misses packets (the FEC tap, the VP8 gate). What reaches the peer pad is checked. */
#include "rtc/probeutil.h"

#include "check.h"

#include <gst/gst.h>

#include <vector>

using namespace pointcast::rtc;

namespace {
std::vector<guint64> arrived; // the offsets of the buffers that reached the sink pad
int lists_arrived = 0;

GstFlowReturn chain(GstPad *, GstObject *, GstBuffer *buf)
{
  arrived.push_back(GST_BUFFER_OFFSET(buf));
  gst_buffer_unref(buf);
  return GST_FLOW_OK;
}

GstFlowReturn chain_list(GstPad *, GstObject *, GstBufferList *list)
{
  lists_arrived++;
  for (guint i = 0; i < gst_buffer_list_length(list); i++)
    arrived.push_back(GST_BUFFER_OFFSET(gst_buffer_list_get(list, i)));
  gst_buffer_list_unref(list);
  return GST_FLOW_OK;
}

GstBuffer *numbered(guint64 n)
{
  GstBuffer *b = gst_buffer_new_allocate(nullptr, 4, nullptr);
  GST_BUFFER_OFFSET(b) = n;
  return b;
}

GstBufferList *numbered_list(std::initializer_list<guint64> ns)
{
  GstBufferList *l = gst_buffer_list_new();
  for (guint64 n : ns) gst_buffer_list_add(l, numbered(n));
  return l;
}

struct Pads {
  GstPad *src, *sink;
  Pads()
  {
    src = gst_pad_new("src", GST_PAD_SRC);
    sink = gst_pad_new("sink", GST_PAD_SINK);
    gst_pad_set_chain_function(sink, chain);
    gst_pad_set_chain_list_function(sink, chain_list);
    gst_pad_set_active(src, TRUE);
    gst_pad_set_active(sink, TRUE);
    gst_pad_push_event(src, gst_event_new_stream_start("probeutil"));
    gst_pad_link(src, sink);
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_TIME);
    gst_pad_push_event(src, gst_event_new_segment(&seg));
    arrived.clear();
    lists_arrived = 0;
  }
  ~Pads()
  {
    gst_object_unref(src);
    gst_object_unref(sink);
  }
  void probe(GstPadProbeCallback cb, gpointer data)
  {
    gst_pad_add_probe(src,
                      GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      cb, data, nullptr);
  }
};

// Odd offsets are let through.
GstPadProbeReturn keep_odd(GstPad *, GstPadProbeInfo *info, gpointer)
{
  return keep_buffers(info, [](GstBuffer *b) { return GST_BUFFER_OFFSET(b) % 2 == 1; });
}

// Multiples of 3 are dropped; even offsets are replaced by a writable copy marked DISCONT (the
// hole watch's way of flagging the packet after a given-up hole).
GstPadProbeReturn mark_even(GstPad *, GstPadProbeInfo *info, gpointer)
{
  return map_buffers(info, [](GstBuffer **b) {
    if (GST_BUFFER_OFFSET(*b) % 3 == 0) return false;
    if (GST_BUFFER_OFFSET(*b) % 2 == 0) {
      *b = gst_buffer_make_writable(*b);
      GST_BUFFER_FLAG_SET(*b, GST_BUFFER_FLAG_DISCONT);
    }
    return true;
  });
}

std::vector<guint64> disconts; // offsets that arrived flagged DISCONT

GstPadProbeReturn note_discont(GstPad *, GstPadProbeInfo *info, gpointer)
{
  for_each_buffer(info, [](GstBuffer *b) {
    if (GST_BUFFER_IS_DISCONT(b)) disconts.push_back(GST_BUFFER_OFFSET(b));
  });
  return GST_PAD_PROBE_OK;
}

struct Seen {
  std::vector<guint64> offsets;
  guint64 stop_at = G_MAXUINT64;
  bool walked_all = true;
};

GstPadProbeReturn record(GstPad *, GstPadProbeInfo *info, gpointer data)
{
  auto *s = static_cast<Seen *>(data);
  s->walked_all = for_each_buffer(info, [s](GstBuffer *b) {
    s->offsets.push_back(GST_BUFFER_OFFSET(b));
    return GST_BUFFER_OFFSET(b) != s->stop_at;
  });
  return GST_PAD_PROBE_OK;
}

void test_keep_single_and_list()
{
  Pads p;
  p.probe(keep_odd, nullptr);
  CHECK(gst_pad_push(p.src, numbered(1)) == GST_FLOW_OK);
  CHECK(gst_pad_push(p.src, numbered(2)) == GST_FLOW_OK); // dropped: still OK upstream
  CHECK(gst_pad_push_list(p.src, numbered_list({3, 4, 5, 6, 7})) == GST_FLOW_OK);
  CHECK(gst_pad_push_list(p.src, numbered_list({8, 10})) == GST_FLOW_OK); // all dropped
  CHECK((arrived == std::vector<guint64>{1, 3, 5, 7}));
  CHECK(lists_arrived == 1); // an emptied list does not reach the peer at all
}

void test_map_single_and_list()
{
  Pads p;
  disconts.clear();
  p.probe(mark_even, nullptr);
  gst_pad_add_probe(p.sink,
                    GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                    note_discont, nullptr, nullptr);
  GstBuffer *two = numbered(2);
  gst_buffer_ref(two); // held here too: the probe must copy it, not flag ours
  CHECK(gst_pad_push(p.src, two) == GST_FLOW_OK);
  CHECK(!GST_BUFFER_IS_DISCONT(two));
  gst_buffer_unref(two);
  CHECK(gst_pad_push(p.src, numbered(3)) == GST_FLOW_OK);
  CHECK(gst_pad_push_list(p.src, numbered_list({4, 5, 6, 7, 8})) == GST_FLOW_OK);
  CHECK(gst_pad_push_list(p.src, numbered_list({9})) == GST_FLOW_OK);
  CHECK((arrived == std::vector<guint64>{2, 4, 5, 7, 8}));
  CHECK((disconts == std::vector<guint64>{2, 4, 8}));
  CHECK(lists_arrived == 1);
}

void test_walk_single_and_list()
{
  Pads p;
  Seen seen;
  seen.stop_at = 12;
  p.probe(record, &seen);
  gst_pad_push(p.src, numbered(1));
  CHECK(seen.walked_all);
  gst_pad_push_list(p.src, numbered_list({10, 11, 12, 13}));
  CHECK(!seen.walked_all); // stopped at 12: 13 not shown
  CHECK((seen.offsets == std::vector<guint64>{1, 10, 11, 12}));
  CHECK((arrived == std::vector<guint64>{1, 10, 11, 12, 13})); // reading drops nothing
}
} // namespace

int main(int argc, char **argv)
{
  gst_init(&argc, &argv);
  test_keep_single_and_list();
  test_walk_single_and_list();
  test_map_single_and_list();
  if (check_failures()) std::fprintf(stderr, "%d check(s) failed\n", check_failures());
  return check_failures() ? 1 : 0;
}
