// Signs checkpoints of the audit log (C2SP tlog-checkpoint in a signed
// note, Ed25519) in the background: at least every `busy_interval` while
// the log grows, and every `idle_interval` when it does not, so a consumer
// can always verify what it has against a recent signed size and root.
#ifndef WARDEN_CONTROLPLANE_AUDIT_CHECKPOINTER_H_
#define WARDEN_CONTROLPLANE_AUDIT_CHECKPOINTER_H_

#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/crypto.h"
#include "controlplane/audit/ledger.h"

namespace warden::controlplane::audit {

struct SignedCheckpoint {
  std::string note;  // the signed note
  uint64_t size = 0;
  std::string root_hash;
  absl::Time signed_at = absl::InfinitePast();
};

class Checkpointer {
 public:
  // `private_pem`: the Ed25519 audit key. The origin and key name are
  // "warden/audit/<key id>" (common/crypto Ed25519KeyId), unique per key.
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Create(
      const Ledger* ledger, std::string private_pem,
      absl::Duration busy_interval = absl::Seconds(1),
      absl::Duration idle_interval = absl::Minutes(1));
  ~Checkpointer();  // Stop()s.

  // Signs the current tree now if it differs from the last checkpoint or
  // `force`; returns the latest checkpoint.
  absl::StatusOr<SignedCheckpoint> SignNow(bool force = false);
  // Start signs in a background thread until Stop().
  void Start();
  void Stop();

  SignedCheckpoint latest() const;
  const std::string& origin() const { return origin_; }
  // C2SP verifier key ("<name>+<hash>+<key>") for wardenctl audit verify.
  const std::string& verifier_key() const { return verifier_key_; }

 private:
  Checkpointer(const Ledger* ledger, crypto::Ed25519Signer key,
               std::string origin, std::string verifier_key,
               absl::Duration busy, absl::Duration idle);

  const Ledger* const ledger_;
  const crypto::Ed25519Signer key_;  // decoded once
  const std::string origin_;
  const std::string verifier_key_;
  const absl::Duration busy_;
  const absl::Duration idle_;
  mutable absl::Mutex mu_;
  SignedCheckpoint latest_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace warden::controlplane::audit

#endif  // WARDEN_CONTROLPLANE_AUDIT_CHECKPOINTER_H_
