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
constexpr absl::string_view kKindPrefix = "spiffe://warden/kind/";

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

bool IsIdentityKind(absl::string_view kind) {
  return kind == "human" || kind == "agent" || kind == "service";
}

std::vector<std::string> UserUris(const UserIdentity& identity) {
  std::vector<std::string> uris;
  uris.push_back(absl::StrCat(kUserPrefix, PercentEncode(identity.user)));
  for (const auto& g : identity.groups) {
    uris.push_back(absl::StrCat(kGroupPrefix, PercentEncode(g)));
  }
  uris.push_back(absl::StrCat(kIdpPrefix, PercentEncode(identity.provider)));
  if (!identity.kind.empty()) {
    uris.push_back(absl::StrCat(kKindPrefix, PercentEncode(identity.kind)));
  }
  return uris;
}

absl::StatusOr<UserIdentity> UserIdentityFromUris(
    const std::vector<std::string>& uris) {
  // The names a certificate carries once: where each goes, and whether seen.
  struct Single {
    absl::string_view prefix;
    const char* what;
    std::string* into;
    bool seen = false;
  };
  UserIdentity out;
  Single singles[] = {{kUserPrefix, "user", &out.user},
                      {kIdpPrefix, "identity provider", &out.provider},
                      {kKindPrefix, "identity kind", &out.kind}};
  for (const auto& uri : uris) {
    absl::string_view rest = uri;
    if (absl::ConsumePrefix(&rest, kGroupPrefix)) {
      auto group = PercentDecode(rest);
      if (!group.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("group URI ", uri, ": ", group.status().message()));
      }
      out.groups.push_back(*std::move(group));
      continue;
    }
    Single* single = nullptr;
    for (Single& s : singles) {
      if (absl::ConsumePrefix(&rest, s.prefix)) {
        single = &s;
        break;
      }
    }
    if (single == nullptr) continue;  // not a user URI
    if (single->seen) {
      return absl::InvalidArgumentError(
          absl::StrCat("the certificate names more than one ", single->what));
    }
    auto name = PercentDecode(rest);
    if (!name.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("URI ", uri, ": ", name.status().message()));
    }
    *single->into = *std::move(name);
    single->seen = true;
  }
  if (!singles[0].seen) {
    return absl::NotFoundError("the certificate names no Warden user");
  }
  if (!singles[1].seen) {
    return absl::InvalidArgumentError(
        "the certificate names no identity provider");
  }
  if (!singles[2].seen) {
    // Issued before certificates carried the kind: reading it as human
    // would turn an agent into a person for every policy.
    return absl::FailedPreconditionError(
        "certificate from an older warden-control carries no identity kind; "
        "run `wardenctl login` again");
  }
  if (!IsIdentityKind(out.kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the certificate names an unknown identity kind '",
                     out.kind.substr(0, 40), "' (human, agent or service)"));
  }
  return out;
}

}  // namespace warden
