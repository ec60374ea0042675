#include "controlplane/audit/checkpoint.h"

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/crypto.h"
#include "common/status_macros.h"
#include "controlplane/audit/merkle.h"

namespace warden::controlplane::audit {
namespace {

// "— ": U+2014 EM DASH in UTF-8, then a space.
constexpr absl::string_view kSigPrefix = "\xe2\x80\x94 ";
constexpr char kEd25519Type = '\x01';
constexpr size_t kKeyHashSize = 4;
constexpr size_t kEd25519KeySize = 32;
constexpr size_t kMaxSignatures = 100;  // as Go's golang.org/x/mod/sumdb/note.
bool IsValidKeyName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c <= 0x20 || c >= 0x7f || c == '+')
      return false;  // also bytes >= 0x80.
  }
  return true;
}

absl::Status CheckKeyName(absl::string_view name) {
  if (!IsValidKeyName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key name \"", absl::CHexEscape(name),
        "\" must be non-empty printable ASCII without spaces or '+'"));
  }
  return absl::OkStatus();
}

// Valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)
// with no control character but '\n'.
bool IsValidNoteText(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n') || c == 0x7f) return false;
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t j = 1; j < len; ++j) {
      const unsigned char cc = static_cast<unsigned char>(s[i + j]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    if (cp >= 0x80 && cp < 0xa0) return false;  // C1 controls.
    i += len;
  }
  return true;
}

absl::Status CheckNoteText(absl::string_view text) {
  if (text.empty() || text.back() != '\n') {
    return absl::InvalidArgumentError("note text must end with a newline");
  }
  if (text.front() == '\n' || text.find("\n\n") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "note text must not contain a blank line");
  }
  if (!IsValidNoteText(text)) {
    return absl::InvalidArgumentError(
        "note text must be UTF-8 without control characters other than "
        "newline");
  }
  return absl::OkStatus();
}

// Standard padded base64 in its one canonical spelling.
absl::StatusOr<std::string> DecodeCanonicalBase64(absl::string_view what,
                                                  absl::string_view text) {
  absl::StatusOr<std::string> decoded = crypto::Base64Decode(text);
  if (!decoded.ok() || crypto::Base64Encode(*decoded) != text) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not canonical padded base64"));
  }
  return decoded;
}

std::string KeyLabel(absl::string_view name, absl::string_view key_hash) {
  return absl::StrCat(name, "+", absl::BytesToHexString(key_hash));
}

struct SignatureLine {
  absl::string_view name;
  std::string key_hash;   // 4 bytes.
  std::string signature;  // the rest.
};

absl::StatusOr<SignatureLine> ParseSignatureLine(size_t number,
                                                 absl::string_view line) {
  const std::string where = absl::StrCat("signature line ", number + 1);
  if (!absl::ConsumePrefix(&line, kSigPrefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " does not start with an em dash and a space"));
  }
  const size_t space = line.find(' ');
  if (space == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " has no space between key name and signature"));
  }
  SignatureLine sig;
  sig.name = line.substr(0, space);
  const absl::string_view b64 = line.substr(space + 1);
  // Other signers may use any UTF-8 name (already checked note-wide) that
  // has no '+'; spaces cannot occur before the first one.
  if (sig.name.empty() || sig.name.find('+') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " has an empty key name or one with '+'"));
  }
  absl::StatusOr<std::string> raw =
      DecodeCanonicalBase64(absl::StrCat(where, ": signature"), b64);
  if (!raw.ok()) return raw.status();
  if (raw->size() <= kKeyHashSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": signature is ", raw->size(),
                     " bytes, too short for a key "
                     "hash and a signature"));
  }
  sig.key_hash = raw->substr(0, kKeyHashSize);
  sig.signature = raw->substr(kKeyHashSize);
  return sig;
}

}  // namespace

bool operator==(const Checkpoint& a, const Checkpoint& b) {
  return a.origin == b.origin && a.size == b.size && a.root_hash == b.root_hash;
}

absl::StatusOr<std::string> CheckpointBody(const Checkpoint& checkpoint) {
  if (checkpoint.origin.empty()) {
    return absl::InvalidArgumentError("checkpoint origin is empty");
  }
  for (char c : checkpoint.origin) {
    if (c < 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(
          "checkpoint origin must be printable ASCII");
    }
  }
  if (checkpoint.root_hash.size() != kHashSize) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint root hash is ",
                                                   checkpoint.root_hash.size(),
                                                   " bytes, want ", kHashSize));
  }
  return absl::StrCat(checkpoint.origin, "\n", checkpoint.size, "\n",
                      crypto::Base64Encode(checkpoint.root_hash), "\n");
}

