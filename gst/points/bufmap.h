// SPDX-License-Identifier: LGPL-2.1-or-later
/* BufferMap: RAII for gst_buffer_map, so no early return leaks a mapping. */
#pragma once

#include <gst/gst.h>

class BufferMap {
public:
  BufferMap(GstBuffer *buf, GstMapFlags flags) : buf_(buf)
  {
    ok_ = gst_buffer_map(buf, &info_, flags);
  }
  ~BufferMap()
  {
    if (ok_) gst_buffer_unmap(buf_, &info_);
  }
  BufferMap(const BufferMap &) = delete;
  BufferMap &operator=(const BufferMap &) = delete;

  explicit operator bool() const { return ok_; }
  guint8 *data() const { return info_.data; }
  gsize size() const { return info_.size; }

private:
  GstBuffer *buf_;
  GstMapInfo info_ = GST_MAP_INFO_INIT;
  bool ok_ = false;
};
