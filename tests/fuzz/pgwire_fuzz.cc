// libFuzzer target for dataplane/pgwire: startup packet, then a stream of
// typed messages run through framing, both validators and every parser.
// Beyond "no crash / no ASan report", it traps on contract violations:
// frames that point outside the input, validators that disagree with
// parsers, and encoder output that does not parse back.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/framing.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/pgwire/startup.h"

namespace warden::dataplane::pgwire {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

bool Within(absl::string_view inner, absl::string_view outer) {
  return inner.data() >= outer.data() &&
         inner.data() + inner.size() <= outer.data() + outer.size();
}

void ParseFrontendByType(char type, absl::string_view body) {
  const bool valid = ValidateFrontend(type, body).ok();
  switch (type) {
    case 'Q': {
      auto q = ParseQuery(body);
      Check(q.ok() == valid);
      if (q.ok()) {
        // Re-encode and parse back.
        std::string out;
        WriteQuery(&out, q->sql);
        const Frame f = NextMessage(out, kDefaultMaxMessageSize);
        Check(f.status == FrameStatus::kMessage && f.body == body);
      }
      break;
    }
    case 'P':
      Check(ParseParse(body).ok() == valid);
      break;
    case 'B':
      Check(ParseBind(body).ok() == valid);
      break;
    case 'E':
      Check(ParseExecute(body).ok() == valid);
      break;
    case 'D':
      Check(ParseDescribe(body).ok() == valid);
      break;
    case 'C':
      Check(ParseClose(body).ok() == valid);
      break;
    case 'f':
      Check(ParseCopyFail(body).ok() == valid);
      break;
    case 'F':
      Check(ParseFunctionCall(body).ok() == valid);
      break;
    case 'p':
      (void)ParsePasswordMessage(body);
      (void)ParseSaslInitialResponse(body);
      break;
    default:
      break;
  }
}

void ParseBackendByType(char type, absl::string_view body) {
  const bool valid = ValidateBackend(type, body).ok();
  switch (type) {
    case 'R': {
      auto a = ParseAuthentication(body);
      Check(a.ok() == valid);
      if (a.ok()) {
        Check(Within(a->data, body));
        if (a->code == kAuthSasl) Check(ParseSaslMechanisms(a->data).ok());
      }
      break;
    }
    case 'K':
      Check(ParseBackendKeyData(body).ok() == valid);
      break;
    case 'S': {
      auto ps = ParseParameterStatus(body);
      Check(ps.ok() == valid);
      if (ps.ok()) {
        std::string out;
        WriteParameterStatus(&out, ps->name, ps->value);
        const Frame f = NextMessage(out, kDefaultMaxBackendMessageSize);
        Check(f.status == FrameStatus::kMessage && f.body == body);
      }
      break;
    }
    case 'Z':
      Check(ParseReadyForQuery(body).ok() == valid);
      break;
    case 'C':
      Check(ParseCommandComplete(body).ok() == valid);
      break;
    case 'E':
    case 'N': {
      auto e = ParseErrorResponse(body);
      Check(e.ok() == valid);
      if (e.ok()) {
        for (const ErrorField& field : e->fields) {
          Check(field.code != '\0' && Within(field.value, body));
        }
      }
      break;
    }
    case 'A':
      Check(ParseNotificationResponse(body).ok() == valid);
      break;
    case 'G':
    case 'H':
    case 'W':
      Check(ParseCopyResponse(body).ok() == valid);
      break;
    case 'D': {
      auto row = ParseDataRow(body);
      Check(row.ok() == valid);
      if (row.ok()) {
        for (const BindParam& c : row->columns) {
          Check(c.is_null ? c.value.empty() : Within(c.value, body));
        }
      }
      break;
    }
    case 'T':
      Check(ParseRowDescription(body).ok() == valid);
      break;
    case 't':
      Check(ParseParameterDescription(body).ok() == valid);
      break;
    case 'v':
      Check(ParseNegotiateProtocolVersion(body).ok() == valid);
      break;
    case 'V':
      Check(ParseFunctionCallResponse(body).ok() == valid);
      break;
    default:
      break;
  }
}

}  // namespace
}  // namespace warden::dataplane::pgwire

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warden::dataplane::pgwire;  // NOLINT(build/namespaces)
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::string_view rest = input;

  const Frame startup = NextStartupPacket(input);
  if (startup.status == FrameStatus::kMessage) {
    Check(startup.size <= input.size() && Within(startup.body, input));
    auto msg = ParseStartup(startup.body);
    if (msg.ok() && msg->kind == StartupKind::kStartup) {
      Check(!msg->Get("user").empty());
      for (const auto& [name, value] : msg->parameters) {
        Check(Within(name, startup.body) && Within(value, startup.body));
      }
    }
    rest.remove_prefix(startup.size);
  }

  // Small limit so the fuzzer also exercises the oversize path.
  const size_t max_size = 1 + (size % 4096);
  while (!rest.empty()) {
    const Frame f = NextMessage(rest, max_size);
    if (f.status == FrameStatus::kError) {
      Check(!f.error.ok());
      break;
    }
    if (f.status == FrameStatus::kNeedMore) {
      Check(f.size == 0 || f.size > rest.size());
      break;
    }
    Check(f.size >= 5 && f.size <= rest.size() && f.size <= max_size);
    Check(Within(f.body, rest) && f.body.size() + 5 == f.size);
    warden::dataplane::pgwire::ParseFrontendByType(f.type, f.body);
    warden::dataplane::pgwire::ParseBackendByType(f.type, f.body);
    rest.remove_prefix(f.size);
  }
  return 0;
}
