// DirectoryStage: the identity provider's word on a connected user, applied
// whenever a new policy (which carries Warden's directory) is in force.
//
// A user deactivated or deleted over SCIM, an e-mail alias that now names
// more than one user, or a credential issued before its name changed hands
// ends the session (FATAL 28000) before the next statement reaches the
// database, and at once when idle (OnPolicy). Otherwise the directory's
// groups and attributes join the ones the credential proved, for the
// policy stage's next judgement.
#ifndef WARDEN_DATAPLANE_STAGES_DIRECTORY_STAGE_H_
#define WARDEN_DATAPLANE_STAGES_DIRECTORY_STAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "dataplane/gate/gate.h"
#include "dataplane/stages/stage.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::dataplane::stages {

class DirectoryStage : public Stage {
 public:
  // What the login proved; `identity` and `subject` are the session's, and
  // the stage keeps their groups and attributes in step with the directory.
  struct Login {
    // The identity provider vouched for the name (a token or a wardenctl
    // login certificate), not the proxy's config.
    bool provider_identity = true;
    // When the credential was issued, if known.
    std::optional<absl::Time> credential_issued;
  };
  DirectoryStage(StageCallbacks* callbacks, warden::v1::Identity* identity,
                 policy::engine::Subject* subject, Login login);

  // Applies `gate`'s directory: false if the user may not stay (Reason()
  // says why). Used at login, before the chain runs.
  bool Apply(const gate::Gate& gate);
  // Why Apply refused, for the client and the audit trail.
  std::string Reason() const;

  StageResult OnFrontend(const Frontend& m, bool resumed) override;
  void OnPolicy(const gate::Gate& gate) override;

  // How often the stage changed the identity's groups or attributes (the
  // session re-encodes what its audit events share when it moves).
  uint64_t identity_changes() const { return identity_changes_; }

 private:
  // Applies a gate of a new generation; ends the session if refused.
  bool Recheck(const gate::Gate& gate);

  StageCallbacks* callbacks_;
  warden::v1::Identity* identity_;
  policy::engine::Subject* subject_;
  const Login login_;
  // The groups the identity proved (token, certificate, config); the
  // directory's are added to them at every policy change.
  const std::vector<std::string> base_groups_;
  uint64_t generation_ = 0;  // of the gate last applied
  uint64_t identity_changes_ = 0;
  // Why the last Apply refused.
  bool ambiguous_ = false;
  bool credential_predates_name_ = false;
  std::string inactive_because_;
};

}  // namespace warden::dataplane::stages

#endif  // WARDEN_DATAPLANE_STAGES_DIRECTORY_STAGE_H_
