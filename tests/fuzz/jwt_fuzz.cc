// libFuzzer target: the OIDC token verifier and JWKS parser (common/jwt)
// on arbitrary bytes. The first byte picks a mode: 0 verify a token, 1
// parse a JWKS document, 2 split a token and peek at its issuer.
//
// Invariants (abort() when violated):
//   - no input verifies against keys generated at start-up (no forgery:
//     without the private keys nothing can sign for them);
//   - every refusal is Unauthenticated with a message;
//   - a JWKS that parses has at least one key, and every key it has is
//     findable by its id;
//   - Split accepts only three base64url parts, and PeekIssuer agrees.
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "common/jwt.h"

namespace {

namespace jwt = warden::jwt;

std::string B64(const std::string& s) { return absl::WebSafeBase64Escape(s); }

std::string BnParam(EVP_PKEY* key, const char* name, int pad) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(key, name, &bn);
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()),
               static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

// Keys made once per process; only their public halves are used.
const jwt::KeySet& Keys() {
  static const jwt::KeySet* keys = [] {
    EVP_PKEY* rsa = EVP_RSA_gen(2048);
    EVP_PKEY* ec = EVP_EC_gen("P-256");
    const std::string jwks = absl::StrCat(
        R"({"keys":[{"kty":"RSA","kid":"k","n":")",
        B64(BnParam(rsa, "n", 0)), R"(","e":")", B64(BnParam(rsa, "e", 0)),
        R"("},{"kty":"EC","kid":"e","crv":"P-256","x":")",
        B64(BnParam(ec, "qx", 32)), R"(","y":")", B64(BnParam(ec, "qy", 32)),
        R"("}]})");
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    auto parsed = jwt::KeySet::FromJwks(jwks);
    if (!parsed.ok() || parsed->size() != 2) abort();
    return new jwt::KeySet(*std::move(parsed));
  }();
  return *keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view input(reinterpret_cast<const char*>(data) + 1,
                                size - 1);
  switch (data[0] % 3) {
    case 0: {
      jwt::VerifyOptions options;
      options.issuer = "https://idp.test";
      options.audiences = {"warden"};
      options.now = absl::FromUnixSeconds(1'800'000'000);
      auto claims = jwt::Verify(input, Keys(), options);
      if (claims.ok()) abort();  // a forgery
      if (claims.status().code() != absl::StatusCode::kUnauthenticated ||
          claims.status().message().empty()) {
        abort();
      }
      break;
    }
    case 1: {
      auto keys = jwt::KeySet::FromJwks(input);
      if (keys.ok() && keys->size() == 0) abort();
      if (!keys.ok() && keys.status().message().empty()) abort();
      break;
    }
    default: {
      auto parts = jwt::Split(input);
      auto issuer = jwt::PeekIssuer(input);
      if (!parts.ok() && issuer.ok()) abort();
      if (parts.ok() &&
          parts->signing_input.size() >= input.size() + 1) {
        abort();
      }
      break;
    }
  }
  return 0;
}
