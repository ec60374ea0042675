#include "common/oidc_claims.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace warden::oidc {

absl::StatusOr<MappedIdentity> MapClaims(const jwt::Claims& claims,
                                         const ClaimRules& rules) {
  for (const auto& [name, want] : rules.required_claims) {
    const std::string got = claims.String(name);
    if (got != want) {
      return absl::PermissionDeniedError(
          absl::StrCat("claim '", name, "' is '", got, "', ", rules.provider,
                       " requires '", want, "'"));
    }
  }
  // Some providers (Entra ID) send no email_verified; one that is sent must
  // say true (a boolean, or the string "true"): 0, null or "no" are not a
  // verification (red team).
  if (rules.user_claim == "email") {
    const bool present = claims.strings.count("email_verified") > 0 ||
                         claims.string_lists.count("email_verified") > 0 ||
                         claims.other_types.count("email_verified") > 0;
    if (present && !(claims.strings.count("email_verified") > 0 &&
                     absl::EqualsIgnoreCase(claims.String("email_verified"),
                                            "true"))) {
      return absl::PermissionDeniedError(
          "the token's email is not verified by the provider "
          "(email_verified is not true)");
    }
  }
  MappedIdentity out;
  out.user = claims.String(rules.user_claim);
  if (out.user.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the token has no '", rules.user_claim, "' claim to name the user"));
  }
  for (const auto& claim : rules.groups_claims) {
    for (auto& g : claims.List(claim)) {
      if (std::find(out.groups.begin(), out.groups.end(), g) ==
          out.groups.end()) {
        out.groups.push_back(std::move(g));
      }
    }
  }
  return out;
}

ClaimRules ClaimRulesFromSpec(const warden::v1::IdentityProviderSpec& spec) {
  ClaimRules rules;
  rules.provider = spec.name();
  if (!spec.user_claim().empty()) rules.user_claim = spec.user_claim();
  if (spec.groups_claims_size() > 0) {
    rules.groups_claims.assign(spec.groups_claims().begin(),
                               spec.groups_claims().end());
  }
  for (const auto& cv : spec.required_claims()) {
    rules.required_claims.emplace_back(cv.claim(), cv.value());
  }
  return rules;
}

jwt::VerifyOptions VerifyOptionsFromSpec(
    const warden::v1::IdentityProviderSpec& spec) {
  jwt::VerifyOptions options;
  options.issuer = spec.issuer();
  options.audiences.assign(spec.audiences().begin(), spec.audiences().end());
  if (spec.algorithms_size() > 0) {
    options.algorithms.assign(spec.algorithms().begin(),
                              spec.algorithms().end());
  }
  if (spec.clock_skew_seconds() > 0) {
    options.clock_skew = absl::Seconds(spec.clock_skew_seconds());
  }
  if (spec.max_token_lifetime_seconds() > 0) {
    options.max_lifetime = absl::Seconds(spec.max_token_lifetime_seconds());
  }
  return options;
}

}  // namespace warden::oidc
