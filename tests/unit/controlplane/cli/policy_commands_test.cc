#include "controlplane/cli/policy_commands.h"
#include "policy/lang/sources.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::controlplane::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kPolicy[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: p }
spec:
  environments: [prod]
  rules:
    - { name: no-drop, match: { commands: ["DROP TABLE"] }, action: deny }
)";

class PolicyCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp ? tmp : "/tmp") /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void Write(const std::string& rel, const std::string& text) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  fs::path dir_;
};

TEST_F(PolicyCommandsTest, ReadsDirectoriesRecursivelyInSortedOrder) {
  Write("b.yaml", kPolicy);
  Write("sub/a.yml", "# empty\n");
  Write("a.yaml", "# empty\n");
  Write("notes.txt", "ignored");
  auto files = policy::lang::ReadSources({dir_.string(), (dir_ / "a.yaml").string()});
  ASSERT_TRUE(files.ok()) << files.status();
  std::vector<std::string> names;
  for (const auto& f : *files) names.push_back(f.name);
  // a.yaml named twice is read once; names are inside the folder.
  EXPECT_THAT(names, ::testing::ElementsAre("a.yaml", "b.yaml", "sub/a.yml"));
  EXPECT_EQ((*files)[1].text, kPolicy);
}

// One digest for one content (issue 13 item 12): however the folder is
// spelled, from wherever, validate prints the digest push computes.
TEST_F(PolicyCommandsTest, TheDigestDependsOnlyOnContentAndNamesInTheFolder) {
  Write("prod.yaml", kPolicy);
  const fs::path cwd = fs::current_path();
  std::vector<std::string> digests;
  for (const std::string& spelling :
       {dir_.string(), dir_.string() + "/", dir_.string() + "/./",
        (dir_ / ".." / dir_.filename()).string(), std::string(".")}) {
    if (spelling == ".") fs::current_path(dir_);
    auto files = policy::lang::ReadSources({spelling});
    fs::current_path(cwd);
    ASSERT_TRUE(files.ok()) << spelling << ": " << files.status();
    auto bundle = policy::lang::Compile(*files);
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    digests.push_back(bundle->digest());
  }
  for (const auto& d : digests) EXPECT_EQ(d, digests[0]);
  // The file given alone is named by its own name: the same digest again.
  auto alone = policy::lang::ReadSources({(dir_ / "prod.yaml").string()});
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(policy::lang::Compile(*alone)->digest(), digests[0]);
  // Two files that would share a name are refused, not merged.
  Write("sub/prod.yaml", kPolicy);
  EXPECT_TRUE(absl::IsInvalidArgument(
      policy::lang::ReadSources({(dir_ / "prod.yaml").string(),
                                 (dir_ / "sub/prod.yaml").string()})
          .status()));
}

TEST_F(PolicyCommandsTest, MissingPathsAndEmptyDirectories) {
  EXPECT_TRUE(
      absl::IsNotFound(policy::lang::ReadSources({(dir_ / "nope").string()}).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(policy::lang::ReadSources({dir_.string()}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(policy::lang::ReadSources({}).status()));
  std::ostringstream out, err;
  EXPECT_EQ(RunValidate({{(dir_ / "nope").string()}, Format::kText}, out, err),
            kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("nope"));
}

TEST_F(PolicyCommandsTest, EvalReadsStdinAndMapsDecisionsToExitCodes) {
  Write("p.yaml", kPolicy);
  EvalOptions eval;
  eval.policy_paths = {dir_.string()};
  eval.environment = "prod";
  eval.database = "shop";
  eval.sql = "-";
  std::istringstream in("DROP TABLE orders");
  std::ostringstream out, err;
  EXPECT_EQ(RunEval(eval, in, out, err), kExitDenied);
  EXPECT_THAT(out.str(), HasSubstr("rule:     no-drop"));
  eval.sql = "SELECT 1";
  std::istringstream none;
  EXPECT_EQ(RunEval(eval, none, out, err), kExitOk);
  eval.kind = "robot";
  EXPECT_EQ(RunEval(eval, none, out, err), kExitUsage);
}

TEST_F(PolicyCommandsTest, TestWithoutCasesFails) {
  Write("p.yaml", kPolicy);
  std::ostringstream out, err;
  EXPECT_EQ(RunTest({{dir_.string()}, Format::kText}, out, err), kExitFailed);
  EXPECT_THAT(err.str(), HasSubstr("no PolicyTest cases"));
  EXPECT_THAT(out.str(), HasSubstr("0 passed, 0 failed"));
}

}  // namespace
}  // namespace warden::controlplane::cli
