// SPDX-License-Identifier: LGPL-2.1-or-later
/* balldetect's OpenCV half as a module of its own.
 *
 * balldetector.cpp (the OpenCV code) is built into libpcballdetect.so.0, installed next to
 * libgstpointcast.so, and loaded by the first balldetect that starts. A process whose pipeline
 * has no balldetect (ball-sender, the points and media senders) then never maps OpenCV and the
 * libraries it pulls in (LAPACK, BLAS, TBB, GLX, X11: about 7 MB of resident memory and 0.2 s of
 * start-up CPU per process). The suffix .so.0 keeps GStreamer's registry scan from taking the
 * module for a plugin. */
#pragma once

#include <string>

#include "balldetector.h"

namespace pointcast::ball {

// The module's one entry point (C linkage so that dlsym finds it by this name).
using DetectEntry = void (*)(Detector *detector, const ImageView *view, Detector::Result *out);
inline constexpr const char *kDetectModuleName = "libpcballdetect.so.0";
inline constexpr const char *kDetectEntryName = "pointcast_ball_detect";

/* Loads the module from `dir` once per process (later calls return the same entry); nullptr and
 * a reason in *error when it cannot be loaded. Thread-safe. */
DetectEntry load_detect_module(const std::string &dir, std::string *error);

} // namespace pointcast::ball
