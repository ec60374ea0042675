#include "dataplane/pgwire/startup.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "dataplane/pgwire/reader.h"

namespace warden::dataplane::pgwire {
namespace {

absl::Status Invalid(absl::string_view detail) {
  return absl::InvalidArgumentError(absl::StrCat("startup packet: ", detail));
}

absl::Status ExpectBodySize(absl::string_view body, size_t want,
                            const char* name) {
  if (body.size() == want) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      name, ": expected a ", want, "-byte body, got ", body.size(), " bytes"));
}

}  // namespace

absl::string_view StartupMessage::Get(absl::string_view name) const {
  for (const auto& [key, value] : parameters) {
    if (key == name) return value;
  }
  return absl::string_view();
}

absl::StatusOr<StartupMessage> ParseStartup(absl::string_view body) {
  if (body.size() < 4) {
    return Invalid(absl::StrCat("truncated protocol version (need 4 bytes, ",
                                body.size(), " remaining)"));
  }
  StartupMessage msg;
  const int32_t code = internal::LoadInt32(body.data());
  switch (code) {
    case kSslRequestCode:
      if (auto s = ExpectBodySize(body, 4, "SSLRequest"); !s.ok()) return s;
      msg.kind = StartupKind::kSslRequest;
      return msg;
    case kGssEncRequestCode:
      if (auto s = ExpectBodySize(body, 4, "GSSENCRequest"); !s.ok()) return s;
      msg.kind = StartupKind::kGssEncRequest;
      return msg;
    case kCancelRequestCode:
      if (auto s = ExpectBodySize(body, 12, "CancelRequest"); !s.ok()) return s;
      msg.kind = StartupKind::kCancelRequest;
      msg.cancel_pid = internal::LoadInt32(body.data() + 4);
      msg.cancel_secret = internal::LoadInt32(body.data() + 8);
      return msg;
    default:
      break;
  }
  const uint32_t version = static_cast<uint32_t>(code);
  const uint32_t major = version >> 16;
  const uint32_t minor = version & 0xffff;
  if (major != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported frontend protocol ", major, ".", minor,
                     ": Warden speaks 3.0"));
  }
  msg.kind = StartupKind::kStartup;
  msg.protocol_version = code;

  absl::string_view rest = body.substr(4);
  absl::flat_hash_set<absl::string_view> seen;
  while (true) {
    if (rest.empty()) {
      return Invalid("parameter list is missing its terminating NUL");
    }
    const size_t name_end = rest.find('\0');
    if (name_end == absl::string_view::npos) {
      return Invalid(absl::StrCat("parameter name \"", internal::Quote(rest),
                                  "\" is not NUL-terminated"));
    }
    if (name_end == 0) {  // the terminating NUL
      if (rest.size() != 1) {
        return Invalid(absl::StrCat(rest.size() - 1,
                                    " trailing bytes after the parameter "
                                    "list terminator"));
      }
      break;
    }
    const absl::string_view name = rest.substr(0, name_end);
    rest.remove_prefix(name_end + 1);
    const size_t value_end = rest.find('\0');
    if (value_end == absl::string_view::npos) {
      return Invalid(absl::StrCat("value of parameter \"",
                                  internal::Quote(name),
                                  "\" is not NUL-terminated"));
    }
    const absl::string_view value = rest.substr(0, value_end);
    rest.remove_prefix(value_end + 1);
    if (!seen.insert(name).second) {
      return Invalid(
          absl::StrCat("duplicate parameter \"", internal::Quote(name), "\""));
    }
    msg.parameters.emplace_back(name, value);
  }
  if (msg.Get("user").empty()) {
    return Invalid("no PostgreSQL user name specified");
  }
  return msg;
}

}  // namespace warden::dataplane::pgwire
