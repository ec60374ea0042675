#include "controlplane/scim/scim.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/user_identity.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "controlplane/scim/patch.h"
#include "nlohmann/json.hpp"
#include "common/names.h"

namespace warden::controlplane::scim {
namespace {

using absl::EqualsIgnoreCase;
using warden::v1::DirectoryGroup;
using warden::v1::DirectoryUser;

constexpr char kListSchema[] =
    "urn:ietf:params:scim:api:messages:2.0:ListResponse";
constexpr char kErrorSchema[] = "urn:ietf:params:scim:api:messages:2.0:Error";
constexpr int kMaxCount = 1000;

// A failed request: HTTP status, SCIM scimType (may be empty) and detail.
struct Fault {
  int status;
  std::string scim_type;
  std::string detail;
};

Response ErrorResponse(const Fault& f) {
  return scim::ErrorResponse(f.status, f.scim_type, f.detail);
}

Fault FromStatus(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kAlreadyExists:
      return {409, "uniqueness", std::string(s.message())};
    case absl::StatusCode::kNotFound:
      return {404, "", std::string(s.message())};
    case absl::StatusCode::kInvalidArgument:
      return {400, "invalidValue", std::string(s.message())};
    default:
      return {500, "", std::string(s.message())};
  }
}

std::string Timestamp(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

std::string ETag(uint64_t version) { return absl::StrCat("W/\"", version, "\""); }

// A resource as the directory stores it (written by UserFromResource or
// GroupFromResource, so an object within kMaxJsonDepth); an empty object
// for anything else.
Json StoredResource(const std::string& resource_json) {
  auto parsed = ParseJson(resource_json);
  if (!parsed.ok() || !parsed->is_object()) return Json::object();
  return *std::move(parsed);
}

// The resource as the directory will store it, or InvalidArgument when it
// nests deeper than kMaxJsonDepth (a PATCH value placed under a path).
absl::StatusOr<std::string> StoredJson(const Json& resource) {
  std::string text =
      resource.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (JsonDepth(text) > kMaxJsonDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("the resource would nest deeper than ", kMaxJsonDepth,
                     " levels of objects and arrays (the limit)"));
  }
  return text;
}

// Drops what the server owns from a resource as the client sent it.
void StripServerAttributes(Json* resource) {
  for (const char* name : {"id", "meta", "schemas"}) EraseKey(*resource, name);
}

// Checks that `resource` is an object with a non-blank string `attribute`,
// drops what the server owns from it, and returns the name, trimmed.
absl::StatusOr<std::string> Name(Json* resource, absl::string_view type,
                                 absl::string_view attribute) {
  if (!resource->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a ", type, " must be a JSON object"));
  }
  StripServerAttributes(resource);
  const auto name = StringMember(*resource, attribute);
  if (!name || absl::StripAsciiWhitespace(*name).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(attribute, " is required"));
  }
  const absl::string_view trimmed = absl::StripAsciiWhitespace(*name);
  // Names are how people are told apart in policies and in the audit
  // trail: none may pass on screen for another one.
  if (absl::Status s = CheckNameIsDistinct(trimmed); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(attribute, " ", s.message()));
  }
  return std::string(trimmed);
}

// ---- Users ----

// What one user may carry. Every proxy receives the directory in its
// policy bundle (names, aliases, active, groups, attributes), so one user's
// size is every proxy's business: no identity provider sends more than a
// few e-mails or attributes of a few hundred bytes.
constexpr size_t kMaxUserNameBytes = 256;
constexpr size_t kMaxEmails = 16;
constexpr size_t kMaxEmailBytes = 256;
constexpr size_t kMaxUserResourceBytes = 64 * 1024;
constexpr size_t kMaxMatchedAttributeBytes = 256;
constexpr char kEnterpriseSchema[] =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

