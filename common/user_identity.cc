#include "common/user_identity.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"

namespace warden {
namespace {

constexpr absl::string_view kUserPrefix = "spiffe://warden/user/";
constexpr absl::string_view kGroupPrefix = "spiffe://warden/group/";
constexpr absl::string_view kIdpPrefix = "spiffe://warden/idp/";

bool Unreserved(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentEncode(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    if (Unreserved(c)) {
      out.push_back(c);
    } else {
      const unsigned char b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xf]);
    }
  }
  return out;
}

absl::StatusOr<std::string> PercentDecode(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", text, "' ends in a partial %-escape"));
      }
      const int a = HexValue(text[i + 1]);
      const int b = HexValue(text[i + 2]);
      if (a < 0 || b < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", text, "' has a bad %-escape"));
      }
      out.push_back(static_cast<char>(a * 16 + b));
      i += 2;
    } else if (Unreserved(c)) {
      out.push_back(c);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "' has an unencoded '", std::string(1, c),
                       "'"));
    }
  }
  if (out.empty()) return absl::InvalidArgumentError("an empty name");
  return out;
}

std::vector<std::string> UserUris(const UserIdentity& identity) {
  std::vector<std::string> uris;
  uris.push_back(absl::StrCat(kUserPrefix, PercentEncode(identity.user)));
  for (const auto& g : identity.groups) {
    uris.push_back(absl::StrCat(kGroupPrefix, PercentEncode(g)));
  }
  uris.push_back(absl::StrCat(kIdpPrefix, PercentEncode(identity.provider)));
  return uris;
}

absl::StatusOr<UserIdentity> UserIdentityFromUris(
    const std::vector<std::string>& uris) {
  UserIdentity out;
  bool has_user = false, has_idp = false;
  for (const auto& uri : uris) {
    absl::string_view rest = uri;
    std::string* into = nullptr;
    bool* seen = nullptr;
    if (absl::ConsumePrefix(&rest, kUserPrefix)) {
      into = &out.user;
      seen = &has_user;
    } else if (absl::ConsumePrefix(&rest, kIdpPrefix)) {
      into = &out.provider;
      seen = &has_idp;
    } else if (absl::ConsumePrefix(&rest, kGroupPrefix)) {
      auto group = PercentDecode(rest);
      if (!group.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("group URI ", uri, ": ", group.status().message()));
      }
      out.groups.push_back(*std::move(group));
      continue;
    } else {
      continue;
    }
    if (*seen) {
      return absl::InvalidArgumentError(
          absl::StrCat("the certificate names more than one ",
                       into == &out.user ? "user" : "identity provider"));
    }
    auto name = PercentDecode(rest);
    if (!name.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("URI ", uri, ": ", name.status().message()));
    }
    *into = *std::move(name);
    *seen = true;
  }
  if (!has_user) {
    return absl::NotFoundError("the certificate names no Warden user");
  }
  if (!has_idp) {
    return absl::InvalidArgumentError(
        "the certificate names no identity provider");
  }
  return out;
}

}  // namespace warden
