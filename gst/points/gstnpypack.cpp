// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-npypack
 * @title: npypack
 *
 * Turns each `application/x-points, columns=C` buffer (rows x C float32) into one complete
 * NumPy `.npy` file (`application/x-npy`): byte for byte what `numpy.save` writes for a
 * float32 array of shape (rows, C) — format 1.0, header padded with spaces to a multiple of 64
 * bytes — so `numpy.load` reads every buffer. Zero rows give a (0, C) array. Timestamps and
 * offsets are kept.
 *
 * Output buffers come from an internal pool sized for the current shape, so the cost is one
 * header write and one copy of the payload. A buffer whose size is not a multiple of 4*C is
 * dropped with a warning.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 pointsrc points=5 num-buffers=3 ! npypack ! multifilesink location=points-%05d.npy
 * ]|
 */
#include "gstnpypack.h"

#include "bufmap.h"
#include "npy.h"

#include <cstring>
#include <string>

GST_DEBUG_CATEGORY_STATIC(gst_npy_pack_debug);
#define GST_CAT_DEFAULT gst_npy_pack_debug

struct GstNpyPackPrivate {
  gint columns = 0;
  // Header cache: rows change rarely, so the header text is built once per shape.
  guint64 header_rows = G_MAXUINT64;
  std::string header;
  GstBufferPool *pool = nullptr; // buffers of pool_size bytes
  gsize pool_size = 0;

  ~GstNpyPackPrivate() { drop_pool(); }
  void drop_pool()
  {
    if (pool) {
      gst_buffer_pool_set_active(pool, FALSE);
      gst_object_unref(pool);
      pool = nullptr;
    }
    pool_size = 0;
  }
};

struct _GstNpyPack {
  GstBaseTransform parent;
  GstNpyPackPrivate *priv;
};

G_DEFINE_TYPE(GstNpyPack, gst_npy_pack, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(npypack, "npypack", GST_RANK_NONE, GST_TYPE_NPY_PACK);

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
                            GST_STATIC_CAPS("application/x-points, columns=(int)[1, MAX]"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-npy"));

static GstCaps *gst_npy_pack_transform_caps(GstBaseTransform *trans, GstPadDirection direction,
                                            GstCaps *caps, GstCaps *filter)
{
  GstCaps *out = direction == GST_PAD_SINK ? gst_static_pad_template_get_caps(&src_template)
                                           : gst_static_pad_template_get_caps(&sink_template);
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full(filter, out, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(out);
    out = tmp;
  }
  return out;
}

static gboolean gst_npy_pack_set_caps(GstBaseTransform *trans, GstCaps *incaps, GstCaps *outcaps)
{
  GstNpyPackPrivate *p = GST_NPY_PACK(trans)->priv;
  gint columns = 0;
  if (!gst_structure_get_int(gst_caps_get_structure(incaps, 0), "columns", &columns) || columns < 1)
    return FALSE;
  p->columns = columns;
  p->header_rows = G_MAXUINT64;
  return TRUE;
}

static GstFlowReturn gst_npy_pack_prepare_output_buffer(GstBaseTransform *trans, GstBuffer *input,
                                                        GstBuffer **outbuf)
{
  GstNpyPack *self = GST_NPY_PACK(trans);
  GstNpyPackPrivate *p = self->priv;
  *outbuf = nullptr;
  if (p->columns < 1) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr), ("no caps before the first buffer"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  gsize in_size = gst_buffer_get_size(input);
  gsize row_bytes = static_cast<gsize>(p->columns) * sizeof(float);
  if (in_size % row_bytes != 0) {
    GST_ELEMENT_WARNING(
        self, STREAM, FORMAT, ("Dropped a points buffer: size is not a whole number of rows"),
        ("%" G_GSIZE_FORMAT " bytes is not a multiple of %" G_GSIZE_FORMAT " (columns=%d)", in_size,
         row_bytes, p->columns));
    return GST_BASE_TRANSFORM_FLOW_DROPPED;
  }
  guint64 rows = in_size / row_bytes;
  if (rows != p->header_rows) {
    p->header = npy::make_header_f32(rows, static_cast<guint64>(p->columns));
    p->header_rows = rows;
  }
  gsize out_size = p->header.size() + in_size;
  if (out_size != p->pool_size) {
    p->drop_pool();
    p->pool = gst_buffer_pool_new();
    GstStructure *config = gst_buffer_pool_get_config(p->pool);
    gst_buffer_pool_config_set_params(config, nullptr, static_cast<guint>(out_size), 0, 0);
    if (!gst_buffer_pool_set_config(p->pool, config) ||
        !gst_buffer_pool_set_active(p->pool, TRUE)) {
      p->drop_pool();
      GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT, (nullptr),
                        ("cannot set up a pool of %" G_GSIZE_FORMAT " byte buffers", out_size));
      return GST_FLOW_ERROR;
    }
    p->pool_size = out_size;
  }
  GstFlowReturn ret = gst_buffer_pool_acquire_buffer(p->pool, outbuf, nullptr);
  if (ret != GST_FLOW_OK) return ret;
  gst_buffer_copy_into(*outbuf, input,
                       GstBufferCopyFlags(GST_BUFFER_COPY_FLAGS | GST_BUFFER_COPY_TIMESTAMPS), 0,
                       -1);
  return GST_FLOW_OK;
}

static GstFlowReturn gst_npy_pack_transform(GstBaseTransform *trans, GstBuffer *inbuf,
                                            GstBuffer *outbuf)
{
  GstNpyPack *self = GST_NPY_PACK(trans);
  GstNpyPackPrivate *p = self->priv;
  BufferMap in(inbuf, GST_MAP_READ);
  BufferMap out(outbuf, GST_MAP_WRITE);
  if (!in || !out || out.size() != p->header.size() + in.size()) {
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED, (nullptr), ("cannot map buffers"));
    return GST_FLOW_ERROR;
  }
  std::memcpy(out.data(), p->header.data(), p->header.size());
  if (in.size() > 0) // zero rows: the input may map to a null pointer
    std::memcpy(out.data() + p->header.size(), in.data(), in.size());
  return GST_FLOW_OK;
}

static gboolean gst_npy_pack_stop(GstBaseTransform *trans)
{
  GstNpyPackPrivate *p = GST_NPY_PACK(trans)->priv;
  p->drop_pool();
  p->header_rows = G_MAXUINT64;
  return TRUE;
}

static void gst_npy_pack_finalize(GObject *object)
{
  delete GST_NPY_PACK(object)->priv;
  G_OBJECT_CLASS(gst_npy_pack_parent_class)->finalize(object);
}

static void gst_npy_pack_class_init(GstNpyPackClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_npy_pack_debug, "npypack", 0, "Points to .npy");
  gobject_class->finalize = gst_npy_pack_finalize;

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "NumPy packer", "Codec/Encoder/Points",
      "Writes each points buffer as one .npy file, as numpy.save does for float32 (rows, columns)",
      "pointcast");

  trans_class->transform_caps = gst_npy_pack_transform_caps;
  trans_class->set_caps = gst_npy_pack_set_caps;
  trans_class->prepare_output_buffer = gst_npy_pack_prepare_output_buffer;
  trans_class->transform = gst_npy_pack_transform;
  trans_class->stop = gst_npy_pack_stop;
  trans_class->passthrough_on_same_caps = FALSE;
}

static void gst_npy_pack_init(GstNpyPack *self)
{
  self->priv = new GstNpyPackPrivate();
}
