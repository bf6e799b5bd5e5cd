// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/startup.h"

// RSA_METHOD is deprecated in OpenSSL 3, and dtlsdec 1.22 makes its key through it.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <gst/gst.h>

#include <mutex>
#include <vector>

namespace pointcast::rtc {

/* OpenSSL 3 makes a two-prime RSA-2048 key by SP 800-56B: 0.3-0.6 s here, 1-2.5 s on a loaded
 * machine (the prime search is random, so the spread is wide). A three-prime key of the same size
 * (RFC 8017; OpenSSL's limit for 2048 bits) is found in a quarter of that, and its public half,
 * all a peer ever sees, is an ordinary 2048-bit modulus. So until dtlsdec has made its one key,
 * the default RSA method is OpenSSL's own with this key generation; the first key made through it
 * puts the previous default back. Not in FIPS mode (FIPS 186-5 allows two primes only). */
static const RSA_METHOD *previous_default = nullptr;
static RSA_METHOD *keygen_method = nullptr;
static std::mutex swap_lock;

static void restore_default_method()
{
  std::lock_guard lk(swap_lock);
  if (keygen_method && RSA_get_default_method() == keygen_method)
    RSA_set_default_method(previous_default);
}

static int three_prime_keygen(RSA *rsa, int bits, BIGNUM *e, BN_GENCB *cb)
{
  restore_default_method();
  RSA_set_method(rsa, RSA_PKCS1_OpenSSL()); // the key itself is an ordinary OpenSSL key
  return RSA_generate_multi_prime_key(rsa, bits, bits >= 2048 && bits < 4096 ? 3 : 2, e, cb);
}

static void install_keygen_method()
{
  std::lock_guard lk(swap_lock);
  previous_default = RSA_get_default_method();
  if (previous_default != RSA_PKCS1_OpenSSL() || EVP_default_properties_is_fips_enabled(nullptr))
    return; // someone chose their own RSA method, or FIPS
  keygen_method = RSA_meth_dup(RSA_PKCS1_OpenSSL());
  if (!keygen_method) return;
  RSA_meth_set1_name(keygen_method, "pointcast: three-prime key generation");
  RSA_meth_set_keygen(keygen_method, three_prime_keygen);
  RSA_set_default_method(keygen_method);
}

static gpointer make_certificate(gpointer)
{
  // dtlsdec's instance init makes the process's certificate (or waits for it, when a webrtcbin
  // got there first); webrtcbin's own dtlsdecs made meanwhile wait for this one.
  if (GstElement *dec = gst_element_factory_make("dtlsdec", nullptr))
    gst_object_unref(gst_object_ref_sink(dec));
  restore_default_method(); // the certificate existed already, or there is no dtls plugin
  return nullptr;
}

// Loading a plugin (dlopen, its init) once here, in parallel with the key, instead of on the
// context thread when the first peer arrives. The dtls plugin is loaded by make_certificate.
static gpointer load_plugins(gpointer)
{
  for (const char *factory : {"webrtcbin", "nicesrc", "rtpbin", "srtpenc", "sctpenc"})
    if (GstPluginFeature *f = GST_PLUGIN_FEATURE(gst_element_factory_find(factory))) {
      if (GstPluginFeature *loaded = gst_plugin_feature_load(f)) gst_object_unref(loaded);
      gst_object_unref(f);
    }
  return nullptr;
}

/* The threads are joined when the last rtcpeer is finalized, never left running on their own: a
 * process that made an rtcpeer and dropped it at once (gst-launch with a bad pipeline, a test)
 * would otherwise reach gst_deinit() while a thread still loads a plugin or makes its element,
 * and the registry is torn down under it ("g_object_weak_unref: couldn't find weak ref" from a
 * plugin feature in gst_deinit: 27 of 400 runs of a make-and-drop test). That finalize then
 * waits for the certificate. */
static std::mutex threads_lock;
static std::vector<GThread *> threads; // still to be joined
static bool started = false;
static unsigned live_peers = 0;

void prepare_first_connection()
{
  std::lock_guard lk(threads_lock);
  live_peers++;
  if (started) return;
  started = true;
  /* Swapped here, before the thread starts, not on it: a dtlsdec the application (or a
   * webrtcbin) makes right after this rtcpeer could otherwise start the process's one key with
   * the old method before a slow thread (loaded machine) swapped, and the swap would then stay
   * visible while that two-prime key is made (the thread's dtlsdec waits for it): 1 of 15
   * runs of rtcpeer-dtls-certificate under load. Now whichever dtlsdec makes the key makes it
   * through the swapped method, which puts the old one back. */
  install_keygen_method();
  threads.push_back(g_thread_new("rtcpeer-dtls", make_certificate, nullptr));
  threads.push_back(g_thread_new("rtcpeer-plugins", load_plugins, nullptr));
}

void release_first_connection()
{
  std::vector<GThread *> done;
  {
    std::lock_guard lk(threads_lock);
    if (live_peers > 0 && --live_peers == 0) done.swap(threads);
  }
  for (GThread *t : done) g_thread_join(t);
}

} // namespace pointcast::rtc