absl::StatusOr<DirectoryUser> UserFromResource(Json resource) {
  auto user_name = Name(&resource, "User", "userName");
  if (!user_name.ok()) return user_name.status();
  if (user_name->size() > kMaxUserNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "userName is longer than ", kMaxUserNameBytes, " bytes"));
  }
  DirectoryUser user;
  user.set_user_name(*std::move(user_name));
  user.set_external_id(StringMember(resource, "externalId").value_or(""));
  bool active = true;
  if (const Json* a = Member(resource, "active")) {
    auto b = AsBool(*a);
    if (!b) return absl::InvalidArgumentError("active must be a boolean");
    active = *b;
    Slot(resource, "active") = active;
  }
  user.set_active(active);
  if (const Json* emails = Member(resource, "emails")) {
    if (!emails->is_array()) {
      return absl::InvalidArgumentError("emails must be an array");
    }
    if (emails->size() > kMaxEmails) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a user may have at most ", kMaxEmails, " emails"));
    }
    for (const Json& e : *emails) {
      if (!e.is_object()) {
        return absl::InvalidArgumentError("each email must be an object");
      }
      if (auto value = StringMember(e, "value")) {
        if (value->size() > kMaxEmailBytes) {
          return absl::InvalidArgumentError(absl::StrCat(
              "an email value is longer than ", kMaxEmailBytes, " bytes"));
        }
        if (absl::Status s = CheckNameIsDistinct(*value); !s.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("an email value ", s.message()));
        }
        user.add_emails(*value);
      }
    }
  }
  // The attributes policies match travel to every proxy in every bundle
  // revision (red team: 2,600 users with 30 KB titles made a 78 MB bundle
  // and a deactivation took 20 s to arrive): each is a short string.
  const auto check_matched = [](const Json& object,
                                std::initializer_list<const char*> names)
      -> absl::Status {
    if (!object.is_object()) return absl::OkStatus();
    for (auto it = object.begin(); it != object.end(); ++it) {
      for (const char* name : names) {
        if (absl::EqualsIgnoreCase(it.key(), name) && it->is_string() &&
            it->get<std::string>().size() > kMaxMatchedAttributeBytes) {
          return absl::InvalidArgumentError(absl::StrCat(
              name, " is longer than ", kMaxMatchedAttributeBytes,
              " bytes (policies match it, and every proxy receives it with "
              "every policy revision)"));
        }
      }
    }
    return absl::OkStatus();
  };
  if (absl::Status s = check_matched(resource, {"title", "userType"});
      !s.ok()) {
    return s;
  }
  for (auto it = resource.begin(); it != resource.end(); ++it) {
    if (absl::EqualsIgnoreCase(it.key(), kEnterpriseSchema)) {
      if (absl::Status s = check_matched(
              *it, {"department", "organization", "division", "costCenter",
                    "employeeNumber"});
          !s.ok()) {
        return s;
      }
    }
  }
  auto stored = StoredJson(resource);
  if (!stored.ok()) return stored.status();
  if (stored->size() > kMaxUserResourceBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the user resource is larger than ", kMaxUserResourceBytes / 1024,
        " KiB (every proxy receives the directory)"));
  }
  user.set_resource_json(*std::move(stored));
  return user;
}

Json UserJson(const DirectoryUser& user, const std::string& base_url) {
  Json out = StoredResource(user.resource_json());
  Json schemas = Json::array({kUserSchema});
  for (auto it = out.begin(); it != out.end(); ++it) {
    if (absl::StartsWith(it.key(), "urn:")) schemas.push_back(it.key());
  }
  out["schemas"] = std::move(schemas);
  out["id"] = user.id();
  Slot(out, "userName") = user.user_name();
  Slot(out, "active") = user.active();
  out["meta"] = {{"resourceType", "User"},
                 {"created", Timestamp(user.created_unix_ms())},
                 {"lastModified", Timestamp(user.modified_unix_ms())},
                 {"version", ETag(user.version())},
                 {"location", absl::StrCat(base_url, "/Users/", user.id())}};
  return out;
}

// ---- Groups ----

absl::StatusOr<DirectoryGroup> GroupFromResource(Json resource) {
  auto name = Name(&resource, "Group", "displayName");
  if (!name.ok()) return name.status();
  // Every member's directory entry carries the group's name to every proxy
  // (red team: one 1 MB name with 5 members added 5 MB to each revision).
  if (name->size() > kMaxMatchedAttributeBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "displayName is longer than ", kMaxMatchedAttributeBytes,
        " bytes (every proxy receives it with each member)"));
  }
  DirectoryGroup group;
  group.set_display_name(*std::move(name));
  group.set_external_id(StringMember(resource, "externalId").value_or(""));
  if (const Json* members = Member(resource, "members")) {
    if (!members->is_array() && !members->is_null()) {
      return absl::InvalidArgumentError("members must be an array");
    }
    if (members->is_array()) {
      for (const Json& m : *members) {
        auto value = m.is_object() ? StringMember(m, "value") : std::nullopt;
        if (!value) {
          return absl::InvalidArgumentError(
              "each member must be an object with a string value (a user "
              "id)");
        }
        group.add_member_ids(*value);
      }
    }
    EraseKey(resource, "members");
  }
  auto stored = StoredJson(resource);
  if (!stored.ok()) return stored.status();
  group.set_resource_json(*std::move(stored));
  return group;
}

