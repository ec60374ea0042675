// Settings that change how PostgreSQL reads a statement's text, and so
// could make it read something other than what Warden analyzed (libpg_query
// reads with standard_conforming_strings on, in UTF-8):
//
//   - standard_conforming_strings off makes a backslash escape a quote in
//     '...' literals: `SELECT 'x\'' ; UPDATE ...; --'` is one literal to
//     Warden and two statements to the server;
//   - a client-only client_encoding (SJIS, BIG5, GBK, GB18030, UHC, JOHAB
//     and their aliases) lets a multibyte character's second byte be a
//     quote or backslash;
//   - backslash_quote decides whether \' ends a literal.
//
// Warden refuses to set them to anything that reads differently, in every
// environment it governs: as a SET, a set_config call, an ALTER ROLE /
// DATABASE / FUNCTION ... SET, a startup parameter or `options`; and it
// closes a session whose server reports such a state anyway.
#ifndef WARDEN_POLICY_SQL_LEXING_H_
#define WARDEN_POLICY_SQL_LEXING_H_

#include <string>

#include "absl/strings/string_view.h"
#include "policy/sql/facts.h"

namespace warden::policy::sql {

// Why setting `name` to `value` ("DEFAULT" for RESET / DEFAULT, "?" for a
// computed value) would make PostgreSQL read statements differently from
// Warden; empty when it would not (or `name` is not such a setting).
std::string LexingChange(absl::string_view name, absl::string_view value);

// The first such change in `f` or any statement nested in it, as a
// sentence; empty when there is none.
std::string LexingChangeIn(const StatementFacts& f);

// Whether `encoding` (any spelling PostgreSQL accepts: "SJIS",
// "Shift_JIS", "win932") is one a client may use but a server may not,
// whose multibyte characters can contain ASCII quote and backslash bytes.
bool IsClientOnlyEncoding(absl::string_view encoding);

}  // namespace warden::policy::sql

#endif  // WARDEN_POLICY_SQL_LEXING_H_
