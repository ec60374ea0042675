// The directory stage, with fake callbacks and real gates carrying a
// directory: who may stay, what groups count, and when the session ends.
#include "dataplane/stages/directory_stage.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/dataplane/stages/fake_callbacks.h"

namespace warden::dataplane::stages {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A gate whose directory has alice with `groups`, active or not.
std::unique_ptr<gate::Gate> GateWithAlice(bool active,
                                          std::vector<std::string> groups,
                                          int64_t name_reused_ms = 0) {
  warden::v1::PolicyBundle bundle;
  auto* alice = bundle.add_directory();
  alice->set_user_name("alice@example.com");
  alice->set_active(active);
  if (!active) alice->set_inactive_because("deactivated by the identity provider (SCIM)");
  for (const auto& g : groups) alice->add_groups(g);
  (*alice->mutable_attributes())["department"] = "finance";
  if (name_reused_ms != 0) {
    (*alice->mutable_names_reused_unix_ms())["alice@example.com"] =
        name_reused_ms;
  }
  return std::make_unique<gate::Gate>(bundle, 10);
}

struct DirectoryStageTest : ::testing::Test {
  DirectoryStageTest() {
    identity.set_user("alice@example.com");
    identity.add_groups("eng");  // what the token proved
    cb.subject.user = "alice@example.com";
    cb.subject.groups = {"eng"};
  }
  std::unique_ptr<DirectoryStage> Make(DirectoryStage::Login login = {}) {
    return std::make_unique<DirectoryStage>(&cb, &identity, &cb.subject,
                                            login);
  }
  StageResult Send(DirectoryStage& stage, const gate::Gate* gate) {
    cb.execution() = Execution{};
    cb.execution().gate = gate;
    return stage.OnFrontend({'Q', "select 1"}, false);
  }
  FakeCallbacks cb;
  warden::v1::Identity identity;
};

TEST_F(DirectoryStageTest, TheDirectorysGroupsJoinTheProvenOnes) {
  auto stage = Make();
  auto gate = GateWithAlice(true, {"dba"});
  ASSERT_TRUE(stage->Apply(*gate));
  EXPECT_THAT(cb.subject.groups, ElementsAre("eng", "dba"));
  EXPECT_THAT(identity.groups(), ElementsAre("eng", "dba"));
  EXPECT_EQ(cb.subject.attributes.at("department"), "finance");
  // The provider drops dba: the next policy takes it away again, but never
  // what the token itself proved.
  auto later = GateWithAlice(true, {});
  EXPECT_EQ(Send(*stage, later.get()), StageResult::kContinue);
  EXPECT_THAT(cb.subject.groups, ElementsAre("eng"));
  EXPECT_TRUE(cb.failed_sqlstate.empty());
}

TEST_F(DirectoryStageTest, ADeactivatedUserIsRefusedAtLoginWithTheReason) {
  auto stage = Make();
  auto gate = GateWithAlice(false, {});
  EXPECT_FALSE(stage->Apply(*gate));
  EXPECT_THAT(stage->Reason(), HasSubstr("is deactivated in Warden's directory"));
  EXPECT_THAT(stage->Reason(), HasSubstr("deactivated by the identity provider"));
}

TEST_F(DirectoryStageTest, DeactivationEndsTheSessionBeforeTheNextStatement) {
  auto stage = Make();
  auto active = GateWithAlice(true, {});
  ASSERT_TRUE(stage->Apply(*active));
  // The same policy again: nothing to check.
  EXPECT_EQ(Send(*stage, active.get()), StageResult::kContinue);
  EXPECT_TRUE(cb.failed_sqlstate.empty());
  auto inactive = GateWithAlice(false, {});
  Send(*stage, inactive.get());
  EXPECT_EQ(cb.failed_sqlstate, "28000");
  EXPECT_THAT(cb.failed_message, HasSubstr("this session is closed"));
}

TEST_F(DirectoryStageTest, AnIdleSessionIsClosedWhenThePolicyArrives) {
  auto stage = Make();
  auto active = GateWithAlice(true, {});
  ASSERT_TRUE(stage->Apply(*active));
  stage->OnPolicy(*active);
  EXPECT_TRUE(cb.failed_sqlstate.empty());
  auto inactive = GateWithAlice(false, {});
  stage->OnPolicy(*inactive);
  EXPECT_EQ(cb.failed_sqlstate, "28000");
}

TEST_F(DirectoryStageTest, ACredentialOlderThanItsNamesHolderIsRefused) {
  const absl::Time moved = absl::FromUnixSeconds(1700000000);
  DirectoryStage::Login login;
  login.credential_issued = moved;  // the same second: refused too
  auto stage = Make(login);
  auto gate = GateWithAlice(true, {}, absl::ToUnixMillis(moved) + 500);
  EXPECT_FALSE(stage->Apply(*gate));
  EXPECT_THAT(stage->Reason(), HasSubstr("issued before the name became"));
  // A credential issued a second later is the new holder's.
  login.credential_issued = moved + absl::Seconds(1);
  auto fresh = Make(login);
  EXPECT_TRUE(fresh->Apply(*gate));
}

TEST_F(DirectoryStageTest, ConfigUsersAnswerOnlyToAnAdministratorsHold) {
  DirectoryStage::Login login;
  login.provider_identity = false;  // a user of the proxy config
  auto stage = Make(login);
  // The provider's deactivation does not reach a config user ...
  auto scim = GateWithAlice(false, {"dba"});
  EXPECT_TRUE(stage->Apply(*scim));
  EXPECT_THAT(cb.subject.groups, ElementsAre("eng"));  // nor its groups
  // ... an administrator's hold does.
  warden::v1::PolicyBundle bundle;
  auto* alice = bundle.add_directory();
  alice->set_user_name("alice@example.com");
  alice->set_active(false);
  alice->set_admin_hold(true);
  alice->set_inactive_because("deactivated by an administrator (root)");
  gate::Gate held(bundle, 10);
  EXPECT_FALSE(stage->Apply(held));
  EXPECT_THAT(stage->Reason(), HasSubstr("deactivated by an administrator"));
}

}  // namespace
}  // namespace warden::dataplane::stages
