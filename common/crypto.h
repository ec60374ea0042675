// Thin, allocation-light wrappers over OpenSSL. Warden never implements
// cryptography itself; these only adapt OpenSSL's C API to absl types.
#ifndef WARDEN_COMMON_CRYPTO_H_
#define WARDEN_COMMON_CRYPTO_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden::crypto {

// Sha256("abc") returns the 32-byte binary digest.
std::string Sha256(absl::string_view data);

// Md5(data) returns the 16-byte binary digest (OpenSSL EVP_md5). Only for
// protocol compatibility (PostgreSQL's legacy md5 auth); not for security.
// Returns "" if the OpenSSL provider offers no MD5 (e.g. FIPS-only).
std::string Md5(absl::string_view data);

// HmacSha256(key, data) returns the 32-byte binary MAC.
std::string HmacSha256(absl::string_view key, absl::string_view data);

// Pbkdf2HmacSha256 derives `length` bytes (RFC 8018), as SCRAM's Hi().
std::string Pbkdf2HmacSha256(absl::string_view password, absl::string_view salt,
                             int iterations, int length = 32);

// RandomBytes fills `n` bytes from OpenSSL's CSPRNG; fails only if the
// generator is not seeded.
absl::StatusOr<std::string> RandomBytes(size_t n);

// Base64 (standard alphabet, padded, no newlines).
std::string Base64Encode(absl::string_view data);
// Returns InvalidArgument on characters outside the alphabet or bad padding.
absl::StatusOr<std::string> Base64Decode(absl::string_view text);

// Lower-case hex of `data`.
std::string HexEncode(absl::string_view data);

// Compares in time independent of where the inputs differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace warden::crypto

#endif  // WARDEN_COMMON_CRYPTO_H_
