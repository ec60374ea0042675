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
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/time/time.h"
#include "common/jwt.h"
#include "tests/unit/common/jwt_test_util.h"

namespace {

namespace jwt = warden::jwt;

// Keys made once per process; only their public halves are used.
const jwt::KeySet& Keys() {
  static const jwt::KeySet* keys = [] {
    namespace t = warden::jwt::testing;
    t::PkeyPtr rsa = t::NewRsa();
    t::PkeyPtr ec = t::NewEc();
    const nlohmann::json jwks = {
        {"keys", {t::RsaJwk(rsa.get(), "k"), t::EcJwk(ec.get(), "e")}}};
    auto parsed = jwt::KeySet::FromJwks(jwks.dump());
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
