// The text of Warden's bearer tokens (API, bootstrap and service tokens):
// "wdn_<id>_<secret>", 16 lower-case hex digits of id and 64 of secret
// (32 random bytes). Stores keep SHA-256(secret) only: with 256 bits of
// entropy a fast hash is enough. Shared by warden-control, which issues
// and checks them, and proxies, which check service tokens against the
// hashes in their bundle.
#ifndef WARDEN_COMMON_WARDEN_TOKEN_H_
#define WARDEN_COMMON_WARDEN_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden {

inline constexpr absl::string_view kWardenTokenTag = "wdn_";

struct WardenToken {
  std::string id;      // "tok_<16 hex>", the public id
  std::string secret;  // 64 hex
};

// InvalidArgument "malformed token (expected wdn_<16 hex>_<64 hex>)".
absl::StatusOr<WardenToken> ParseWardenToken(absl::string_view text);

// The token's text for an id ("tok_<16 hex>") and secret.
std::string FormatWardenToken(absl::string_view id, absl::string_view secret);

// Lower-case hex SHA-256 of a secret: what stores keep.
std::string WardenTokenSecretHash(absl::string_view secret);

}  // namespace warden

#endif  // WARDEN_COMMON_WARDEN_TOKEN_H_