Json GroupJson(const DirectoryGroup& group, const directory::Directory& dir,
               const std::string& base_url, bool with_members) {
  Json out = StoredResource(group.resource_json());
  out["schemas"] = Json::array({kGroupSchema});
  out["id"] = group.id();
  Slot(out, "displayName") = group.display_name();
  if (with_members) {
    Json members = Json::array();
    for (const std::string& id : group.member_ids()) {
      Json m = {{"value", id},
                {"$ref", absl::StrCat(base_url, "/Users/", id)},
                {"type", "User"}};
      if (auto user = dir.GetUser(id); user.ok()) m["display"] = user->user_name();
      members.push_back(std::move(m));
    }
    out["members"] = std::move(members);
  }
  out["meta"] = {{"resourceType", "Group"},
                 {"created", Timestamp(group.created_unix_ms())},
                 {"lastModified", Timestamp(group.modified_unix_ms())},
                 {"version", ETag(group.version())},
                 {"location", absl::StrCat(base_url, "/Groups/", group.id())}};
  return out;
}

// A group resource with its members, for PATCH to work on.
Json GroupResourceForPatch(const DirectoryGroup& group) {
  Json out = StoredResource(group.resource_json());
  Slot(out, "displayName") = group.display_name();
  Json members = Json::array();
  for (const std::string& id : group.member_ids()) {
    members.push_back({{"value", id}});
  }
  out["members"] = std::move(members);
  return out;
}

// ---- Lists ----

struct Filter {
  std::string attr;  // lower case: username, externalid, id, emails.value,
                     // displayname
  std::string value;
};

absl::StatusOr<std::optional<Filter>> ParseFilter(
    const std::map<std::string, std::string>& query, bool is_user) {
  auto it = query.find("filter");
  if (it == query.end() || absl::StripAsciiWhitespace(it->second).empty()) {
    return std::optional<Filter>();
  }
  auto eq = SplitEq(it->second);
  if (!eq) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported filter \"", it->second,
        "\": Warden's SCIM endpoint filters with `attribute eq \"value\"`"));
  }
  std::string attr = absl::AsciiStrToLower(eq->first);
  // emails[type eq "work"].value: any e-mail of the user.
  if (absl::StartsWith(attr, "emails")) attr = "emails.value";
  for (absl::string_view prefix : {absl::string_view(kUserSchema),
                                   absl::string_view(kGroupSchema)}) {
    const std::string p = absl::StrCat(absl::AsciiStrToLower(prefix), ":");
    if (absl::StartsWith(attr, p)) attr = attr.substr(p.size());
  }
  const std::vector<std::string> allowed =
      is_user ? std::vector<std::string>{"username", "externalid", "id",
                                         "emails.value", "displayname"}
              : std::vector<std::string>{"displayname", "externalid", "id"};
  if (std::find(allowed.begin(), allowed.end(), attr) == allowed.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot filter on ", eq->first, "; filter on ",
        is_user ? "userName, externalId, id, emails.value or displayName"
                : "displayName, externalId or id"));
  }
  return std::optional<Filter>(Filter{attr, eq->second});
}

bool UserMatches(const DirectoryUser& user, const Filter& f) {
  if (f.attr == "username") return SameName(user.user_name(), f.value);
  if (f.attr == "externalid") return user.external_id() == f.value;
  if (f.attr == "id") return user.id() == f.value;
  if (f.attr == "emails.value") {
    return std::any_of(user.emails().begin(), user.emails().end(),
                       [&](const std::string& e) {
                         return SameName(e, f.value);
                       });
  }
  const Json resource = StoredResource(user.resource_json());
  return StringMember(resource, "displayName") == f.value;
}

bool GroupMatches(const DirectoryGroup& group, const Filter& f) {
  if (f.attr == "displayname") {
    return SameName(group.display_name(), f.value);
  }
  if (f.attr == "externalid") return group.external_id() == f.value;
  return group.id() == f.value;
}

