// SCIM 2.0 (RFC 7643/7644) over the directory: what Okta's and Entra ID's
// provisioning send to keep Warden's users and groups in step with the
// identity provider. Transport-free (controlplane/scim/server puts it on
// HTTPS), so the protocol is tested without sockets.
//
// Served, under /scim/v2:
//   GET    /ServiceProviderConfig, /ResourceTypes, /Schemas
//   POST   /Users, /Groups                       create (201; 409 if taken)
//   GET    /Users, /Groups                       list; filter `attr eq "v"`
//                                                (userName, externalId, id,
//                                                emails.value, displayName),
//                                                startIndex, count,
//                                                excludedAttributes=members
//   GET    /Users/{id}, /Groups/{id}
//   PUT    /Users/{id}, /Groups/{id}             replace
//   PATCH  /Users/{id}, /Groups/{id}             PatchOp: add, replace,
//                                                remove; with or without a
//                                                path, value filters
//                                                (`members[value eq "id"]`,
//                                                `emails[type eq "work"].value`)
//                                                and schema URNs
//   DELETE /Users/{id}, /Groups/{id}             204
// Deactivating a user (`active: false`, as Okta and Entra ID send it, also
// the string "False") or deleting one takes effect on every proxy with the
// next bundle: the user is refused and their open sessions are closed.
//
// Bodies are refused before they are parsed when larger than kMaxBodyBytes
// (413) or nested deeper than kMaxJsonDepth (patch.h; 400 invalidSyntax).
#ifndef WARDEN_CONTROLPLANE_SCIM_SCIM_H_
#define WARDEN_CONTROLPLANE_SCIM_SCIM_H_

#include <cstddef>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controlplane/directory/directory.h"

namespace warden::controlplane::scim {

// The largest request body served: a group PATCH with thousands of members
// stays well below it. Larger bodies get 413 (the HTTPS listener refuses
// them before reading them).
inline constexpr size_t kMaxBodyBytes = size_t{8} << 20;

struct Request {
  std::string method;  // GET, POST, PUT, PATCH, DELETE
  std::string path;    // e.g. "/scim/v2/Users/<id>"
  std::map<std::string, std::string> query;  // decoded
  std::string body;
  std::string authorization;  // the Authorization header
  std::string peer;           // the client's address, for refusals
  // "https://host:port/scim/v2", for meta.location.
  std::string base_url;
};

struct Response {
  int status = 200;
  std::string body;      // application/scim+json; empty for 204
  std::string location;  // 201: the new resource
  std::string etag;      // W/"<version>" of a returned resource
};

// A SCIM error response (RFC 7644 3.12): `status`, the error object with
// `scimType` unless `scim_type` is empty, and `detail`. For what the
// transport refuses itself (e.g. 413 for a body over kMaxBodyBytes).
Response ErrorResponse(int status, absl::string_view scim_type,
                       absl::string_view detail);

// One committed change, for the control plane's audit log.
struct Change {
  std::string actor;   // the bearer token's name
  std::string action;  // e.g. "directory.user.deactivate"
  std::string target;  // userName or displayName
  std::string detail;
};

class Service {
 public:
  // Checks a bearer token (without "Bearer "): the caller's name, or
  // Unauthenticated / PermissionDenied with the reason.
  using Authorize =
      std::function<absl::StatusOr<std::string>(absl::string_view token)>;
  // Called after every committed change (to audit and republish bundles).
  using Changed = std::function<void(const Change& change)>;
  // Called for every request refused for its credentials (401, 403), with
  // the peer, the call ("POST /Users") and why: audited like every other
  // refused API call.
  using Refused = std::function<void(const std::string& peer,
                                     const std::string& call,
                                     const absl::Status& why)>;

  // `directory` is not owned and must outlive this.
  Service(directory::Directory* directory, Authorize authorize,
          Changed changed, Refused refused = nullptr);

  // Thread-safe (the directory serializes writes).
  Response Handle(const Request& request, absl::Time now) const;

 private:
  directory::Directory* const directory_;
  const Authorize authorize_;
  const Changed changed_;
  const Refused refused_;
};

}  // namespace warden::controlplane::scim

#endif  // WARDEN_CONTROLPLANE_SCIM_SCIM_H_
