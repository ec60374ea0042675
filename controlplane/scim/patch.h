// The JSON side of SCIM: case-insensitive attribute access (RFC 7643
// 2.1), the `attr eq "value"` comparison, and PATCH (RFC 7644 3.5.2) as
// Okta and Entra ID send it. Pure functions over nlohmann::json, without
// exceptions; fuzzed by tests/fuzz/scim_patch_fuzz.cc.
#ifndef WARDEN_CONTROLPLANE_SCIM_PATCH_H_
#define WARDEN_CONTROLPLANE_SCIM_PATCH_H_

#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace warden::controlplane::scim {

using Json = nlohmann::json;

inline constexpr char kUserSchema[] =
    "urn:ietf:params:scim:schemas:core:2.0:User";
inline constexpr char kGroupSchema[] =
    "urn:ietf:params:scim:schemas:core:2.0:Group";
inline constexpr char kPatchSchema[] =
    "urn:ietf:params:scim:api:messages:2.0:PatchOp";

// The key of `object` that spells `name` ignoring case, or null (also for
// a non-object).
const std::string* FindKey(const Json& object, absl::string_view name);
const Json* Member(const Json& object, absl::string_view name);
std::optional<std::string> StringMember(const Json& object,
                                        absl::string_view name);
// A boolean, or the strings "true"/"false" in any case (Entra ID).
std::optional<bool> AsBool(const Json& v);
// `object[name]`, reusing the spelling already there; `object` must be an
// object.
Json& Slot(Json& object, absl::string_view name);
void EraseKey(Json& object, absl::string_view name);

// Splits `text` at its top-level " eq " into attribute and value (quotes
// and escapes removed); nullopt when there is none.
std::optional<std::pair<std::string, std::string>> SplitEq(
    absl::string_view text);

// Applies a PatchOp body to `resource` (a User when `is_user`, else a
// Group, members included). InvalidArgument with the reason for a body or
// operation it cannot apply; `resource` may then be partly changed, so
// callers patch a copy.
absl::Status ApplyPatch(const Json& patch, bool is_user, Json* resource);

}  // namespace warden::controlplane::scim

#endif  // WARDEN_CONTROLPLANE_SCIM_PATCH_H_
