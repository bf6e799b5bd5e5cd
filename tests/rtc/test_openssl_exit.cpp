// SPDX-License-Identifier: LGPL-2.1-or-later
/* Regression test: a process that uses rtcpeer must not run OpenSSL's exit-time cleanup.
 *
 * OpenSSL 3.0's OPENSSL_cleanup (an atexit handler) frees every thread's thread-stop list while
 * streaming threads that used DTLS may still be exiting and freeing theirs, a double free that
 * aborted test-rtcpeer now and then at exit. Loading the plugin initialises libcrypto without that
 * handler. This test registers its own atexit check before anything else, so it runs after any
 * handler libcrypto registers later (handlers run in reverse order), and asks libcrypto whether
 * it has been cleaned up. */
#include <gst/gst.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <cstdio>
#include <cstdlib>
#include <unistd.h>

static void check_openssl_still_up()
{
  // After OPENSSL_cleanup every initialisation fails (and raises nothing: the error queue is gone).
  if (OPENSSL_init_crypto(0, nullptr) != 1) {
    std::fprintf(stderr, "FAIL: OpenSSL's exit-time cleanup ran (the racy OPENSSL_cleanup)\n");
    std::fflush(stderr);
    _exit(1);
  }
  std::printf("OK: libcrypto was not torn down at exit\n");
  std::fflush(stdout);
}

int main(int argc, char **argv)
{
  std::atexit(check_openssl_still_up);
  gst_init(&argc, &argv);
  GstElement *rtc = gst_element_factory_make("rtcpeer", nullptr);
  if (!rtc) {
    std::fprintf(stderr, "FAIL: no rtcpeer element (GST_PLUGIN_PATH?)\n");
    return 1;
  }
  // What webrtcbin's DTLS elements do when a session starts: an ordinary initialisation, which
  // on its own would register OPENSSL_cleanup with atexit.
  if (OPENSSL_init_ssl(0, nullptr) != 1) {
    std::fprintf(stderr, "FAIL: OPENSSL_init_ssl\n");
    return 1;
  }
  GstElement *webrtc = gst_element_factory_make("webrtcbin", nullptr);
  if (webrtc) gst_object_unref(webrtc);
  gst_object_unref(rtc);
  return 0;
}