absl::StatusOr<std::pair<size_t, size_t>> Page(
    const std::map<std::string, std::string>& query) {
  int64_t start = 1, count = 100;
  if (auto it = query.find("startIndex"); it != query.end()) {
    if (!absl::SimpleAtoi(it->second, &start)) {
      return absl::InvalidArgumentError("startIndex must be a number");
    }
  }
  if (auto it = query.find("count"); it != query.end()) {
    if (!absl::SimpleAtoi(it->second, &count)) {
      return absl::InvalidArgumentError("count must be a number");
    }
  }
  start = std::max<int64_t>(start, 1);
  count = std::clamp<int64_t>(count, 0, kMaxCount);
  return std::make_pair(static_cast<size_t>(start), static_cast<size_t>(count));
}

Response ListResponse(const std::vector<Json>& all, size_t start,
                      size_t count) {
  Json resources = Json::array();
  for (size_t i = start - 1; i < all.size() && resources.size() < count; ++i) {
    resources.push_back(all[i]);
  }
  Json body = {{"schemas", {kListSchema}},
               {"totalResults", all.size()},
               {"startIndex", start},
               {"itemsPerPage", resources.size()},
               {"Resources", std::move(resources)}};
  return Response{200, body.dump(-1, ' ', false, Json::error_handler_t::replace), "", ""};
}

bool ExcludesMembers(const std::map<std::string, std::string>& query) {
  auto it = query.find("excludedAttributes");
  return it != query.end() &&
         absl::StrContains(absl::AsciiStrToLower(it->second), "members");
}

Response ServiceProviderConfig() {
  Json body = {
      {"schemas",
       {"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"}},
      {"patch", {{"supported", true}}},
      {"bulk", {{"supported", false}, {"maxOperations", 0}, {"maxPayloadSize", 0}}},
      {"filter", {{"supported", true}, {"maxResults", kMaxCount}}},
      {"changePassword", {{"supported", false}}},
      {"sort", {{"supported", false}}},
      {"etag", {{"supported", true}}},
      {"authenticationSchemes",
       {{{"type", "oauthbearertoken"},
         {"name", "Bearer token"},
         {"description",
          "A Warden API token with the scim scope (wardenctl tokens create "
          "NAME --scope scim)"}}}}};
  return Response{200, body.dump(-1, ' ', false, Json::error_handler_t::replace), "", ""};
}

Response ResourceTypes(const std::string& base_url) {
  Json user = {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}},
               {"id", "User"},
               {"name", "User"},
               {"endpoint", "/Users"},
               {"schema", kUserSchema},
               {"meta", {{"resourceType", "ResourceType"},
                         {"location", base_url + "/ResourceTypes/User"}}}};
  Json group = {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}},
                {"id", "Group"},
                {"name", "Group"},
                {"endpoint", "/Groups"},
                {"schema", kGroupSchema},
                {"meta", {{"resourceType", "ResourceType"},
                          {"location", base_url + "/ResourceTypes/Group"}}}};
  return ListResponse({user, group}, 1, kMaxCount);
}

Response Schemas() {
  Json user = {{"id", kUserSchema},
               {"name", "User"},
               {"attributes",
                Json::array({{{"name", "userName"},
                              {"type", "string"},
                              {"required", true},
                              {"uniqueness", "server"}},
                             {{"name", "active"}, {"type", "boolean"}},
                             {{"name", "emails"},
                              {"type", "complex"},
                              {"multiValued", true}}})}};
  Json group = {{"id", kGroupSchema},
                {"name", "Group"},
                {"attributes",
                 Json::array({{{"name", "displayName"},
                               {"type", "string"},
                               {"required", true}},
                              {{"name", "members"},
                               {"type", "complex"},
                               {"multiValued", true}}})}};
  return ListResponse({user, group}, 1, kMaxCount);
}

std::string MemberDelta(const DirectoryGroup& before,
                        const DirectoryGroup& after) {
  std::set<std::string> old_ids(before.member_ids().begin(),
                                before.member_ids().end());
  std::set<std::string> new_ids(after.member_ids().begin(),
                                after.member_ids().end());
  int added = 0, removed = 0;
  for (const auto& id : new_ids) added += old_ids.count(id) == 0;
  for (const auto& id : old_ids) removed += new_ids.count(id) == 0;
  return absl::StrCat(after.member_ids_size(), " members (+", added, " -",
                      removed, ")");
}

}  // namespace

