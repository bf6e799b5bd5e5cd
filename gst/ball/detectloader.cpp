// SPDX-License-Identifier: LGPL-2.1-or-later
/* Plugin side of detectmodule.h: finds and loads libpcballdetect.so.0. */
#include "detectmodule.h"

#include <dlfcn.h>

#include <mutex>

namespace pointcast::ball {

DetectEntry load_detect_module(const std::string &dir, std::string *error)
{
  static std::mutex lock;
  static DetectEntry entry = nullptr;
  std::lock_guard guard(lock);
  if (entry) return entry;
  const std::string path = dir + "/" + kDetectModuleName;
  // Never unloaded: detectors of later pipelines reuse it.
  void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    *error = "cannot load " + path + ": " + (why ? why : "unknown error");
    return nullptr;
  }
  entry = reinterpret_cast<DetectEntry>(dlsym(handle, kDetectEntryName));
  if (!entry) {
    *error = path + " has no " + kDetectEntryName;
    dlclose(handle);
    return nullptr;
  }
  return entry;
}

} // namespace pointcast::ball
