// SPDX-License-Identifier: LGPL-2.1-or-later
/* The DTLS certificate of a process that uses rtcpeer (gst/rtc/startup.cpp): rtcpeer has
 * webrtcbin's dtlsdec make its RSA key with OpenSSL's default RSA method swapped for one that
 * finds three primes. What peers and the embedding application see must not change: an RSA
 * 2048-bit self-signed certificate whose signature verifies, made once per process, and OpenSSL's
 * own default RSA method back in place afterwards. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <gst/gst.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <string>

static int fail(const char *what)
{
  std::fprintf(stderr, "FAIL: %s\n", what);
  return 1;
}

static std::string certificate_pem()
{
  // dtlsdec's instance init waits for the process's certificate.
  GstElement *dec = gst_element_factory_make("dtlsdec", nullptr);
  if (!dec) return "";
  gst_object_ref_sink(dec);
  gchar *pem = nullptr;
  g_object_get(dec, "pem", &pem, nullptr);
  std::string out = pem ? pem : "";
  g_free(pem);
  gst_object_unref(dec);
  return out;
}

int main(int argc, char **argv)
{
  gst_init(&argc, &argv);
  auto t0 = std::chrono::steady_clock::now();
  GstElement *rtc = gst_element_factory_make("rtcpeer", nullptr);
  if (!rtc) return fail("no rtcpeer element (GST_PLUGIN_PATH?)");
  std::string pem = certificate_pem();
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (pem.empty()) return fail("dtlsdec has no certificate");

  BIO *bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
  X509 *cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!cert) return fail("the certificate does not parse");
  EVP_PKEY *key = X509_get0_pubkey(cert);
  if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) return fail("not an RSA key");
  if (EVP_PKEY_get_bits(key) != 2048) return fail("not a 2048-bit key");
  if (X509_verify(cert, key) != 1) return fail("its self-signature does not verify");
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0 ||
      X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
    return fail("not valid now");
  // The same certificate for every later element (and so one fingerprint per process).
  if (certificate_pem() != pem) return fail("a second dtlsdec got another certificate");
  if (RSA_get_default_method() != RSA_PKCS1_OpenSSL())
    return fail("OpenSSL's default RSA method was not restored");
  X509_free(cert);
  gst_object_unref(gst_object_ref_sink(rtc));
  std::printf("OK: RSA-2048 certificate in %.0f ms from creating rtcpeer; default RSA method "
              "restored\n",
              ms);
  return 0;
}
