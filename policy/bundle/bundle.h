// Signed, versioned policy bundles (warden.v1.SignedBundle): the control
// plane signs with SignBundle, every proxy checks with VerifyBundle before
// it applies a policy. One implementation for both planes, so they cannot
// disagree about what was signed.
//
// Canonical signing bytes (CanonicalSigningBytes), in this order:
//
//   "warden-bundle-v1\n"                 domain separation, 17 bytes
//   u64 revision                          field 1
//   u64 parent_revision                   field 2
//   u64 len(bundle)    || bundle          field 3
//   u64 len(digest)    || digest          field 4 (hex text)
//   u64 len(key_id)    || key_id          field 6 (hex text)
//   u64 len(created_by)|| created_by      field 7
//   i64 created_at.seconds                field 8 (unset = 0)
//   i64 created_at.nanos                  field 8 (unset = 0)
//   u64 len(message)   || message         field 9
//   u64 rollback_of                       field 10
//
// Every integer is 8 bytes big-endian (signed values two's complement);
// every string or bytes field is its 8-byte big-endian length followed by
// its bytes. `signature` (field 5) is the only field not covered. This is
// not a protobuf serialization: unknown fields, field order on the wire or
// another encoder cannot change what is verified. A new field in
// SignedBundle means a new prefix ("warden-bundle-v2\n").
//
// Thread-safety: all functions are pure and may be called concurrently.
#ifndef WARDEN_POLICY_BUNDLE_BUNDLE_H_
#define WARDEN_POLICY_BUNDLE_BUNDLE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/warden/v1/bundle.pb.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::policy::bundle {

inline constexpr absl::string_view kSigningDomain = "warden-bundle-v1\n";

// DecodeSignedBundle refuses larger inputs before parsing.
inline constexpr size_t kMaxSignedBundleBytes = size_t{64} << 20;

// What the control plane records about a revision besides its content.
struct BundleMeta {
  // Monotonic, never 0 (the control plane uses its log index).
  uint64_t revision = 0;
  // The revision this one replaces; 0 for the first. Must be < revision.
  uint64_t parent_revision = 0;
  // Who pushed it, e.g. "ci:deploy-policies" or a token name.
  std::string created_by;
  // Must be finite.
  absl::Time created_at = absl::UnixEpoch();
  std::string message;
  // The older revision whose content this one restores; 0 if not a
  // rollback. Must be < revision.
  uint64_t rollback_of = 0;
};

// key id (common/crypto.h Ed25519KeyId) -> Ed25519 public key PEM.
using TrustedKeys = absl::flat_hash_map<std::string, std::string>;

// AddTrustedKey(public_pem, &keys) files the key under its key id.
// InvalidArgument if it is not an Ed25519 public key PEM.
absl::Status AddTrustedKey(absl::string_view public_pem, TrustedKeys* keys);

// CanonicalSigningBytes(signed_bundle) is the byte string the signature
// covers (layout above); `signed_bundle.signature()` is ignored.
std::string CanonicalSigningBytes(
    const warden::v1::SignedBundle& signed_bundle);

// SignBundle serializes `bundle` deterministically, records its digest and
// `meta`, and signs with `private_pem` (Ed25519 PKCS#8 PEM); key_id is
// derived from the key. InvalidArgument if `bundle.digest()` is not its
// content digest (policy/lang ContentDigest: compile it first), if `meta`
// breaks its field rules, or if the key is not an Ed25519 private key.
//
//   auto signed_bundle = SignBundle(*Compile(files), {.revision = 7,
//       .parent_revision = 6, .created_by = "ci"}, key_pem);
absl::StatusOr<warden::v1::SignedBundle> SignBundle(
    const warden::v1::PolicyBundle& bundle, const BundleMeta& meta,
    absl::string_view private_pem);

// VerifyBundle returns the PolicyBundle inside `signed_bundle` only if every
// check passes. The checks run in this order and the first failure is
// returned:
//
//   1. key_id names a key in `keys`            else PermissionDenied
//      ("... unknown key id ...")
//   2. the signature verifies over             else PermissionDenied
//      CanonicalSigningBytes                   ("... signature does not
//                                              verify ..."); InvalidArgument
//                                              if the trusted key is unusable
//   3. digest == hex SHA-256 of `bundle` bytes else DataLoss ("... digest
//                                              ... does not match ...")
//   4. `bundle` parses as PolicyBundle         else InvalidArgument ("...
//                                              does not parse ...")
//   5. the PolicyBundle's own digest equals    else DataLoss ("... content
//      ContentDigest of its policies           digest ...")
//   6. revision fields are consistent:         else InvalidArgument
//      revision != 0, parent_revision <
//      revision, rollback_of < revision
//   7. revision against `running_revision`:    else FailedPrecondition
//      accepted if revision > running_revision;
//      a revision < running_revision only if rollback_of != 0 (a signed
//      rollback); revision == running_revision is refused ("already
//      running": the caller keeps what it has). Pass 0 when nothing runs.
//
// Steps 3-5 after a valid signature mean the signer itself produced a bad
// bundle; they still fail closed.
absl::StatusOr<warden::v1::PolicyBundle> VerifyBundle(
    const warden::v1::SignedBundle& signed_bundle, const TrustedKeys& keys,
    uint64_t running_revision);

// DecodeSignedBundle parses wire or disk bytes. InvalidArgument for
// anything that is not a SignedBundle (including more than
// kMaxSignedBundleBytes); never crashes on garbage, and keeps protobuf from
// logging about it (it logs every invalid UTF-8 string; peers must not be
// able to flood the log). Decoding proves nothing: call VerifyBundle before
// trusting the result.
absl::StatusOr<warden::v1::SignedBundle> DecodeSignedBundle(
    absl::string_view bytes);

}  // namespace warden::policy::bundle

#endif  // WARDEN_POLICY_BUNDLE_BUNDLE_H_
