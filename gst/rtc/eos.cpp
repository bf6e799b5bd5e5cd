// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/eos.h"

#include "rtc/mediarecv.h"
#include "rtc/rtcpeerpriv.h"

#include <vector>

namespace pointcast::rtc {

// Ends every data and media src pad with the EOS the application sent, once; pads the pipeline
// links to that no peer has filled yet are made first (awaited_srcs).
void end_src_pads(GstRtcPeer *self)
{
  auto *p = self->priv;
  GstEvent *event = nullptr;
  std::vector<GstPad *> pads;
  std::vector<std::string> missing;
  std::vector<GstPad *> orphans;
  {
    std::lock_guard lk(p->lock);
    std::swap(event, p->pending_src_eos);
    if (!event) return;
    for (auto &[label, src] : p->data_srcs) pads.push_back(GST_PAD(gst_object_ref(src->pad)));
    for (auto &[id, s] : p->sessions)
      for (auto *pad : s->media_srcs) pads.push_back(GST_PAD(gst_object_ref(pad)));
    parked_media_pads(self, pads); // a lost connection's, waiting for the new one
    missing.assign(p->awaited_srcs.begin(), p->awaited_srcs.end());
    orphans.swap(p->orphaned_sinks);
  }
  for (auto *sink : orphans) {
    if (!gst_pad_is_linked(sink)) gst_pad_send_event(sink, gst_event_ref(event));
    gst_object_unref(sink);
  }
  for (auto &name : missing) {
    if (GstPad *have = gst_element_get_static_pad(GST_ELEMENT(self), name.c_str())) {
      gst_object_unref(have); // exists (and is in `pads` if it is a src pad of ours)
      continue;
    }
    GST_INFO_OBJECT(self, "%s never had data: made to carry the EOS", name.c_str());
    if (g_str_has_prefix(name.c_str(), "data_")) {
      if (DataSrc *src = ensure_data_src(self, name.substr(5)))
        pads.push_back(GST_PAD(gst_object_ref(src->pad)));
    } else if (GstPad *pad = make_ended_media_src(self, name)) {
      pads.push_back(pad);
    }
  }
  for (auto *pad : pads) {
    // What still comes from the peer after our EOS is dropped before the ended pad: its EOS flow
    // return would travel back up through webrtcbin's receive chain and pause the nicesrc, so
    // nothing more (the acknowledgements the drain waits for) would arrive from that peer.
    if (GST_IS_GHOST_PAD(pad))
      if (GstPad *target = gst_ghost_pad_get_target(GST_GHOST_PAD(pad))) {
        gst_pad_add_probe(
            target, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
            [](GstPad *, GstPadProbeInfo *, gpointer) { return GST_PAD_PROBE_DROP; }, nullptr,
            nullptr);
        gst_object_unref(target);
      }
    gst_pad_push_event(pad, gst_event_ref(event));
    gst_object_unref(pad);
  }
  gst_event_unref(event);
}

static void push_sink_pads(GstElement *e, std::vector<GstPad *> &out)
{
  GstIterator *it = gst_element_iterate_sink_pads(e);
  GValue v = G_VALUE_INIT;
  bool done = false;
  while (!done) {
    switch (gst_iterator_next(it, &v)) {
    case GST_ITERATOR_OK:
      out.push_back(GST_PAD(g_value_dup_object(&v)));
      g_value_reset(&v);
      break;
    case GST_ITERATOR_RESYNC: gst_iterator_resync(it); break;
    default: done = true;
    }
  }
  g_value_unset(&v);
  gst_iterator_free(it);
}

/* Names of our sink pads whose data comes from our own src pads (ball-tracker: video_0 src ->
 * balldetect -> data_detections sink). Those end only after our src pads do, so the EOS of the
 * src pads must not wait for them (it waited kSrcEosWaitMs). Walks the pipeline upstream. */
std::set<std::string> sinks_fed_by_self(GstRtcPeer *self)
{
  std::set<std::string> fed;
  std::vector<GstPad *> ours;
  push_sink_pads(GST_ELEMENT(self), ours);
  for (GstPad *sink : ours) {
    std::vector<GstPad *> todo{GST_PAD(gst_object_ref(sink))};
    std::set<GstElement *> seen; // identity only
    bool found = false;
    for (int budget = 512; !todo.empty() && !found && budget > 0; budget--) {
      GstPad *pad = todo.back();
      todo.pop_back();
      GstPad *peer = gst_pad_get_peer(pad);
      gst_object_unref(pad);
      GstElement *up = peer ? gst_pad_get_parent_element(peer) : nullptr;
      if (peer) gst_object_unref(peer);
      if (!up) continue;
      if (up == GST_ELEMENT(self))
        found = true;
      else if (seen.insert(up).second)
        push_sink_pads(up, todo);
      gst_object_unref(up);
    }
    for (GstPad *pad : todo) gst_object_unref(pad);
    if (found) fed.insert(GST_PAD_NAME(sink));
    gst_object_unref(sink);
  }
  return fed;
}

// Under priv->lock: every sink pad that carries something has ended (but those in `except`).
bool sinks_ended(RtcPeerPrivate *p, const std::set<std::string> &except)
{
  for (auto &[label, sink] : p->data_sinks)
    if (!sink->eos && !except.count("data_" + label)) return false;
  // A media pad that never got caps (e.g. a decodebin branch for audio the file lacks) carries
  // nothing and must not hold the end back.
  for (auto &m : p->media_sends)
    if (m->built && !m->eos && !except.count(m->name)) return false;
  return true;
}

void post_eos_message(GstRtcPeer *self, guint32 seqnum)
{
  GstMessage *msg = gst_message_new_eos(GST_OBJECT(self));
  if (seqnum != GST_SEQNUM_INVALID) gst_message_set_seqnum(msg, seqnum);
  gst_element_post_message(GST_ELEMENT(self), msg);
}

void maybe_post_eos(GstRtcPeer *self, guint32 seqnum)
{
  auto *p = self->priv;
  {
    std::lock_guard lk(p->lock);
    if (p->eos_posted || !sinks_ended(p)) return;
    p->eos_posted = true;
  }
  {
    std::lock_guard lk(p->eos_msg_lock);
    p->eos_msg_sent = false;
  }
  drain_channels(self);
  {
    std::lock_guard lk(p->eos_msg_lock);
    p->eos_msg_sent = true;
    p->eos_msg_seqnum = seqnum;
    post_eos_message(self, seqnum);
  }
  end_src_pads(self); // if the application asked for EOS, after the drain's linger
}

} // namespace pointcast::rtc
