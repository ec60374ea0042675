// Which proxies are enrolled, and with which certificate: one identity per
// proxy id, bound to the key its certificate certifies.
//
// A bootstrap token lets a proxy enroll under an id that is not taken; an
// id already enrolled (or one that already has audit events or fleet
// status, from before this registry) is refused, so a token without a
// proxy id cannot borrow a running proxy's name and write into its audit
// sequence. Renewal moves the binding to the new certificate (the one it
// renewed stays valid until it expires, in case the answer was lost);
// revocation ends the binding, and every call of that proxy is refused
// from then on. The CA's enrollment check (ca::Authority) asks Check on
// every proxy call (Watch, Append, Renew).
//
// Records go through the ordered log like every other change
// (LogEntry.put_proxy), in the tokens column under "proxy/".
#ifndef WARDEN_CONTROLPLANE_PROXIES_REGISTRY_H_
#define WARDEN_CONTROLPLANE_PROXIES_REGISTRY_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/proxy_identity.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "proto/warden/v1/state.pb.h"

namespace warden::controlplane::proxies {

class Registry {
 public:
  // Not owned. `has_history(environment, proxy_id)` says whether an id
  // unknown to the registry was in use before it existed (audit events,
  // fleet status); such an id is not free.
  using HistoryFn = std::function<absl::StatusOr<bool>(
      const std::string& environment, const std::string& proxy_id)>;
  Registry(state::StateMachine* state, const store::Store* store,
           HistoryFn has_history);

  // Enrolls `identity` (environment and id) if its id is free: calls
  // `issue` (which spends the token and issues the certificate, returning
  // its serial) and records the binding, decided against the whole log
  // (two enrollments of one id, on one replica or two, cannot both
  // succeed). ALREADY_EXISTS when taken.
  absl::Status Enroll(const ProxyIdentity& identity, const std::string& actor,
                      absl::Time now,
                      const std::function<absl::StatusOr<std::string>()>& issue);

  // How long after a renewal the certificate it replaced may renew once
  // more (the proxy crashed before it stored the new one).
  static constexpr absl::Duration kRenewRetryWindow = absl::Minutes(5);

  // Moves the binding of `identity` (authenticated with its
  // certificate_serial) to `new_serial`. PermissionDenied when revoked,
  // or when the certificate is not the current one (the one it replaced
  // may retry within kRenewRetryWindow, unless the current one has been
  // used since).
  absl::Status Renewed(const ProxyIdentity& identity,
                       const std::string& new_serial, absl::Time now);

  // Ends the binding. NotFound for an id never enrolled here.
  absl::StatusOr<warden::v1::ProxyRecord> Revoke(
      const std::string& environment, const std::string& proxy_id,
      const std::string& actor, const std::string& reason, absl::Time now);

  // OK when the certificate `identity` was read from may speak for it:
  // its serial is the bound one (or the one it renewed) and the proxy is
  // not revoked. An id with no record (enrolled before the registry) is
  // accepted. PERMISSION_DENIED with the reason otherwise.
  // The first call with a certificate after its renewal records that the
  // proxy has it (ProxyRecord.current_used): the certificate it replaced
  // may no longer renew.
  absl::Status Check(const ProxyIdentity& identity);

  absl::StatusOr<std::vector<warden::v1::ProxyRecord>> List() const;

  // The record of one proxy; NotFound when it was never enrolled here.
  absl::StatusOr<warden::v1::ProxyRecord> Get(
      const std::string& environment, const std::string& proxy_id) const {
    return Load(environment, proxy_id);
  }

  static std::string Key(const std::string& environment,
                         const std::string& proxy_id);

 private:
  absl::StatusOr<warden::v1::ProxyRecord> Load(
      const std::string& environment, const std::string& proxy_id) const;
  // Commits the record `decide` returns (nothing for nullopt), decided
  // where its entry gets its index (StateMachine::CommitAt): `decide`
  // reads the latest records, and runs again if another replica appended
  // first.
  absl::Status Decide(
      const std::function<
          absl::StatusOr<std::optional<warden::v1::ProxyRecord>>()>& decide);
  // OK when `identity`'s id is free: not enrolled (or revoked) in its
  // environment, and no look-alike id enrolled in any.
  absl::Status Free(const ProxyIdentity& identity) const;

  state::StateMachine* const state_;
  const store::Store* const store_;
  const HistoryFn has_history_;
  absl::Mutex mu_;  // serializes every change of a record
};

}  // namespace warden::controlplane::proxies

#endif  // WARDEN_CONTROLPLANE_PROXIES_REGISTRY_H_
