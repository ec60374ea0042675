// The operational log of warden-proxy and warden-control: stderr, one line
// per message, with every control byte of the message escaped. Messages
// quote what clients sent (user names, token claims, statement text), and
// the log goes to operators' pipelines: a newline or an escape sequence a
// client chose must not make a line of its own or rewrite a terminal (red
// team: an unauthenticated startup packet forged whole log lines).
#ifndef WARDEN_COMMON_LOG_H_
#define WARDEN_COMMON_LOG_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

namespace warden::log {

// `text` with each control character escaped: bytes below 0x20 and 0x7f
// as \xNN (tab as \t), the C1 controls U+0080-U+009F and U+2028/U+2029 as
// \uNNNN, and bytes that are not UTF-8 as \xNN.
std::string EscapeControls(absl::string_view text);

// A logger named `name` writing to stderr (colour on a terminal) with
// Warden's pattern and escaping, made the default logger.
std::shared_ptr<spdlog::logger> InstallStderrLogger(const std::string& name);

}  // namespace warden::log

#endif  // WARDEN_COMMON_LOG_H_
