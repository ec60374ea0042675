// Signed checkpoints of the audit log in the C2SP formats, so that standard
// tooling (witnesses, sigsum/transparency-dev verifiers) can read them:
//
//   https://c2sp.org/tlog-checkpoint  the body:
//     <origin>\n<decimal tree size>\n<base64 root hash>\n
//   https://c2sp.org/signed-note      the envelope: body, one blank line,
//     then one or more lines "— <key name> <base64(key hash || sig)>\n"
//     (U+2014 EM DASH, a space), each an Ed25519 signature over the body.
//
// Ed25519 key hash: the first 4 bytes of SHA-256(key name || "\n" || 0x01 ||
// 32-byte raw public key). A verifier key travels as the text
// "<name>+<8 lower-case hex of the key hash>+<base64(0x01 || public key)>".
//
// Parsing is strict and fails closed. Extension lines after the root hash
// are refused (Warden writes none). Errors: InvalidArgument for text that is
// not a well-formed note, checkpoint or key; PermissionDenied when the note
// is well formed but carries no valid signature by the trusted key.
//
// Thread-safety: all functions are pure and may be called concurrently.
#ifndef WARDEN_CONTROLPLANE_AUDIT_CHECKPOINT_H_
#define WARDEN_CONTROLPLANE_AUDIT_CHECKPOINT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto.h"

namespace warden::controlplane::audit {

struct Checkpoint {
  // Names the log, e.g. "warden.example.com/audit/prod". Printable ASCII
  // (0x20..0x7e), not empty.
  std::string origin;
  // Number of leaves in the tree.
  uint64_t size = 0;
  // MTH of the first `size` leaves: 32 raw bytes (see merkle.h).
  std::string root_hash;
};

bool operator==(const Checkpoint& a, const Checkpoint& b);
inline bool operator!=(const Checkpoint& a, const Checkpoint& b) {
  return !(a == b);
}

// CheckpointBody(c) returns the note text, e.g.
//   "example.com/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n".
// InvalidArgument for an empty or non-printable origin or a root hash that
// is not 32 bytes.
absl::StatusOr<std::string> CheckpointBody(const Checkpoint& checkpoint);

// ParseCheckpointBody(body) is the inverse of CheckpointBody, strictly:
// exactly three '\n'-terminated lines; the size decimal without sign or
// leading zeros ("0" alone is allowed) and within uint64; the root hash
// canonical padded base64 of exactly 32 bytes. InvalidArgument, naming the
// line, otherwise (extension lines included).
absl::StatusOr<Checkpoint> ParseCheckpointBody(absl::string_view body);

// KeyHash(name, raw_public_key) is the 4-byte signed-note key hash of an
// Ed25519 key (no validation; see above).
std::string KeyHash(absl::string_view name, absl::string_view raw_public_key);

// VerifierKey("warden.example.com/audit", public_pem) returns
// "warden.example.com/audit+1a2b3c4d+AT...=". InvalidArgument for a bad key
// name (empty, or containing '+', whitespace or a byte outside printable
// ASCII) or a public key that is not Ed25519 PEM.
absl::StatusOr<std::string> VerifierKey(absl::string_view name,
                                        absl::string_view public_pem);

// The parts of a verifier key string.
struct ParsedVerifierKey {
  std::string name;
  std::string key_hash;        // 4 bytes.
  std::string raw_public_key;  // 32 bytes.
  std::string public_pem;      // the same key as SubjectPublicKeyInfo PEM.
};

// ParseVerifierKey(text) splits and checks a verifier key string: name,
// '+', hash, '+', key (whose base64 may itself contain '+'), a valid name, 8
// lower-case hex digits, base64 of 0x01 followed by 32 bytes, and the key hash
// must match the name and key. InvalidArgument otherwise.
absl::StatusOr<ParsedVerifierKey> ParseVerifierKey(absl::string_view text);

// SignNote(text, key_name, private_pem) returns text, a blank line and one
// signature line. `text` must be non-empty, end in '\n', contain no blank
// line, be valid UTF-8 and hold no control characters other than '\n'.
// InvalidArgument for bad text, name or key.
absl::StatusOr<std::string> SignNote(absl::string_view text,
                                     absl::string_view key_name,
                                     absl::string_view private_pem);
// The same with a key decoded once (a signer of many notes).
absl::StatusOr<std::string> SignNote(absl::string_view text,
                                     absl::string_view key_name,
                                     const crypto::Ed25519Signer& key);

// VerifyNote(note, verifier_key) returns the note's text (with its final
// '\n') if at least one signature line is by `verifier_key` (same name and
// key hash) and every such line verifies. Lines by other keys, including a
// key of the same name but another key hash, are ignored, though each must
// be well formed. InvalidArgument for a malformed note or key (no blank
// line, a line without "— ", bad base64, more than 100 signatures, ...);
// PermissionDenied if no line is by the key or one by it does not verify.
absl::StatusOr<std::string> VerifyNote(absl::string_view note,
                                       absl::string_view verifier_key);

// SignCheckpoint(c, key_name, private_pem) is SignNote(CheckpointBody(c)).
absl::StatusOr<std::string> SignCheckpoint(const Checkpoint& checkpoint,
                                           absl::string_view key_name,
                                           absl::string_view private_pem);

// VerifyCheckpoint(note, verifier_key) is VerifyNote followed by
// ParseCheckpointBody of the signed text. The signature is checked before
// the text is interpreted.
absl::StatusOr<Checkpoint> VerifyCheckpoint(absl::string_view note,
                                            absl::string_view verifier_key);

}  // namespace warden::controlplane::audit

#endif  // WARDEN_CONTROLPLANE_AUDIT_CHECKPOINT_H_
