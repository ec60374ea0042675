#include "policy/sql/catalog_classes.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace warden::policy::sql {
namespace {

struct CatalogEntry {
  const char* cls;
  const char* name;
};

#include "policy/sql/pg15_catalog_classes.inc"

// Extensions' functions the core catalog does not have: dblink runs SQL
// given as text on another (or the same) server; adminpack writes and
// removes server files.
constexpr CatalogEntry kExtensionFunctions[] = {
    {"sql_from_text", "dblink"},
    {"sql_from_text", "dblink_exec"},
    {"sql_from_text", "dblink_open"},
    {"sql_from_text", "dblink_fetch"},
    {"sql_from_text", "dblink_send_query"},
    {"sql_from_text", "dblink_connect"},
    {"sql_from_text", "dblink_connect_u"},
    {"file_access", "pg_file_write"},
    {"file_access", "pg_file_sync"},
    {"file_access", "pg_file_rename"},
    {"file_access", "pg_file_unlink"},
    {"file_access", "pg_logdir_ls"},
};

using Index = absl::flat_hash_map<std::string, std::vector<std::string>>;

template <size_t N>
void Add(const CatalogEntry (&entries)[N], Index* index) {
  for (const CatalogEntry& e : entries) {
    std::vector<std::string>& classes = (*index)[e.name];
    if (std::find(classes.begin(), classes.end(), e.cls) == classes.end()) {
      classes.push_back(e.cls);
    }
  }
}

const Index& Functions() {
  static const Index* index = [] {
    auto* out = new Index;
    Add(kCatalogFunctions, out);
    Add(kExtensionFunctions, out);
    return out;
  }();
  return *index;
}

const Index& Relations() {
  static const Index* index = [] {
    auto* out = new Index;
    Add(kCatalogRelations, out);
    return out;
  }();
  return *index;
}

const std::vector<std::string>& None() {
  static const std::vector<std::string>* none = new std::vector<std::string>;
  return *none;
}

const std::vector<std::string>& Lookup(const Index& index,
                                       absl::string_view name) {
  // Lower-cased on the stack: no catalog name is this long, and this runs
  // for every function and relation of every statement judged.
  char lower[64];
  if (name.empty() || name.size() > sizeof(lower)) return None();
  for (size_t i = 0; i < name.size(); ++i) {
    lower[i] = absl::ascii_tolower(static_cast<unsigned char>(name[i]));
  }
  const auto it = index.find(absl::string_view(lower, name.size()));
  return it == index.end() ? None() : it->second;
}

}  // namespace

const std::vector<std::string>& CatalogClassNames() {
  static const std::vector<std::string>* names = [] {
    auto* out = new std::vector<std::string>;
    for (const Index* index : {&Functions(), &Relations()}) {
      for (const auto& [name, classes] : *index) {
        for (const auto& c : classes) {
          if (std::find(out->begin(), out->end(), c) == out->end()) {
            out->push_back(c);
          }
        }
      }
    }
    std::sort(out->begin(), out->end());
    return out;
  }();
  return *names;
}

const std::vector<std::string>& FunctionClassesOf(absl::string_view name) {
  if (absl::StartsWithIgnoreCase(name, "pg_catalog.")) {
    name.remove_prefix(sizeof("pg_catalog.") - 1);
  }
  if (absl::StrContains(name, '.')) return None();  // another schema's
  return Lookup(Functions(), name);
}

const std::vector<std::string>& RelationClassesOf(absl::string_view schema,
                                                  absl::string_view name) {
  if (!schema.empty() && !absl::EqualsIgnoreCase(schema, "pg_catalog")) {
    return None();
  }
  return Lookup(Relations(), name);
}

}  // namespace warden::policy::sql
