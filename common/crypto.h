// Thin, allocation-light wrappers over OpenSSL. Warden never implements
// cryptography itself; these only adapt OpenSSL's C API to absl types.
#ifndef WARDEN_COMMON_CRYPTO_H_
#define WARDEN_COMMON_CRYPTO_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// OpenSSL's EVP_PKEY, without its headers.
struct evp_pkey_st;

namespace warden::crypto {

// Sha256("abc") returns the 32-byte binary digest.
std::string Sha256(absl::string_view data);

// Sha256Concat({a, b}) is Sha256(a + b) without building the concatenation
// (e.g. a domain-separation prefix and a large body).
std::string Sha256Concat(std::initializer_list<absl::string_view> parts);

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

// Ed25519 (RFC 8032) through OpenSSL 3's EVP_PKEY_ED25519.
//
// Keys travel as PEM, the form operators handle and `openssl genpkey
// -algorithm ed25519` writes: private keys as unencrypted PKCS#8
// ("-----BEGIN PRIVATE KEY-----"), public keys as SubjectPublicKeyInfo
// ("-----BEGIN PUBLIC KEY-----"). Signatures are the raw 64 bytes.
//
// Errors: a key that is not Ed25519 PEM gives InvalidArgument (the caller's
// configuration is wrong); a signature that does not verify gives
// PermissionDenied (the data must not be trusted); an OpenSSL failure that
// is neither gives Internal.
struct Ed25519KeyPair {
  std::string private_pem;
  std::string public_pem;
};

// GenerateEd25519Key() returns a fresh key pair from OpenSSL's CSPRNG.
absl::StatusOr<Ed25519KeyPair> GenerateEd25519Key();

// Ed25519PrivateKeyFromRaw(seed) wraps a raw 32-byte RFC 8032 secret key in
// PEM, e.g. to load a published test vector. InvalidArgument if not 32 bytes.
absl::StatusOr<std::string> Ed25519PrivateKeyFromRaw(absl::string_view seed);

// Ed25519PublicKeyFromRaw(raw) wraps a raw 32-byte public key in PEM, e.g.
// one carried in a C2SP verifier key. InvalidArgument if not 32 bytes.
absl::StatusOr<std::string> Ed25519PublicKeyFromRaw(absl::string_view raw);

// Ed25519PublicKeyFromPrivate(private_pem) returns the matching public PEM.
absl::StatusOr<std::string> Ed25519PublicKeyFromPrivate(
    absl::string_view private_pem);

// Ed25519RawPublicKey(public_pem) returns the raw 32-byte public key.
absl::StatusOr<std::string> Ed25519RawPublicKey(absl::string_view public_pem);

// Ed25519Sign(private_pem, message) returns the 64-byte signature.
absl::StatusOr<std::string> Ed25519Sign(absl::string_view private_pem,
                                        absl::string_view message);

// An Ed25519 private key decoded once, for a signer of many messages
// (decoding the PEM costs OpenSSL 3 several hundred microseconds, the
// signature itself tens). Copies share the key; Sign is thread-safe.
class Ed25519Signer {
 public:
  // InvalidArgument if `private_pem` is not an Ed25519 private key.
  static absl::StatusOr<Ed25519Signer> FromPem(absl::string_view private_pem);
  // The same signature as Ed25519Sign(private_pem, message).
  absl::StatusOr<std::string> Sign(absl::string_view message) const;
  // The raw 32-byte public key.
  const std::string& raw_public_key() const { return raw_public_key_; }

 private:
  std::shared_ptr<evp_pkey_st> key_;
  std::string raw_public_key_;
};

// Ed25519Verify(public_pem, message, signature) is OK only if `signature`
// is a valid signature of `message` by the key; InvalidArgument for a bad
// key, PermissionDenied for a signature that does not verify (including
// one of the wrong length).
absl::Status Ed25519Verify(absl::string_view public_pem,
                           absl::string_view message,
                           absl::string_view signature);

// Ed25519KeyId(public_pem) names a key in logs and in signed data: the first
// 16 lower-case hex characters of SHA-256 over the raw 32-byte public key,
// e.g. "3d4017c3e843895a". InvalidArgument for a bad key.
absl::StatusOr<std::string> Ed25519KeyId(absl::string_view public_pem);

}  // namespace warden::crypto

#endif  // WARDEN_COMMON_CRYPTO_H_