absl::StatusOr<Checkpoint> ParseCheckpointBody(absl::string_view body) {
  if (body.empty() || body.back() != '\n') {
    return absl::InvalidArgumentError("checkpoint must end with a newline");
  }
  body.remove_suffix(1);
  std::vector<absl::string_view> lines = absl::StrSplit(body, '\n');
  if (lines.size() < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint has ", lines.size(),
                     " lines, want origin, size and root hash"));
  }
  if (lines.size() > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint has ", lines.size() - 3,
                     " extension lines; extensions are not supported"));
  }
  Checkpoint checkpoint;
  // Origin.
  if (lines[0].empty()) {
    return absl::InvalidArgumentError("checkpoint origin line is empty");
  }
  for (char c : lines[0]) {
    if (c < 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(
          "checkpoint origin line must be printable ASCII");
    }
  }
  checkpoint.origin = std::string(lines[0]);
  // Size.
  const absl::string_view size = lines[1];
  bool digits = !size.empty() && size.size() <= 20;
  for (char c : size) digits = digits && c >= '0' && c <= '9';
  if (!digits || (size.size() > 1 && size[0] == '0') ||
      !absl::SimpleAtoi(size, &checkpoint.size)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint size line \"", absl::CHexEscape(size),
        "\" is not a decimal uint64 without sign or leading zeros"));
  }
  // Root hash.
  WARDEN_ASSIGN_OR_RETURN(
      checkpoint.root_hash,
      DecodeCanonicalBase64("checkpoint root hash line", lines[2]));
  if (checkpoint.root_hash.size() != kHashSize) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint root hash is ",
                                                   checkpoint.root_hash.size(),
                                                   " bytes, want ", kHashSize));
  }
  return checkpoint;
}

std::string KeyHash(absl::string_view name, absl::string_view raw_public_key) {
  return crypto::Sha256(absl::StrCat(name, "\n",
                                     absl::string_view(&kEd25519Type, 1),
                                     raw_public_key))
      .substr(0, kKeyHashSize);
}

absl::StatusOr<std::string> VerifierKey(absl::string_view name,
                                        absl::string_view public_pem) {
  WARDEN_RETURN_IF_ERROR(CheckKeyName(name));
  WARDEN_ASSIGN_OR_RETURN(std::string raw,
                          crypto::Ed25519RawPublicKey(public_pem));
  return absl::StrCat(name, "+", absl::BytesToHexString(KeyHash(name, raw)),
                      "+",
                      crypto::Base64Encode(absl::StrCat(
                          absl::string_view(&kEd25519Type, 1), raw)));
}

absl::StatusOr<ParsedVerifierKey> ParseVerifierKey(absl::string_view text) {
  // The name and the hash hold no '+'; the base64 key may.
  std::vector<absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits('+', 2));
  if (parts.size() != 3) {
    return absl::InvalidArgumentError(
        "verifier key must be <name>+<hex key hash>+<base64 key>");
  }
  WARDEN_RETURN_IF_ERROR(CheckKeyName(parts[0]));
  const absl::string_view hex = parts[1];
  bool ok_hex = hex.size() == 2 * kKeyHashSize;
  for (char c : hex) {
    ok_hex = ok_hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  }
  if (!ok_hex) {
    return absl::InvalidArgumentError(
        "verifier key hash must be 8 lower-case hex digits");
  }
  WARDEN_ASSIGN_OR_RETURN(std::string key,
                          DecodeCanonicalBase64("verifier key", parts[2]));
  if (key.size() != 1 + kEd25519KeySize || key[0] != kEd25519Type) {
    return absl::InvalidArgumentError(
        "verifier key is not 0x01 (Ed25519) followed by a 32-byte key");
  }
  ParsedVerifierKey parsed;
  parsed.name = std::string(parts[0]);
  parsed.key_hash = absl::HexStringToBytes(hex);
  parsed.raw_public_key = key.substr(1);
  if (KeyHash(parsed.name, parsed.raw_public_key) != parsed.key_hash) {
    return absl::InvalidArgumentError(
        "verifier key hash does not match its name and key");
  }
  absl::StatusOr<std::string> pem =
      crypto::Ed25519PublicKeyFromRaw(parsed.raw_public_key);
  if (!pem.ok()) {
    return absl::InvalidArgumentError(
        "verifier key is not a usable Ed25519 key");
  }
  parsed.public_pem = *std::move(pem);
  return parsed;
}

