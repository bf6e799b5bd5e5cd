// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-npyunpack
 * @title: npyunpack
 *
 * Reads each `application/x-npy` buffer as one complete NumPy `.npy` file and outputs its rows
 * as `application/x-points, columns=C` (float32, row-major). Accepted: what `numpy.save` writes
 * for C-order arrays of shape (N, C) or (C,) (one row) with dtype `<f4`, `<f8`, `<i4` or `<i8`
 * (`=`/`|` byte-order forms too), in format 1.0, 2.0 or 3.0. Other dtypes are converted to
 * float32; float32 payloads are not copied (the output is a sub-buffer of the input).
 * The output caps follow the data: new caps are sent whenever C changes; when downstream does not
 * accept the new number of columns, that buffer is dropped with a warning and the stream goes on.
 *
 * A malformed buffer (bad magic, unknown version, truncated or oversized header, header length
 * past the buffer, unparsable dict, fortran_order True, big-endian or unsupported dtype,
 * 0-D/3-D shape, shape not matching the payload, shape product overflowing, more columns than
 * `max-columns`) is dropped: a warning message naming the reason is posted and the stream goes
 * on. The `dropped` and `unpacked` properties count both outcomes.
 *
 * A `.npy` from a remote peer is untrusted: its shape costs nothing to write, so the column count
 * is bounded by `max-columns` (default 4096) even when the payload agrees with it (a 128-byte file
 * of shape (0, 2147483647) would otherwise make caps, and per-column state downstream, of two
 * billion columns), and the row count must agree with the payload bytes.
 *
 * Element base class: GstElement, because the output caps are only known from the data.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 pointsrc points=5 num-buffers=8 ! npypack ! npyunpack ! pointsink
 * ]|
 */
#include "gstnpyunpack.h"

#include "bufmap.h"
#include "npy.h"

#include <atomic>

GST_DEBUG_CATEGORY_STATIC(gst_npy_unpack_debug);
#define GST_CAT_DEFAULT gst_npy_unpack_debug

enum { PROP_0, PROP_UNPACKED, PROP_DROPPED, PROP_MAX_COLUMNS };

constexpr guint kDefaultMaxColumns = 4096;

struct GstNpyUnpackPrivate {
  guint64 columns = 0;                 // columns of the caps last sent; 0 = none yet
  GstEvent *pending_segment = nullptr; // held until caps are sent (caps must precede segment)
  std::atomic<guint64> unpacked{0};
  std::atomic<guint64> dropped{0};
  std::atomic<guint> max_columns{kDefaultMaxColumns};

  ~GstNpyUnpackPrivate() { gst_clear_event(&pending_segment); }
};

struct _GstNpyUnpack {
  GstElement parent;
  GstPad *sinkpad;
  GstPad *srcpad;
  GstNpyUnpackPrivate *priv;
};

G_DEFINE_TYPE(GstNpyUnpack, gst_npy_unpack, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE(npyunpack, "npyunpack", GST_RANK_NONE, GST_TYPE_NPY_UNPACK);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-npy"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS,
                            GST_STATIC_CAPS("application/x-points, columns=(int)[1, MAX]"));

static void push_pending_segment(GstNpyUnpack *self)
{
  GstNpyUnpackPrivate *p = self->priv;
  GstEvent *seg = nullptr;
  GST_OBJECT_LOCK(self);
  seg = p->pending_segment;
  p->pending_segment = nullptr;
  GST_OBJECT_UNLOCK(self);
  if (seg) gst_pad_push_event(self->srcpad, seg);
}

static void warn_malformed(GstNpyUnpack *self, GstBuffer *buf, const npy::ParseResult &r)
{
  self->priv->dropped++;
  GST_ELEMENT_WARNING(
      self, STREAM, DECODE, ("Dropped a malformed .npy buffer: %s", npy::error_name(r.error)),
      ("%s (buffer of %" G_GSIZE_FORMAT " bytes, pts %" GST_TIME_FORMAT ")", r.detail.c_str(),
       gst_buffer_get_size(buf), GST_TIME_ARGS(GST_BUFFER_PTS(buf))));
}

