// The directory: users and groups an identity provider provisions over
// SCIM (controlplane/scim), kept through the ordered log like every other
// control-plane state. Proxies learn it from the policy bundle
// (PolicyBundle.directory, built by Entries()): a deactivated or deleted
// user is refused, and SCIM groups add to the groups a token or
// certificate carries.
//
// Thread-safe: writes are serialized (check, then commit) so that two
// concurrent creates cannot both take a userName.
#ifndef WARDEN_CONTROLPLANE_DIRECTORY_DIRECTORY_H_
#define WARDEN_CONTROLPLANE_DIRECTORY_DIRECTORY_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "proto/warden/v1/policy.pb.h"
#include "proto/warden/v1/state.pb.h"

namespace warden::controlplane::directory {

class Directory {
 public:
  // Not owned; must outlive this.
  Directory(state::StateMachine* state, const store::Store* store);

  // Users. GetUser: NotFound for an unknown or deleted id.
  absl::StatusOr<warden::v1::DirectoryUser> GetUser(absl::string_view id) const;
  // The live user of that userName (case-insensitive); NotFound otherwise.
  absl::StatusOr<warden::v1::DirectoryUser> FindUser(
      absl::string_view user_name) const;
  // Live users, by userName.
  absl::StatusOr<std::vector<warden::v1::DirectoryUser>> Users() const;

  // PutUser creates (`user.id()` empty: a new id) or replaces a user from
  // the fields SCIM read; keeps id and creation time, bumps the version.
  // AlreadyExists when another live user has the userName; NotFound when
  // replacing an unknown or deleted id.
  absl::StatusOr<warden::v1::DirectoryUser> PutUser(
      warden::v1::DirectoryUser user, const std::string& actor,
      absl::Time now);
  // SetActive (de)activates the live user of that userName; a name the
  // directory does not know gets a record (`created`), so any identity can
  // be cut off at once, SCIM or not.
  //
  // Deactivating puts an admin's hold on the user (a name that is an
  // e-mail of exactly one live user holds that user); the provider's
  // writes do not lift it. Activating lifts only that hold: a user the
  // provider deactivated, deleted or renamed away from the name stays
  // refused (`refused`, with a `note` saying why).
  struct SetActiveResult {
    warden::v1::DirectoryUser user;
    bool created = false;
    bool changed = false;
    bool refused = false;  // proxies refuse the name afterwards
    std::string note;
  };
  absl::StatusOr<SetActiveResult> SetActive(const std::string& user_name,
                                            bool active,
                                            const std::string& actor,
                                            absl::Time now);
  // The display names of the groups `user_id` belongs to.
  absl::StatusOr<std::vector<std::string>> GroupsOf(
      absl::string_view user_id) const;
  // DeleteUser leaves a tombstone (see DirectoryUser.deleted).
  absl::Status DeleteUser(absl::string_view id, const std::string& actor,
                          absl::Time now);

  // Groups. Members of a group are live users; deleted ones drop out.
  absl::StatusOr<warden::v1::DirectoryGroup> GetGroup(
      absl::string_view id) const;
  absl::StatusOr<std::vector<warden::v1::DirectoryGroup>> Groups() const;
  // PutGroup as PutUser; AlreadyExists for a displayName another group has
  // (case-insensitive), InvalidArgument for a member that is no live user.
  absl::StatusOr<warden::v1::DirectoryGroup> PutGroup(
      warden::v1::DirectoryGroup group, const std::string& actor,
      absl::Time now);
  absl::Status DeleteGroup(absl::string_view id, const std::string& actor);

  // What bundles carry: every user (tombstones as inactive, unless a live
  // user took the name again) with lower-case names, e-mail aliases and
  // group names, sorted by userName.
  absl::StatusOr<std::vector<warden::v1::DirectoryEntry>> Entries() const;

 private:
  absl::StatusOr<warden::v1::DirectoryUser> LoadUser(
      absl::string_view id) const;
  absl::StatusOr<std::vector<warden::v1::DirectoryUser>> AllUsers() const;
  // Every group, members limited to the live ones of `users` (all users,
  // tombstones included, as AllUsers returns them).
  absl::StatusOr<std::vector<warden::v1::DirectoryGroup>> GroupsWithLiveMembers(
      const std::vector<warden::v1::DirectoryUser>& users) const;
  // The names an admin's hold is on, whichever record (live or deleted)
  // carries them now, and who placed it: every name of a held record but
  // the e-mails released from it.
  static absl::flat_hash_map<std::string, std::string> HeldNames(
      const std::vector<warden::v1::DirectoryUser>& users);
  // Commits `change`; the look-alike index stays current only if no other
  // directory change was applied in between (another replica's).
  absl::Status Commit(warden::v1::DirectoryChange change,
                      const std::string& actor)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Clears an admin's hold from the deleted records (tombstones) of
  // `user_name`; true when there was one.
  absl::StatusOr<bool> LiftTombstoneHolds(const std::string& user_name,
                                          const std::string& actor,
                                          absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // AlreadyExists when a userName or e-mail `user` adds (to `previous`, null
  // for a new user) looks like a name of another record (NamesLookAlike).
  absl::Status CheckNamesLookDistinct(
      const warden::v1::DirectoryUser& user,
      const warden::v1::DirectoryUser* previous)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Puts `user`'s names (userName, e-mails) in the look-alike index in
  // place of what it had there, and in the set of names ever held.
  void IndexNamesLocked(const warden::v1::DirectoryUser& user)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Reads every record into the indexes above, again whenever a directory
  // change this object did not make was applied (another replica's).
  absl::Status EnsureNamesIndexedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Keeps `user`'s names_taken/names_given_up (from `previous`, null for a
  // new user) for the names this write adds and drops: a name another
  // record has or had is taken now; a name dropped while other live users
  // still carry it is taken anew by each of them (committed here), since
  // credentials for it issued until now may be the dropping user's.
  absl::Status TrackNameHoldersLocked(warden::v1::DirectoryUser* user,
                                      const warden::v1::DirectoryUser* previous,
                                      const std::string& actor, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::StatusOr<warden::v1::DirectoryUser> PutUserLocked(
      warden::v1::DirectoryUser user, const std::string& actor,
      absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  state::StateMachine* const state_;
  const store::Store* const store_;
  absl::Mutex write_mu_;  // serializes check-then-commit
  // Every record's names by skeleton (NameSkeletons), built on first use
  // and kept by every write of a user made here; rebuilt when the state
  // machine applied a directory change made elsewhere (in a cluster, every
  // replica writes the directory): `indexed_changes_` is the state
  // machine's DirectoryChangesApplied() the index reflects.
  struct IndexedName {
    std::string folded;
    std::string name;
    std::string id;
  };
  bool names_indexed_ ABSL_GUARDED_BY(write_mu_) = false;
  uint64_t indexed_changes_ ABSL_GUARDED_BY(write_mu_) = 0;
  absl::flat_hash_map<std::string, std::vector<IndexedName>> names_by_skeleton_
      ABSL_GUARDED_BY(write_mu_);
  absl::flat_hash_map<std::string, std::vector<std::string>> indexed_names_
      ABSL_GUARDED_BY(write_mu_);  // user id -> its skeleton keys
  // Every lower-case name any record has or gave up, with the one record
  // that ever held it, or "*" when more than one did: a record that takes
  // a name another record held takes it from an earlier holder.
  absl::flat_hash_map<std::string, std::string> ever_held_
      ABSL_GUARDED_BY(write_mu_);
};

}  // namespace warden::controlplane::directory

#endif  // WARDEN_CONTROLPLANE_DIRECTORY_DIRECTORY_H_