absl::StatusOr<std::string> SignNote(absl::string_view text,
                                     absl::string_view key_name,
                                     absl::string_view private_pem) {
  WARDEN_ASSIGN_OR_RETURN(crypto::Ed25519Signer key,
                          crypto::Ed25519Signer::FromPem(private_pem));
  return SignNote(text, key_name, key);
}

absl::StatusOr<std::string> SignNote(absl::string_view text,
                                     absl::string_view key_name,
                                     const crypto::Ed25519Signer& key) {
  WARDEN_RETURN_IF_ERROR(CheckNoteText(text));
  WARDEN_RETURN_IF_ERROR(CheckKeyName(key_name));
  WARDEN_ASSIGN_OR_RETURN(std::string signature, key.Sign(text));
  return absl::StrCat(
      text, "\n", kSigPrefix, key_name, " ",
      crypto::Base64Encode(
          absl::StrCat(KeyHash(key_name, key.raw_public_key()), signature)),
      "\n");
}

absl::StatusOr<std::string> VerifyNote(absl::string_view note,
                                       absl::string_view verifier_key) {
  WARDEN_ASSIGN_OR_RETURN(ParsedVerifierKey key,
                          ParseVerifierKey(verifier_key));
  if (!IsValidNoteText(note)) {
    return absl::InvalidArgumentError(
        "note must be UTF-8 without control characters other than newline");
  }
  const size_t split = note.rfind("\n\n");
  if (split == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "note has no blank line between text and signatures");
  }
  const absl::string_view text = note.substr(0, split + 1);
  absl::string_view sigs = note.substr(split + 2);
  WARDEN_RETURN_IF_ERROR(CheckNoteText(text));
  if (sigs.empty()) {
    return absl::InvalidArgumentError("note has no signature lines");
  }
  if (sigs.back() != '\n') {
    return absl::InvalidArgumentError(
        "note's last signature line does not end with a newline");
  }
  sigs.remove_suffix(1);
  std::vector<absl::string_view> lines = absl::StrSplit(sigs, '\n');
  if (lines.size() > kMaxSignatures) {
    return absl::InvalidArgumentError(
        absl::StrCat("note has ", lines.size(), " signatures, at most ",
                     kMaxSignatures, " are accepted"));
  }
  const std::string label = KeyLabel(key.name, key.key_hash);
  bool verified = false;
  std::string same_name_other_hash;
  for (size_t i = 0; i < lines.size(); ++i) {
    WARDEN_ASSIGN_OR_RETURN(SignatureLine sig, ParseSignatureLine(i, lines[i]));
    if (sig.name != key.name) continue;  // another signer: ignored.
    if (sig.key_hash != key.key_hash) {
      same_name_other_hash = KeyLabel(sig.name, sig.key_hash);
      continue;  // another key of that name (e.g. rotated): ignored.
    }
    absl::Status status =
        crypto::Ed25519Verify(key.public_pem, text, sig.signature);
    if (!status.ok()) {
      return absl::PermissionDeniedError(
          absl::StrCat("signature line ", i + 1, " by key ", label,
                       " does not verify: ", status.message()));
    }
    verified = true;
  }
  if (!verified) {
    std::string msg = absl::StrCat("note has no signature by key ", label);
    if (!same_name_other_hash.empty()) {
      absl::StrAppend(&msg, " (one is by ", same_name_other_hash,
                      ", a different key of the same name)");
    }
    return absl::PermissionDeniedError(msg);
  }
  return std::string(text);
}

absl::StatusOr<std::string> SignCheckpoint(const Checkpoint& checkpoint,
                                           absl::string_view key_name,
                                           absl::string_view private_pem) {
  WARDEN_ASSIGN_OR_RETURN(std::string body, CheckpointBody(checkpoint));
  return SignNote(body, key_name, private_pem);
}

absl::StatusOr<Checkpoint> VerifyCheckpoint(absl::string_view note,
                                            absl::string_view verifier_key) {
  WARDEN_ASSIGN_OR_RETURN(std::string text, VerifyNote(note, verifier_key));
  return ParseCheckpointBody(text);
}

}  // namespace warden::controlplane::audit