static GstFlowReturn gst_npy_unpack_chain(GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  GstNpyUnpack *self = GST_NPY_UNPACK(parent);
  GstNpyUnpackPrivate *p = self->priv;
  GstBuffer *out = nullptr;
  npy::Header h;
  bool malformed = false;
  {
    BufferMap in(buf, GST_MAP_READ);
    if (!in) {
      gst_buffer_unref(buf);
      GST_ELEMENT_ERROR(self, RESOURCE, READ, (nullptr), ("cannot map input buffer"));
      return GST_FLOW_ERROR;
    }
    // max-columns is at most G_MAXINT, so the columns always fit the caps' int
    npy::ParseResult r = npy::parse(in.data(), in.size(), p->max_columns.load());
    if (r.ok() && r.header.dtype != npy::DType::F4 &&
        r.header.payload_bytes / npy::item_size(r.header.dtype) > G_MAXSIZE / sizeof(float)) {
      r.error = npy::Error::ShapeOverflow;
      r.detail = "shape product overflows: cannot convert to float32";
    }
    if (!r.ok()) {
      warn_malformed(self, buf, r);
      malformed = true;
    }
    h = r.header;
    gsize count = h.payload_bytes / npy::item_size(h.dtype);
    if (!malformed && h.dtype != npy::DType::F4) {
      out = gst_buffer_new_allocate(nullptr, count * sizeof(float), nullptr);
      if (!out) {
        gst_buffer_unref(buf);
        GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT, (nullptr),
                          ("cannot allocate %" G_GSIZE_FORMAT " floats", count));
        return GST_FLOW_ERROR;
      }
      BufferMap o(out, GST_MAP_WRITE);
      npy::convert_to_f32(h.dtype, in.data() + h.data_offset, reinterpret_cast<float *>(o.data()),
                          count);
      gst_buffer_copy_into(out, buf, GstBufferCopyFlags(GST_BUFFER_COPY_METADATA), 0, -1);
    }
  }
  if (malformed) { // dropped; the stream goes on
    gst_buffer_unref(buf);
    return GST_FLOW_OK;
  }
  if (!out) // float32 already: share the payload memory, no copy
    out = gst_buffer_copy_region(
        buf, GstBufferCopyFlags(GST_BUFFER_COPY_METADATA | GST_BUFFER_COPY_MEMORY), h.data_offset,
        h.payload_bytes);
  // copy_region only copies timestamps for offset 0; the PTS must be kept
  GST_BUFFER_PTS(out) = GST_BUFFER_PTS(buf);
  GST_BUFFER_DTS(out) = GST_BUFFER_DTS(buf);
  GST_BUFFER_DURATION(out) = GST_BUFFER_DURATION(buf);
  GST_BUFFER_OFFSET(out) = GST_BUFFER_OFFSET(buf);
  GST_BUFFER_OFFSET_END(out) = GST_BUFFER_OFFSET_END(buf);
  gst_buffer_unref(buf);

  if (h.columns != p->columns) {
    GstCaps *caps = gst_caps_new_simple("application/x-points", "columns", G_TYPE_INT,
                                        static_cast<gint>(h.columns), nullptr);
    GST_DEBUG_OBJECT(self, "columns now %" G_GUINT64_FORMAT ": %" GST_PTR_FORMAT, h.columns, caps);
    // A peer sending another width must not take the pipeline down: if downstream cannot take
    // this many columns, the buffer is dropped with a warning and the old caps stay.
    gboolean ok =
        !gst_pad_is_linked(self->srcpad) || gst_pad_peer_query_accept_caps(self->srcpad, caps);
    if (ok) ok = gst_pad_push_event(self->srcpad, gst_event_new_caps(gst_caps_ref(caps)));
    gst_caps_unref(caps);
    if (!ok) {
      gst_buffer_unref(out);
      p->dropped++;
      GST_ELEMENT_WARNING(self, STREAM, FORMAT,
                          ("Dropped a .npy buffer: downstream does not accept %" G_GUINT64_FORMAT
                           " columns",
                           h.columns),
                          (nullptr));
      return GST_FLOW_OK;
    }
    p->columns = h.columns;
  }
  push_pending_segment(self);
  p->unpacked++;
  return gst_pad_push(self->srcpad, out);
}

