// Policy revisions: pushed sources are compiled with policy/lang (invalid
// ones refused with their diagnostics), signed with the control plane's
// Ed25519 key (policy/bundle) and committed through the ordered log. The
// revision is the log index: monotonic across the control plane, never
// reused. History is kept; a rollback is a new revision with old content.
#ifndef WARDEN_CONTROLPLANE_BUNDLES_BUNDLES_H_
#define WARDEN_CONTROLPLANE_BUNDLES_BUNDLES_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "policy/lang/compile.h"
#include "proto/warden/v1/state.pb.h"

namespace warden::controlplane::bundles {

struct SigningKey {
  std::string private_pem;  // Ed25519, PKCS#8 PEM.
};

struct PushResult {
  uint64_t revision = 0;  // the new head; for a dry run, 0.
  std::string digest;     // content digest of the compiled bundle.
  bool unchanged = false;  // same content as the head: nothing committed.
};

class Bundles {
 public:
  // Not owned; must outlive this.
  Bundles(state::StateMachine* state, const store::Store* store,
          SigningKey key);

  // Fills the keys of a compiled bundle's identity providers (and its
  // digest): controlplane/idp in warden-control. Without one, a push with
  // identity providers is refused.
  using KeyResolver = std::function<absl::Status(warden::v1::PolicyBundle*)>;
  void SetKeyResolver(KeyResolver resolver) {
    resolver_ = std::move(resolver);
  }

  // The active service tokens (hashes) every revision carries; without
  // one, bundles carry none.
  using ServiceTokenSource = std::function<
      absl::StatusOr<std::vector<warden::v1::ServiceToken>>()>;
  void SetServiceTokens(ServiceTokenSource source) {
    service_tokens_ = std::move(source);
  }
  // The directory (SCIM users and groups) every revision carries; without
  // one, bundles carry none.
  using DirectorySource = std::function<
      absl::StatusOr<std::vector<warden::v1::DirectoryEntry>>()>;
  void SetDirectory(DirectorySource source) { directory_ = std::move(source); }

  // Publishes the head revision again with the service tokens and the
  // directory in force now, if they differ from the ones it carries (a
  // token was created, revoked or expired; SCIM changed a user or group).
  // `unchanged` otherwise, and before the first push.
  absl::StatusOr<PushResult> RefreshIdentities(const std::string& created_by,
                                               absl::Time now);

  // Fetches the head revision's identity-provider keys again; when any
  // changed, publishes the same policies with the new keys as a new
  // revision (created by `created_by`). `unchanged` otherwise.
  absl::StatusOr<PushResult> RefreshKeys(const std::string& created_by,
                                         absl::Time now);

  // Push compiles `sources`. Invalid: InvalidArgument listing every
  // diagnostic (file:line:col), also in `diagnostics` if given. Content
  // identical to the head: `unchanged`, no new revision. `dry_run`:
  // compile and compare only.
  absl::StatusOr<PushResult> Push(
      const std::vector<policy::lang::SourceFile>& sources,
      const std::string& message, const std::string& created_by,
      absl::Time now, bool dry_run,
      std::vector<policy::lang::Diagnostic>* diagnostics = nullptr);

  // Rollback publishes the content of `to_revision` as a new revision
  // (rollback_of = to_revision). NotFound for an unknown revision.
  absl::StatusOr<PushResult> Rollback(uint64_t to_revision,
                                      const std::string& message,
                                      const std::string& created_by,
                                      absl::Time now);

  // Get returns a revision (0: the head). NotFound when there is none.
  absl::StatusOr<warden::v1::BundleRecord> Get(uint64_t revision) const;

  // History returns up to `limit` revisions below `before` (0: from the
  // newest), newest first.
  absl::StatusOr<std::vector<warden::v1::BundleRecord>> History(
      size_t limit, uint64_t before = 0) const;

  // The head revision; 0 before the first push.
  absl::StatusOr<uint64_t> Head() const;

 private:
  using Sources = google::protobuf::RepeatedPtrField<warden::v1::PolicySource>;
  // A stored revision (0: the head) and its bundle, decoded.
  struct Revision {
    warden::v1::BundleRecord record;
    warden::v1::PolicyBundle bundle;
    uint64_t revision() const { return record.signed_bundle().revision(); }
  };
  absl::StatusOr<Revision> Load(uint64_t revision) const;

  absl::StatusOr<PushResult> Publish(const warden::v1::PolicyBundle& bundle,
                                     const Sources& sources,
                                     const std::string& message,
                                     const std::string& created_by,
                                     absl::Time now, uint64_t rollback_of);

  state::StateMachine* const state_;
  const store::Store* const store_;
  // Puts the current service tokens and directory into `bundle` and
  // re-digests it.
  absl::Status WithIdentities(warden::v1::PolicyBundle* bundle) const;

  const SigningKey key_;
  KeyResolver resolver_;
  ServiceTokenSource service_tokens_;
  DirectorySource directory_;
  // Serializes publications (push, rollback, refreshes): each reads the
  // head and commits its successor without another in between.
  absl::Mutex publish_mu_;
};

}  // namespace warden::controlplane::bundles

#endif  // WARDEN_CONTROLPLANE_BUNDLES_BUNDLES_H_
