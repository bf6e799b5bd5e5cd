// SPDX-License-Identifier: LGPL-2.1-or-later
/* npypack / npyunpack throughput against memcpy of the same bytes, in the same run.
 *
 * Each element runs alone: buffers are pushed straight into its sink pad from a pad owned here,
 * and its output lands on a pad owned here that drops it, so the figures are the element's own
 * per-buffer cost (base class, header, copy, pool), not a pipeline's threads or queues.
 * Sizes: 1k, 100k and 1M points (x 3 float32) per buffer. Best of 5 rounds of >= 0.2 s each,
 * the four measurements interleaved round by round.
 * `identity us` is the per-buffer cost of an element doing nothing: the floor for any element. */
#include "npy.h"

#include <gst/gst.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRounds = 5;
constexpr double kRoundSeconds = 0.2;

GstFlowReturn drop_chain(GstPad *, GstObject *, GstBuffer *buf)
{
  gst_buffer_unref(buf);
  return GST_FLOW_OK;
}

/* One element between a src pad and a sink pad owned by the benchmark. */
struct Rig {
  GstElement *element = nullptr;
  GstPad *src = nullptr;
  GstPad *sink = nullptr;

  Rig(const char *factory, const char *caps_str)
  {
    element = gst_element_factory_make(factory, nullptr);
    if (!element) {
      std::fprintf(stderr, "no element %s: is GST_PLUGIN_PATH set to the build's gst/?\n", factory);
      std::exit(1);
    }
    src = gst_pad_new("benchsrc", GST_PAD_SRC);
    sink = gst_pad_new("benchsink", GST_PAD_SINK);
    gst_pad_set_chain_function(sink, drop_chain);
    GstPad *esink = gst_element_get_static_pad(element, "sink");
    GstPad *esrc = gst_element_get_static_pad(element, "src");
    gst_pad_link(src, esink);
    gst_pad_link(esrc, sink);
    gst_object_unref(esink);
    gst_object_unref(esrc);
    gst_pad_set_active(src, TRUE);
    gst_pad_set_active(sink, TRUE);
    gst_element_set_state(element, GST_STATE_PLAYING);
    gst_pad_push_event(src, gst_event_new_stream_start("bench"));
    GstCaps *caps = gst_caps_from_string(caps_str);
    gst_pad_push_event(src, gst_event_new_caps(caps));
    gst_caps_unref(caps);
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_TIME);
    gst_pad_push_event(src, gst_event_new_segment(&seg));
  }
  ~Rig()
  {
    gst_element_set_state(element, GST_STATE_NULL);
    gst_pad_set_active(src, FALSE);
    gst_pad_set_active(sink, FALSE);
    gst_object_unref(src);
    gst_object_unref(sink);
    gst_object_unref(element);
  }
};

/* Seconds per iteration of fn over one round of >= kRoundSeconds. */
template <typename F>
double per_iter(F &&fn)
{
  long n = 0;
  auto t0 = Clock::now();
  double elapsed = 0;
  do {
    for (int k = 0; k < 8; ++k, ++n) fn();
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (elapsed < kRoundSeconds);
  return elapsed / n;
}

} // namespace

int main(int argc, char **argv)
{
  gst_init(&argc, &argv);
  // runs straight from the build tree too: load the plugin built next to this benchmark
  GstPluginFeature *known =
      gst_registry_find_feature(gst_registry_get(), "npypack", GST_TYPE_ELEMENT_FACTORY);
  if (known) {
    gst_object_unref(known);
  } else {
    GError *err = nullptr;
    GstPlugin *plugin = gst_plugin_load_file(PC_PLUGIN_FILE, &err);
    if (!plugin) {
      std::fprintf(stderr, "cannot load %s: %s\n", PC_PLUGIN_FILE, err->message);
      return 1;
    }
    gst_object_unref(plugin);
  }
  std::printf(
      "npy benchmark: throughput of the payload bytes (points x 3 x 4 B); ratio = element / memcpy "
      "of the same bytes, same run\n");
  std::printf("%9s %10s | %11s | %12s %7s | %11s %7s %10s | %13s\n", "points", "bytes",
              "memcpy GB/s", "npypack GB/s", "ratio", "unpack GB/s", "ratio", "unpack us",
              "identity us");
  for (std::size_t points : {std::size_t(1000), std::size_t(100000), std::size_t(1000000)}) {
    const std::size_t bytes = points * 3 * sizeof(float);
    std::vector<float> values(points * 3);
    for (std::size_t i = 0; i < values.size(); ++i)
      values[i] = static_cast<float>(i % 4096) * 0.25f;

    // memcpy reference: same bytes, into a destination reused like a pooled buffer
    std::vector<std::uint8_t> dst(bytes);
    GstBuffer *points_buf = gst_buffer_new_memdup(values.data(), bytes);
    std::string file = npy::make_header_f32(points, 3);
    file.append(reinterpret_cast<const char *>(values.data()), bytes);
    GstBuffer *npy_buf = gst_buffer_new_memdup(file.data(), file.size());
    double t_memcpy = 1e9, t_pack = 1e9, t_unpack = 1e9, t_identity = 1e9;
    {
      Rig pack("npypack", "application/x-points, columns=(int)3");
      Rig unpack("npyunpack", "application/x-npy");
      // floor: the same push through identity, an element that does no work
      Rig ident("identity", "application/x-points, columns=(int)3");
      // rounds interleave the four measurements, so load changes on a shared machine hit all alike
      for (int round = 0; round < kRounds; ++round) {
        t_memcpy = std::min(t_memcpy, per_iter([&] {
                              std::memcpy(dst.data(), values.data(), bytes);
                              asm volatile("" : : "r"(dst.data()) : "memory"); // keep the copy
                            }));
        t_pack =
            std::min(t_pack, per_iter([&] { gst_pad_push(pack.src, gst_buffer_ref(points_buf)); }));
        t_unpack = std::min(t_unpack,
                            per_iter([&] { gst_pad_push(unpack.src, gst_buffer_ref(npy_buf)); }));
        t_identity = std::min(
            t_identity, per_iter([&] { gst_pad_push(ident.src, gst_buffer_ref(points_buf)); }));
      }
    }
    gst_buffer_unref(points_buf);
    gst_buffer_unref(npy_buf);

    auto gbps = [&](double t) { return bytes / t / 1e9; };
    std::printf("%9zu %10zu | %11.2f | %12.2f %6.2fx | %11.2f %6.2fx %10.2f | %13.2f\n", points,
                bytes, gbps(t_memcpy), gbps(t_pack), t_memcpy / t_pack, gbps(t_unpack),
                t_memcpy / t_unpack, t_unpack * 1e6, t_identity * 1e6);
  }
  return 0;
}
