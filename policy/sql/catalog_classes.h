// The classes of PostgreSQL 15's built-in functions and relations that
// policies name with `function_classes` (docs/policy.md): which functions
// are reserved to superusers, touch server files, control the server or
// replication, write large objects, reset statistics, read the
// configuration files or run SQL given as text. Generated from a real
// PostgreSQL 15 catalog (scripts/lib/catalog_classes.py into
// pg15_catalog_classes.inc; tests/integration/test_catalog_classes.py
// fails on drift), plus the functions of two extensions the catalog does
// not ship (dblink, adminpack). No libpg_query: the policy compiler checks
// class names with it.
#ifndef WARDEN_POLICY_SQL_CATALOG_CLASSES_H_
#define WARDEN_POLICY_SQL_CATALOG_CLASSES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace warden::policy::sql {

// Every class name, sorted: superuser, file_access, server_control,
// replication, large_object_write, stats_reset, config_files,
// sql_from_text.
const std::vector<std::string>& CatalogClassNames();

// The classes of the function a statement calls as `name`: unqualified
// ("pg_read_file", which resolves to the built-in first) or qualified with
// pg_catalog. Case-insensitive. Empty for functions of other schemas and
// for names no class lists. (References into a static table: policy
// evaluation calls these for every function of every statement.)
const std::vector<std::string>& FunctionClassesOf(absl::string_view name);

// The classes of a relation a statement names (`schema` empty or
// "pg_catalog"), e.g. pg_authid: superuser.
const std::vector<std::string>& RelationClassesOf(absl::string_view schema,
                                                  absl::string_view name);

}  // namespace warden::policy::sql

#endif  // WARDEN_POLICY_SQL_CATALOG_CLASSES_H_
