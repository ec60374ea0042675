// OpenSSL plumbing shared by common/crypto and common/x509 (internal to
// common/): owning pointers, memory BIOs and PEM key reading and writing.
// No cryptography here, only object lifetimes and encodings.
#ifndef WARDEN_COMMON_OPENSSL_UTIL_H_
#define WARDEN_COMMON_OPENSSL_UTIL_H_

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden::openssl {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

// A read-only memory BIO over `pem` (not copied); null when too large or
// out of memory.
Bio ReadBio(absl::string_view pem);
// The contents of a memory BIO.
std::string DrainBio(BIO* bio);

// PEM keys of any type; null (and OpenSSL's error queue cleared) when
// `pem` holds none. No password callback: an encrypted key fails cleanly
// instead of prompting on the terminal.
Pkey ReadPrivateKey(absl::string_view pem);
Pkey ReadPublicKey(absl::string_view pem);

// PKCS#8 (unencrypted) and SubjectPublicKeyInfo PEM of `key`.
absl::StatusOr<std::string> PrivatePem(EVP_PKEY* key);
absl::StatusOr<std::string> PublicPem(EVP_PKEY* key);

}  // namespace warden::openssl

#endif  // WARDEN_COMMON_OPENSSL_UTIL_H_
