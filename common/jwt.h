// Verifying OpenID Connect / OAuth 2 tokens (JWS compact serialization,
// RFC 7515/7519) against an identity provider's JSON Web Key Set
// (RFC 7517). Signatures are checked by OpenSSL (EVP_DigestVerify); this
// file only decodes the formats around them.
//
// Deliberately narrow: only the asymmetric algorithms RS256 and ES256 exist
// here. `none` and every HMAC algorithm are refused before any key is
// looked at, so a token "signed" with the provider's public key as an HMAC
// secret, or not signed at all, can never verify. The algorithm comes from
// the verifier's allow-list and must agree with the key's type (and the
// key's own `alg`, when it names one).
#ifndef WARDEN_COMMON_JWT_H_
#define WARDEN_COMMON_JWT_H_

#include <initializer_list>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace warden::jwt {

// The algorithms Warden can verify.
inline constexpr absl::string_view kRs256 = "RS256";
inline constexpr absl::string_view kEs256 = "ES256";

// One verification key of a key set.
struct Key {
  std::string kid;
  std::string alg;  // RS256 or ES256: the only algorithm this key verifies.
  std::shared_ptr<void> pkey;  // EVP_PKEY, owned.
};

class KeySet {
 public:
  // Parses a JWKS document ({"keys": [...]}). Keys Warden cannot use
  // (symmetric "oct", encryption keys, other curves, RSA under 2048 bits)
  // are skipped and named in skipped(); a malformed document, or one with
  // no usable key, is InvalidArgument.
  static absl::StatusOr<KeySet> FromJwks(absl::string_view json);

  // The key with this id; with an empty id, the only key there is (or
  // null when there are several: the token must say which).
  const Key* Find(absl::string_view kid) const;
  size_t size() const { return keys_.size(); }
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  std::vector<Key> keys_;
  std::vector<std::string> skipped_;
};

struct VerifyOptions {
  // Exact match of `iss`.
  std::string issuer;
  // `aud` (a string or a list) must contain one of these.
  std::vector<std::string> audiences;
  // Subset of {RS256, ES256}.
  std::vector<std::string> algorithms = {std::string(kRs256),
                                         std::string(kEs256)};
  // Tolerated clock difference for exp, nbf and iat.
  absl::Duration clock_skew = absl::Seconds(60);
  // Tokens whose exp - iat (or exp - now) exceeds this are refused: a
  // stolen long-lived token is not a login. Zero: no bound.
  absl::Duration max_lifetime = absl::Hours(24);
  // When the check is made (tests set it).
  absl::Time now = absl::InfinitePast();  // InfinitePast: absl::Now().
};

// What a verified token says. Claims are kept as JSON text by name for
// string and string-list claims; other types are left out.
struct Claims {
  std::string issuer;
  std::string subject;
  absl::Time expires;
  // When it was issued: `iat`, or without one the earliest its lifetime
  // limit allows (expires - max_lifetime); InfinitePast when neither says.
  absl::Time issued = absl::InfinitePast();
  std::string key_id;
  std::string algorithm;
  std::map<std::string, std::string> strings;                   // e.g. email, hd
  std::map<std::string, std::vector<std::string>> string_lists;  // e.g. groups
  // Claims of any other JSON type (numbers, null, objects): present, but
  // never read as a name or a value.
  std::set<std::string> other_types;
  // A claim as one string ("" when absent or not a string).
  std::string String(const std::string& name) const;
  // A claim as a list (a single string becomes a list of one).
  std::vector<std::string> List(const std::string& name) const;
};

// Verifies `token` and returns its claims, or Unauthenticated with a
// message precise enough for an operator's log ("token expired at ...",
// "audience ... is not ...", "signature does not verify with key ...").
// Checks, in order: structure, header (alg allowed, kid known), signature,
// then issuer, audience, exp, nbf, iat and lifetime.
absl::StatusOr<Claims> Verify(absl::string_view token, const KeySet& keys,
                              const VerifyOptions& options);

// The unverified `iss` of a token: only for choosing which provider's keys
// and rules verify it; nothing else may be trusted before Verify.
absl::StatusOr<std::string> PeekIssuer(absl::string_view token);

// The first of the unverified string claims `names` a token has ("" when
// none is a non-empty string, or the token does not parse): only to say
// whom a refused token claimed to be, labelled as unverified.
std::string PeekClaim(absl::string_view token,
                      std::initializer_list<const char*> names);

// Decodes header and payload without verifying anything (for fuzzing the
// parser and for error messages); InvalidArgument when malformed.
struct Parts {
  std::string header_json;
  std::string payload_json;
  std::string signature;
  std::string signing_input;  // "<header>.<payload>", as sent.
};
absl::StatusOr<Parts> Split(absl::string_view token);

}  // namespace warden::jwt

#endif  // WARDEN_COMMON_JWT_H_
