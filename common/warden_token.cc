#include "common/warden_token.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/crypto.h"

namespace warden {
namespace {

constexpr size_t kIdHex = 16;
constexpr size_t kSecretHex = 64;

bool IsHex(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
           (c >= 'a' && c <= 'f');
  });
}

}  // namespace

absl::StatusOr<WardenToken> ParseWardenToken(absl::string_view text) {
  const size_t tag = kWardenTokenTag.size();
  if (text.size() != tag + kIdHex + 1 + kSecretHex ||
      !absl::StartsWith(text, kWardenTokenTag) || text[tag + kIdHex] != '_' ||
      !IsHex(text.substr(tag, kIdHex)) ||
      !IsHex(text.substr(tag + kIdHex + 1))) {
    return absl::InvalidArgumentError(
        "malformed token (expected wdn_<16 hex>_<64 hex>)");
  }
  return WardenToken{absl::StrCat("tok_", text.substr(tag, kIdHex)),
                     std::string(text.substr(tag + kIdHex + 1))};
}

std::string FormatWardenToken(absl::string_view id, absl::string_view secret) {
  return absl::StrCat(kWardenTokenTag, absl::StripPrefix(id, "tok_"), "_",
                      secret);
}

std::string WardenTokenSecretHash(absl::string_view secret) {
  return crypto::HexEncode(crypto::Sha256(secret));
}

}  // namespace warden
