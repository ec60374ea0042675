// libFuzzer target: statement facts on arbitrary text. Any input must give
// facts or an error, never a crash, and cached results must equal fresh
// ones.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "policy/sql/cache.h"
#include "policy/sql/facts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string sql(reinterpret_cast<const char*>(data), size);
  if (sql.find('\0') != std::string::npos) return 0;  // C strings only.
  static warden::policy::sql::FactsCache cache(64);
  auto fresh = warden::policy::sql::Analyze(sql);
  auto cached = cache.Get(sql);
  if (fresh.ok() != cached.ok()) abort();
  if (fresh.ok() && fresh->size() != (*cached)->size()) abort();
  return 0;
}