static gboolean gst_npy_unpack_sink_event(GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstNpyUnpack *self = GST_NPY_UNPACK(parent);
  GstNpyUnpackPrivate *p = self->priv;
  switch (GST_EVENT_TYPE(event)) {
  case GST_EVENT_CAPS:
    // Our caps come from the data (columns), sent before the first buffer of each shape.
    gst_event_unref(event);
    return TRUE;
  case GST_EVENT_STREAM_START: p->columns = 0; break;
  case GST_EVENT_SEGMENT:
    if (p->columns == 0) {
      GST_OBJECT_LOCK(self);
      gst_event_replace(&p->pending_segment, event);
      GST_OBJECT_UNLOCK(self);
      gst_event_unref(event);
      return TRUE;
    }
    break;
  case GST_EVENT_EOS:
  case GST_EVENT_GAP: push_pending_segment(self); break;
  default: break;
  }
  return gst_pad_event_default(pad, parent, event);
}

static GstStateChangeReturn gst_npy_unpack_change_state(GstElement *element,
                                                        GstStateChange transition)
{
  GstNpyUnpack *self = GST_NPY_UNPACK(element);
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS(gst_npy_unpack_parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    self->priv->columns = 0;
    GST_OBJECT_LOCK(self);
    gst_clear_event(&self->priv->pending_segment);
    GST_OBJECT_UNLOCK(self);
  }
  return ret;
}

static void gst_npy_unpack_set_property(GObject *object, guint prop_id, const GValue *value,
                                        GParamSpec *pspec)
{
  GstNpyUnpackPrivate *p = GST_NPY_UNPACK(object)->priv;
  switch (prop_id) {
  case PROP_MAX_COLUMNS: p->max_columns = g_value_get_uint(value); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_npy_unpack_get_property(GObject *object, guint prop_id, GValue *value,
                                        GParamSpec *pspec)
{
  GstNpyUnpackPrivate *p = GST_NPY_UNPACK(object)->priv;
  switch (prop_id) {
  case PROP_MAX_COLUMNS: g_value_set_uint(value, p->max_columns.load()); break;
  case PROP_UNPACKED: g_value_set_uint64(value, p->unpacked.load()); break;
  case PROP_DROPPED: g_value_set_uint64(value, p->dropped.load()); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_npy_unpack_finalize(GObject *object)
{
  delete GST_NPY_UNPACK(object)->priv;
  G_OBJECT_CLASS(gst_npy_unpack_parent_class)->finalize(object);
}

static void gst_npy_unpack_class_init(GstNpyUnpackClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_npy_unpack_debug, "npyunpack", 0, ".npy to points");
  gobject_class->set_property = gst_npy_unpack_set_property;
  gobject_class->get_property = gst_npy_unpack_get_property;
  gobject_class->finalize = gst_npy_unpack_finalize;

  g_object_class_install_property(
      gobject_class, PROP_UNPACKED,
      g_param_spec_uint64("unpacked", "Unpacked", "Buffers unpacked and pushed", 0, G_MAXUINT64, 0,
                          GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_DROPPED,
      g_param_spec_uint64("dropped", "Dropped", "Malformed buffers dropped (each posted a warning)",
                          0, G_MAXUINT64, 0,
                          GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_MAX_COLUMNS,
      g_param_spec_uint(
          "max-columns", "Max columns",
          "Largest column count accepted; a .npy with more is dropped with a warning (its shape is "
          "untrusted input: downstream state grows with the columns)",
          1, G_MAXINT, kDefaultMaxColumns,
          GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "NumPy unpacker", "Codec/Decoder/Points",
      "Reads each buffer as a .npy file (1-D/2-D, <f4 <f8 <i4 <i8) and outputs float32 points",
      "pointcast");
  element_class->change_state = gst_npy_unpack_change_state;
}

static void gst_npy_unpack_init(GstNpyUnpack *self)
{
  self->priv = new GstNpyUnpackPrivate();
  self->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
  gst_pad_set_chain_function(self->sinkpad, gst_npy_unpack_chain);
  gst_pad_set_event_function(self->sinkpad, gst_npy_unpack_sink_event);
  gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template(&src_template, "src");
  gst_pad_use_fixed_caps(self->srcpad);
  gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
}
