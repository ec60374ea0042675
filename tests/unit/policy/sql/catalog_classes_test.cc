// policy/sql/catalog_classes: classes of PostgreSQL 15's built-ins.
#include "policy/sql/catalog_classes.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::policy::sql {
namespace {

using ::testing::Contains;
using ::testing::IsEmpty;

TEST(CatalogClassesTest, BuiltinsByName) {
  EXPECT_THAT(FunctionClassesOf("pg_read_file"), Contains("file_access"));
  EXPECT_THAT(FunctionClassesOf("pg_read_file"), Contains("superuser"));
  EXPECT_THAT(FunctionClassesOf("PG_CATALOG.lo_put"),
              Contains("large_object_write"));
  EXPECT_THAT(FunctionClassesOf("lowrite"), Contains("large_object_write"));
  EXPECT_THAT(FunctionClassesOf("pg_stat_reset_shared"),
              Contains("stats_reset"));
  EXPECT_THAT(FunctionClassesOf("pg_create_physical_replication_slot"),
              Contains("replication"));
  EXPECT_THAT(FunctionClassesOf("pg_terminate_backend"),
              Contains("server_control"));
  EXPECT_THAT(FunctionClassesOf("dblink_exec"), Contains("sql_from_text"));
  // Reads are not writes; other schemas' functions are not the built-in.
  EXPECT_THAT(FunctionClassesOf("lo_get"), IsEmpty());
  EXPECT_THAT(FunctionClassesOf("pg_get_replication_slots"), IsEmpty());
  EXPECT_THAT(FunctionClassesOf("app.pg_read_file"), IsEmpty());
  EXPECT_THAT(FunctionClassesOf("now"), IsEmpty());
  EXPECT_THAT(RelationClassesOf("", "pg_authid"), Contains("superuser"));
  EXPECT_THAT(RelationClassesOf("pg_catalog", "pg_file_settings"),
              Contains("config_files"));
  EXPECT_THAT(RelationClassesOf("app", "pg_authid"), IsEmpty());
  EXPECT_THAT(RelationClassesOf("", "pg_stat_activity"), IsEmpty());
  EXPECT_EQ(CatalogClassNames(),
            (std::vector<std::string>{"config_files", "file_access",
                                      "large_object_write", "replication",
                                      "server_control", "sql_from_text",
                                      "stats_reset", "superuser"}));
}

}  // namespace
}  // namespace warden::policy::sql
