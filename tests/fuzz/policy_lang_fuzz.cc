// libFuzzer target: the policy loader on arbitrary bytes as one YAML file.
// Any input must give a bundle or diagnostics, never a crash or an escaping
// exception; a bundle must compile again to the same digest, survive
// serialization, and the engine must evaluate a few fixed statements
// against it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "policy/engine/engine.h"
#include "policy/lang/compile.h"
#include "policy/sql/facts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<warden::policy::lang::Diagnostic> diagnostics;
  auto bundle =
      warden::policy::lang::Compile({{"fuzz.yaml", text}}, &diagnostics);
  if (!bundle.ok()) {
    if (diagnostics.empty()) abort();  // every failure says why.
    for (const auto& d : diagnostics) {
      if (d.ToString().empty()) abort();
    }
    return 0;
  }
  auto again = warden::policy::lang::Compile({{"fuzz.yaml", text}});
  if (!again.ok() || again->digest() != bundle->digest()) abort();
  // What is pushed to proxies must parse there (proto3 strings are UTF-8).
  warden::v1::PolicyBundle pushed;
  if (!pushed.ParseFromString(bundle->SerializeAsString())) abort();
  static const auto* const kFacts = new std::vector<
      absl::StatusOr<std::vector<warden::policy::sql::StatementFacts>>>{
      warden::policy::sql::Analyze("SELECT 1; DROP TABLE t"),
      warden::policy::sql::Analyze(
          "DO $$ BEGIN EXECUTE 'DELETE FROM t'; END $$"),
      warden::policy::sql::Analyze(
          "SELECT set_config('session_replication_role', 'x', false)"),
      warden::policy::sql::Analyze("COPY t TO PROGRAM 'id'"),
      warden::policy::sql::Analyze("SELEC 1"),
  };
  const warden::policy::engine::Subject who{"alice", {"dba"}, "human"};
  for (const auto& facts : *kFacts) {
    for (const char* env : {"prod", "dev"}) {
      const auto d =
          warden::policy::engine::Evaluate(*bundle, facts, who, env, "shop");
      if (d.audit < warden::v1::AUDIT_LEVEL_METADATA) abort();
      if (d.reason.empty()) abort();
    }
  }
  return 0;
}
