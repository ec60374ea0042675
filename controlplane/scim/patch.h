// The JSON side of SCIM: case-insensitive attribute access (RFC 7643
// 2.1), the `attr eq "value"` comparison, and PATCH (RFC 7644 3.5.2) as
// Okta and Entra ID send it. Pure functions over nlohmann::json, without
// exceptions; fuzzed by tests/fuzz/scim_patch_fuzz.cc.
#ifndef WARDEN_CONTROLPLANE_SCIM_PATCH_H_
#define WARDEN_CONTROLPLANE_SCIM_PATCH_H_

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

// How deep a SCIM body, and a resource Warden stores, may nest objects and
// arrays (the top-level object is level 1). Okta and Entra ID send at most
// about 5 levels. nlohmann-json's dump(), copy and comparison recurse once
// per level, so without a limit a body nested 200,000 deep overflows the
// stack of warden-control.
inline constexpr size_t kMaxJsonDepth = 32;

// The deepest nesting of objects and arrays in `text`, by one linear scan
// that skips JSON strings (and their escapes); nothing recursive runs.
// Checks nesting only: for any text a JSON parser accepts it is the depth
// of the parsed value, for other text at least the depth a parser builds
// before it stops. E.g. JsonDepth(R"({"a": [1, "]]"]})") == 2,
// JsonDepth("7") == 0.
size_t JsonDepth(absl::string_view text);

// Parses `text` as JSON without exceptions, refusing before nlohmann-json
// sees it text nested deeper than kMaxJsonDepth: InvalidArgument
// "nested deeper than 32 levels of objects and arrays (the limit)" or
// "not JSON".
absl::StatusOr<Json> ParseJson(absl::string_view text);

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
