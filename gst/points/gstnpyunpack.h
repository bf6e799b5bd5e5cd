// SPDX-License-Identifier: LGPL-2.1-or-later
/* npyunpack: application/x-npy (one .npy file per buffer) to application/x-points. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_NPY_UNPACK (gst_npy_unpack_get_type())
G_DECLARE_FINAL_TYPE(GstNpyUnpack, gst_npy_unpack, GST, NPY_UNPACK, GstElement)

GST_ELEMENT_REGISTER_DECLARE(npyunpack);

G_END_DECLS
