// libFuzzer target: SCIM's JSON handling (controlplane/scim/patch), which
// takes what identity providers send. The first byte picks a mode: 0 a
// PATCH body applied to a User, 1 to a Group with members, 2 the
// `attr eq "value"` splitter on raw text.
//
// Invariants (abort() when violated):
//   - a body that is not an object with a non-empty Operations list is
//     refused;
//   - every refusal is InvalidArgument with a message;
//   - whatever is applied, the resource stays a JSON object that
//     serializes and parses back to itself;
//   - a split has a non-empty attribute.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "controlplane/scim/patch.h"

namespace {

namespace scim = warden::controlplane::scim;
using Json = nlohmann::json;

void Check(bool ok) {
  if (!ok) abort();
}

void Patch(const std::string& text, bool is_user) {
  const Json body = Json::parse(text, nullptr, false);
  if (body.is_discarded()) return;
  Json resource =
      is_user
          ? Json{{"userName", "alice@example.com"},
                 {"active", true},
                 {"name", {{"givenName", "Alice"}}},
                 {"emails", {{{"type", "work"}, {"value", "a@example.com"}}}},
                 {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                  {{"department", "ops"}}}}
          : Json{{"displayName", "dba"},
                 {"members", {{{"value", "u1"}}, {{"value", "u2"}}}}};
  const absl::Status s = scim::ApplyPatch(body, is_user, &resource);
  const Json* ops = body.is_object() ? scim::Member(body, "Operations") : nullptr;
  if (ops == nullptr || !ops->is_array() || ops->empty()) Check(!s.ok());
  if (!s.ok()) {
    Check(s.code() == absl::StatusCode::kInvalidArgument);
    Check(!s.message().empty());
  }
  Check(resource.is_object());
  const std::string dumped =
      resource.dump(-1, ' ', false, Json::error_handler_t::replace);
  const Json again = Json::parse(dumped, nullptr, false);
  Check(!again.is_discarded() && again.is_object());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      Patch(text, true);
      break;
    case 1:
      Patch(text, false);
      break;
    case 2:
      if (auto split = scim::SplitEq(text)) Check(!split->first.empty());
      break;
  }
  return 0;
}
