// The parameters of a client's startup message, judged as the SETs they
// are. A client can set any run-time parameter at connect time, directly
// (`client_encoding=SJIS`) or through `options` (`-c name=value`,
// `--name=value`); unjudged, that is a route around every rule on
// `settings` and around Warden's reading of statements (policy/sql/lexing.h).
//
// On a governed proxy a startup parameter is accepted only when its name
// is on a short list of what drivers send and sessions legitimately tune
// (kAcceptedStartupParameters) and its value does not change how
// PostgreSQL reads statements; anything else refuses the connection with
// SQLSTATE 08004 and the reason, before the database is reached.
#ifndef WARDEN_DATAPLANE_SESSION_STARTUP_PARAMS_H_
#define WARDEN_DATAPLANE_SESSION_STARTUP_PARAMS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden::dataplane::session {

// Lower-case names; documented in docs/proxy-config.md.
extern const char* const kAcceptedStartupParameters[];

// libpq's `options`: whitespace-separated switches, a backslash escaping
// the next character; `-c name=value`, `-cname=value` and `--name=value`
// set parameters (dashes in a name become underscores, as PostgreSQL's
// ParseLongOption does). Any other switch is InvalidArgument.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseOptions(
    absl::string_view options);

// OK when Warden accepts `name` = `value` in a startup message (for
// "options", each setting it carries); InvalidArgument with the reason
// otherwise.
absl::Status JudgeStartupParameter(absl::string_view name,
                                   absl::string_view value);

// Why a state the server reports (ParameterStatus) means it reads
// statements differently from Warden; empty when it does not.
std::string ReportedLexingState(absl::string_view name,
                                absl::string_view value);

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_STARTUP_PARAMS_H_
