#include "policy/sql/normalize.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::policy::sql {
namespace {

using ::testing::HasSubstr;

TEST(NormalizeTest, ConstantsBecomePlaceholders) {
  auto n = Normalize(
      "SELECT * FROM users WHERE email = 'alice@example.com' AND age > 30");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, "SELECT * FROM users WHERE email = $1 AND age > $2");
}

TEST(NormalizeTest, ExistingParametersAreKeptAndNumberingContinues) {
  auto n = Normalize("UPDATE t SET secret = 'hunter2' WHERE id = $1");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, "UPDATE t SET secret = $2 WHERE id = $1");
}

TEST(NormalizeTest, SecretsInUtilityStatementsAreHidden) {
  auto n = Normalize("ALTER ROLE app PASSWORD 'p@ssw0rd'");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_THAT(*n, ::testing::Not(HasSubstr("p@ssw0rd")));
}

TEST(NormalizeTest, UnparseableIsAnError) {
  auto n = Normalize("SELECT * FORM t");
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(n.status().message(), HasSubstr("syntax error"));
}

}  // namespace
}  // namespace warden::policy::sql
