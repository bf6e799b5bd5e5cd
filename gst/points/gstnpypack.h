// SPDX-License-Identifier: LGPL-2.1-or-later
/* npypack: application/x-points to application/x-npy (one .npy file per buffer). */
#pragma once

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_NPY_PACK (gst_npy_pack_get_type())
G_DECLARE_FINAL_TYPE(GstNpyPack, gst_npy_pack, GST, NPY_PACK, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE(npypack);

G_END_DECLS
