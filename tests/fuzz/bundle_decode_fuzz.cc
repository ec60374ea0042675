// libFuzzer target: the proxy's bundle decoder and verifier on arbitrary
// bytes. Any input must decode or give an error, never crash; what decodes
// must never verify as received (the trusted key is generated at start-up,
// so nothing in the corpus can carry a valid signature). To reach the
// checks behind the signature, the decoded message is then re-signed with
// the trusted key and verified against a few running revisions; whatever
// passes must satisfy the documented rules and survive a fresh SignBundle.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/time/time.h"
#include "common/crypto.h"
#include "policy/bundle/bundle.h"
#include "policy/lang/compile.h"

namespace {

using warden::policy::bundle::BundleMeta;
using warden::policy::bundle::TrustedKeys;

struct Trust {
  warden::crypto::Ed25519KeyPair key;
  std::string key_id;
  TrustedKeys keys;
};

const Trust& GetTrust() {
  static const Trust* const kTrust = [] {
    auto* t = new Trust;
    auto key = warden::crypto::GenerateEd25519Key();
    if (!key.ok()) abort();
    t->key = *key;
    t->key_id = *warden::crypto::Ed25519KeyId(t->key.public_pem);
    if (!warden::policy::bundle::AddTrustedKey(t->key.public_pem, &t->keys)
             .ok()) {
      abort();
    }
    return t;
  }();
  return *kTrust;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65536) return 0;
  namespace b = warden::policy::bundle;
  const Trust& trust = GetTrust();
  auto decoded = b::DecodeSignedBundle(
      std::string(reinterpret_cast<const char*>(data), size));
  if (!decoded.ok()) {
    if (decoded.status().message().empty()) abort();  // every error says why.
    return 0;
  }
  if (b::VerifyBundle(*decoded, trust.keys, 0).ok()) abort();  // a forgery.

  warden::v1::SignedBundle resigned = *decoded;
  resigned.set_key_id(trust.key_id);
  auto sig = warden::crypto::Ed25519Sign(trust.key.private_pem,
                                         b::CanonicalSigningBytes(resigned));
  if (!sig.ok()) abort();
  resigned.set_signature(*sig);
  const uint64_t rev = resigned.revision();
  for (uint64_t running :
       {uint64_t{0}, rev, rev == UINT64_MAX ? rev : rev + 1}) {
    auto got = b::VerifyBundle(resigned, trust.keys, running);
    if (!got.ok()) {
      if (got.status().message().empty()) abort();
      continue;
    }
    // The documented rules held.
    if (rev == 0 || rev == running) abort();
    if (rev < running && resigned.rollback_of() == 0) abort();
    if (resigned.parent_revision() >= rev || resigned.rollback_of() >= rev) {
      abort();
    }
    if (warden::policy::lang::ContentDigest(*got) != got->digest()) abort();
    // What a proxy accepted, the control plane can sign again.
    BundleMeta meta;
    meta.revision = rev;
    meta.parent_revision = resigned.parent_revision();
    meta.created_by = resigned.created_by();
    meta.created_at = absl::FromUnixSeconds(resigned.created_at().seconds()) +
                      absl::Nanoseconds(resigned.created_at().nanos());
    meta.message = resigned.message();
    meta.rollback_of = resigned.rollback_of();
    auto again = b::SignBundle(*got, meta, trust.key.private_pem);
    if (!again.ok() || !b::VerifyBundle(*again, trust.keys, 0).ok()) abort();
  }
  return 0;
}