Response ErrorResponse(int status, absl::string_view scim_type,
                       absl::string_view detail) {
  Json body = {{"schemas", {kErrorSchema}},
               {"status", std::to_string(status)},
               {"detail", std::string(detail)}};
  if (!scim_type.empty()) body["scimType"] = std::string(scim_type);
  return Response{status,
                  body.dump(-1, ' ', false, Json::error_handler_t::replace),
                  "", ""};
}

Service::Service(directory::Directory* directory, Authorize authorize,
                 Changed changed, Refused refused)
    : directory_(directory),
      authorize_(std::move(authorize)),
      changed_(std::move(changed)),
      refused_(std::move(refused)) {}

namespace {

// A path or method as the record shows it: each '/'-separated segment
// percent-encoded (red team pass 10: a decoded path with spaces wrote
// ": from 10.66.6.6, ..." into the refusal's line before the real peer,
// and bytes that are not UTF-8 became U+FFFD).
std::string EncodeForRecord(absl::string_view text) {
  return absl::StrJoin(absl::StrSplit(text, '/'), "/",
                       [](std::string* out, absl::string_view segment) {
                         out->append(PercentEncode(segment));
                       });
}

}  // namespace

Response Service::Handle(const Request& request, absl::Time now) const {
  absl::string_view auth = request.authorization;
  // "POST /Users/<id>", at most 200 bytes of it, for the refusal's record.
  const auto call = [&request] {
    absl::string_view path = request.path;
    // Only the prefix itself ("/scim/v2Users" stays as it came).
    if (path == "/scim/v2" || absl::StartsWith(path, "/scim/v2/")) {
      path.remove_prefix(8);
    }
    return absl::StrCat(EncodeForRecord(request.method.substr(0, 16)), " ",
                        EncodeForRecord(path.substr(0, 180)));
  };
  if (!absl::ConsumePrefix(&auth, "Bearer ") &&
      !absl::ConsumePrefix(&auth, "bearer ")) {
    if (refused_) {
      refused_(request.peer, call(),
               absl::UnauthenticatedError("no bearer token"));
    }
    return ErrorResponse({401, "",
                          "send a Warden token with the scim scope as "
                          "\"Authorization: Bearer <token>\""});
  }
  auto actor = authorize_(absl::StripAsciiWhitespace(auth));
  if (!actor.ok()) {
    // The token could not be checked (a cluster replica that cannot reach
    // etcd): 503, which a provider retries, not 401, which it may take for
    // bad credentials and stop provisioning (red team).
    if (absl::IsUnavailable(actor.status()) ||
        absl::IsDeadlineExceeded(actor.status())) {
      return ErrorResponse({503, "", std::string(actor.status().message())});
    }
    if (refused_) refused_(request.peer, call(), actor.status());
    return ErrorResponse(
        {absl::IsPermissionDenied(actor.status()) ? 403 : 401, "",
         std::string(actor.status().message())});
  }
  absl::string_view path = request.path;
  if (!absl::ConsumePrefix(&path, "/scim/v2")) {
    return ErrorResponse({404, "", "SCIM is served under /scim/v2"});
  }
  absl::ConsumeSuffix(&path, "/");
  const std::string& method = request.method;
  // Size and nesting are checked before nlohmann-json sees the body.
  const auto parse_body = [&](Json* out) -> std::optional<Fault> {
    if (request.body.size() > kMaxBodyBytes) {
      return Fault{413, "",
                   absl::StrCat("the body is larger than ",
                                kMaxBodyBytes >> 20, " MiB (the limit)")};
    }
    auto parsed = ParseJson(request.body);
    if (!parsed.ok()) {
      return Fault{400, "invalidSyntax",
                   absl::StrCat("the body is ", parsed.status().message())};
    }
    if (!parsed->is_object()) {
      return Fault{400, "invalidSyntax", "the body is not a JSON object"};
    }
    *out = *std::move(parsed);
    return std::nullopt;
  };

  if (path == "/ServiceProviderConfig" && method == "GET") {
    return ServiceProviderConfig();
  }
  if (path == "/ResourceTypes" && method == "GET") {
    return ResourceTypes(request.base_url);
  }
  if (path == "/Schemas" && method == "GET") return Schemas();

  const bool users = absl::ConsumePrefix(&path, "/Users");
  const bool groups = !users && absl::ConsumePrefix(&path, "/Groups");
  if (!users && !groups) {
    return ErrorResponse({404, "", absl::StrCat("no SCIM resource at ",
                                                request.path)});
  }
  std::string id;
  if (!path.empty()) {
    if (path.front() != '/' || path.substr(1).find('/') != absl::string_view::npos) {
      return ErrorResponse({404, "", absl::StrCat("no SCIM resource at ",
                                                  request.path)});
    }
    id = std::string(path.substr(1));
  }

  if (users) {
    const auto respond = [&](const DirectoryUser& u, int status) {
      Response r{status, UserJson(u, request.base_url).dump(-1, ' ', false, Json::error_handler_t::replace), "",
                 ETag(u.version())};
      if (status == 201) r.location = request.base_url + "/Users/" + u.id();
      return r;
    };
    const auto commit = [&](const DirectoryUser* before, DirectoryUser after,
                            int status) -> Response {
      auto stored = directory_->PutUser(std::move(after), *actor, now);
      if (!stored.ok()) return ErrorResponse(FromStatus(stored.status()));
      std::string action = "directory.user.update";
      if (before == nullptr) {
        action = "directory.user.create";
      } else if (before->active() && !stored->active()) {
        action = "directory.user.deactivate";
      } else if (!before->active() && stored->active()) {
        action = "directory.user.reactivate";
      }
      changed_(Change{*actor, action, stored->user_name(),
                      absl::StrCat("id ", stored->id(), ", ",
                                   stored->active() ? "active" : "inactive")});
      return respond(*stored, status);
    };
    if (id.empty() && method == "POST") {
      Json body;
      if (auto fault = parse_body(&body)) return ErrorResponse(*fault);
      auto user = UserFromResource(std::move(body));
      if (!user.ok()) return ErrorResponse(FromStatus(user.status()));
      return commit(nullptr, *std::move(user), 201);
    }
    if (id.empty() && method == "GET") {
      auto filter = ParseFilter(request.query, true);
      if (!filter.ok()) {
        return ErrorResponse({400, "invalidFilter",
                              std::string(filter.status().message())});
      }
      auto page = Page(request.query);
      if (!page.ok()) return ErrorResponse(FromStatus(page.status()));
      std::vector<DirectoryUser> found;
      if (filter->has_value() && (*filter)->attr == "username") {
        // The common case (Okta and Entra ID look users up by userName
        // before creating them) reads one key.
        auto user = directory_->FindUser((*filter)->value);
        if (user.ok()) {
          found.push_back(*std::move(user));
        } else if (!absl::IsNotFound(user.status())) {
          return ErrorResponse(FromStatus(user.status()));
        }
      } else {
        auto all = directory_->Users();
        if (!all.ok()) return ErrorResponse(FromStatus(all.status()));
        for (DirectoryUser& u : *all) {
          if (!filter->has_value() || UserMatches(u, **filter)) {
            found.push_back(std::move(u));
          }
        }
      }
      std::vector<Json> resources;
      for (const DirectoryUser& u : found) {
        resources.push_back(UserJson(u, request.base_url));
      }
      return ListResponse(resources, page->first, page->second);
    }
    if (id.empty()) {
      return ErrorResponse({405, "", absl::StrCat(method, " /Users is not "
                                                          "supported")});
    }
    auto current = directory_->GetUser(id);
    if (!current.ok()) return ErrorResponse(FromStatus(current.status()));
    if (method == "GET") return respond(*current, 200);
    if (method == "DELETE") {
      if (absl::Status s = directory_->DeleteUser(id, *actor, now); !s.ok()) {
        return ErrorResponse(FromStatus(s));
      }
      changed_(Change{*actor, "directory.user.delete", current->user_name(),
                      absl::StrCat("id ", id)});
      return Response{204, "", "", ""};
    }
    if (method == "PUT" || method == "PATCH") {
      Json body;
      if (auto fault = parse_body(&body)) return ErrorResponse(*fault);
      Json resource;
      if (method == "PUT") {
        resource = std::move(body);
      } else {
        resource = StoredResource(current->resource_json());
        Slot(resource, "userName") = current->user_name();
        Slot(resource, "active") = current->active();
        if (absl::Status s = ApplyPatch(body, true, &resource); !s.ok()) {
          return ErrorResponse(FromStatus(s));
        }
      }
      auto user = UserFromResource(std::move(resource));
      if (!user.ok()) return ErrorResponse(FromStatus(user.status()));
      user->set_id(id);
      return commit(&*current, *std::move(user), 200);
    }
    return ErrorResponse({405, "", absl::StrCat(method, " /Users/{id} is not "
                                                        "supported")});
  }

  // Groups.
  const auto commit = [&](const DirectoryGroup* before, DirectoryGroup after,
                          int status, bool with_body) -> Response {
    auto stored = directory_->PutGroup(std::move(after), *actor, now);
    if (!stored.ok()) return ErrorResponse(FromStatus(stored.status()));
    changed_(Change{*actor,
                    before == nullptr ? "directory.group.create"
                                      : "directory.group.update",
                    stored->display_name(),
                    absl::StrCat("id ", stored->id(), ", ",
                                 MemberDelta(before != nullptr
                                                 ? *before
                                                 : DirectoryGroup(),
                                             *stored))});
    if (!with_body) return Response{204, "", "", ETag(stored->version())};
    Response r{status,
               GroupJson(*stored, *directory_, request.base_url, true).dump(-1, ' ', false, Json::error_handler_t::replace),
               "", ETag(stored->version())};
    if (status == 201) r.location = request.base_url + "/Groups/" + stored->id();
    return r;
  };
  if (id.empty() && method == "POST") {
    Json body;
    if (auto fault = parse_body(&body)) return ErrorResponse(*fault);
    auto group = GroupFromResource(std::move(body));
    if (!group.ok()) return ErrorResponse(FromStatus(group.status()));
    return commit(nullptr, *std::move(group), 201, true);
  }
  if (id.empty() && method == "GET") {
    auto filter = ParseFilter(request.query, false);
    if (!filter.ok()) {
      return ErrorResponse(
          {400, "invalidFilter", std::string(filter.status().message())});
    }
    auto page = Page(request.query);
    if (!page.ok()) return ErrorResponse(FromStatus(page.status()));
    auto all = directory_->Groups();
    if (!all.ok()) return ErrorResponse(FromStatus(all.status()));
    std::vector<Json> resources;
    const bool with_members = !ExcludesMembers(request.query);
    for (const DirectoryGroup& g : *all) {
      if (!filter->has_value() || GroupMatches(g, **filter)) {
        resources.push_back(
            GroupJson(g, *directory_, request.base_url, with_members));
      }
    }
    return ListResponse(resources, page->first, page->second);
  }
  if (id.empty()) {
    return ErrorResponse(
        {405, "", absl::StrCat(method, " /Groups is not supported")});
  }
  auto current = directory_->GetGroup(id);
  if (!current.ok()) return ErrorResponse(FromStatus(current.status()));
  if (method == "GET") {
    return Response{200,
                    GroupJson(*current, *directory_, request.base_url,
                              !ExcludesMembers(request.query))
                        .dump(-1, ' ', false, Json::error_handler_t::replace),
                    "", ETag(current->version())};
  }
  if (method == "DELETE") {
    if (absl::Status s = directory_->DeleteGroup(id, *actor); !s.ok()) {
      return ErrorResponse(FromStatus(s));
    }
    changed_(Change{*actor, "directory.group.delete", current->display_name(),
                    absl::StrCat("id ", id)});
    return Response{204, "", "", ""};
  }
  if (method == "PUT" || method == "PATCH") {
    Json body;
    if (auto fault = parse_body(&body)) return ErrorResponse(*fault);
    Json resource;
    if (method == "PUT") {
      resource = std::move(body);
    } else {
      resource = GroupResourceForPatch(*current);
      if (absl::Status s = ApplyPatch(body, false, &resource); !s.ok()) {
        return ErrorResponse(FromStatus(s));
      }
    }
    auto group = GroupFromResource(std::move(resource));
    if (!group.ok()) return ErrorResponse(FromStatus(group.status()));
    group->set_id(id);
    // PATCH answers 204 (as Okta and Entra ID accept); PUT the group.
    return commit(&*current, *std::move(group), 200, method == "PUT");
  }
  return ErrorResponse(
      {405, "", absl::StrCat(method, " /Groups/{id} is not supported")});
}

}  // namespace warden::controlplane::scim
