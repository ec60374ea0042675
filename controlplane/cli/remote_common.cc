#include "controlplane/cli/remote_common.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/address.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace warden::controlplane::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// The length of the UTF-8 sequence at the start of `s` and its code point,
// or 0 when it is not one (bad lead or continuation byte, overlong form,
// surrogate, beyond U+10FFFF, cut short).
size_t DecodeUtf8(absl::string_view s, char32_t* code_point) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  size_t length;
  char32_t cp;
  char32_t min;
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  *code_point = cp;
  return length;
}

// Code points that are printable but reorder or break what a terminal
// shows: C1 controls, line and paragraph separators, bidi controls.
// What a terminal would not show as itself: C1 controls, line and
// paragraph separators, and every default-ignorable code point (bidi
// controls, zero-width spaces and joiners, soft hyphen, variation
// selectors, Hangul fillers, tags) or format character, per ICU: a name
// with U+200B in it must not read as the name without (red team).
bool Deceptive(char32_t cp) {
  const UChar32 c = static_cast<UChar32>(cp);
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
         u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT) ||
         u_charType(c) == U_FORMAT_CHAR;
}

}  // namespace

std::string TerminalSafe(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const unsigned char c = static_cast<unsigned char>(text[0]);
    char32_t cp = 0;
    const size_t n = DecodeUtf8(text, &cp);
    if (n == 0) {  // not UTF-8: the byte itself
      absl::StrAppendFormat(&out, "\\x%02x", c);
      text.remove_prefix(1);
      continue;
    }
    if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned>(cp));
    } else if (Deceptive(cp)) {
      absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned>(cp));
    } else {
      out.append(text.data(), n);
    }
    text.remove_prefix(n);
  }
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const Connection& connection) {
  if (connection.server.empty()) {
    return absl::InvalidArgumentError(
        "no control plane address: pass --server host:port or set "
        "WARDEN_SERVER");
  }
  if (connection.ca_file.empty()) {
    return absl::InvalidArgumentError(
        "no CA to verify the control plane with: pass --ca-file or set "
        "WARDEN_CA_FILE (warden-control writes its CA to DATA_DIR/ca.crt; "
        "with an operator certificate, the CA that issued it)");
  }
  std::ifstream in(connection.ca_file, std::ios::binary);
  std::string pem((std::istreambuf_iterator<char>(in)),
                  std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) pem.clear();
  if (pem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read CA file '", connection.ca_file, "' (--ca-file)"));
  }
  const std::vector<std::string> replicas =
      SplitAddressList(connection.server);
  if (replicas.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no control plane address in '", connection.server,
        "' (--server host:port, or several separated by commas)"));
  }
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = pem;
  // warden-control pages its answers under 4 MiB, but an entry recorded
  // before events were bounded may be larger: accept it rather than stop.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto make = [&](const std::string& target) {
    return grpc::CreateCustomChannel(target, grpc::SslCredentials(tls), args);
  };
  // One replica (or one DNS name whose records gRPC tries in turn): as is.
  if (replicas.size() == 1) return make(replicas[0]);
  // Several replicas of a cluster: the first, in the order given, that
  // completes a TLS handshake. A command is one process, so each run
  // starts again from the first (list the nearest first). A call that
  // then fails is not retried on another replica: a write whose answer
  // was lost may have been applied, and the caller decides.
  absl::Duration timeout;
  if (!absl::ParseDuration(connection.timeout, &timeout) ||
      timeout <= absl::ZeroDuration()) {
    timeout = absl::Seconds(10);
  }
  const auto probe = absl::ToChronoMilliseconds(
      std::min(timeout, absl::Seconds(5)));
  for (const std::string& replica : replicas) {
    std::shared_ptr<grpc::Channel> channel = make(replica);
    const auto deadline = std::chrono::system_clock::now() + probe;
    grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
    while (state != GRPC_CHANNEL_READY &&
           state != GRPC_CHANNEL_TRANSIENT_FAILURE &&
           state != GRPC_CHANNEL_SHUTDOWN &&
           channel->WaitForStateChange(state, deadline)) {
      state = channel->GetState(/*try_to_connect=*/true);
    }
    if (state == GRPC_CHANNEL_READY) return channel;
  }
  // None answered: the first, so that the call fails with gRPC's reason.
  return make(replicas[0]);
}

int ExitForGrpc(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kExitAuth;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    default:
      return kExitFailed;
  }
}

// ---------------------------------------------------------------------------
// JSON

namespace {

// What protobuf's JSON printer escapes beyond what JSON must: '<' and '>',
// DEL and the C1 controls, U+2028/U+2029, and the format characters it
// lists (soft hyphen, Arabic and Syriac marks, zero-width and bidi
// controls, word joiners, BOM, interlinear annotations, musical symbol
// formatting, tags).
bool EscapedInLines(char32_t cp) {
  return cp == '<' || cp == '>' || (cp >= 0x7F && cp <= 0x9F) || cp == 0xAD ||
         (cp >= 0x600 && cp <= 0x603) || cp == 0x6DD || cp == 0x70F ||
         cp == 0x17B4 || cp == 0x17B5 || (cp >= 0x200B && cp <= 0x200F) ||
         (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2064) ||
         (cp >= 0x206A && cp <= 0x206F) || cp == 0xFEFF ||
         (cp >= 0xFFF9 && cp <= 0xFFFB) || (cp >= 0x1D173 && cp <= 0x1D17A) ||
         cp == 0xE0001 || (cp >= 0xE0020 && cp <= 0xE007F);
}

// `value` compact; then the EscapedInLines code points as \uNNNN (UTF-16
// surrogate pairs beyond the BMP). They can only stand inside strings in
// nlohmann's output (everything outside strings is ASCII, and none of them
// is a quote or a backslash), where the escape means the same character.
std::string LineText(const JsonRecord& value) {
  const std::string dumped =
      value.dump(-1, ' ', false, JsonRecord::error_handler_t::replace);
  std::string out;
  out.reserve(dumped.size());
  absl::string_view rest = dumped;
  while (!rest.empty()) {
    char32_t cp = 0;
    size_t n = DecodeUtf8(rest, &cp);
    if (n == 0) n = 1, cp = 0;  // cannot happen: replace made it UTF-8
    if (!EscapedInLines(cp)) {
      out.append(rest.data(), n);
    } else if (cp < 0x10000) {
      absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned>(cp));
    } else {
      const char32_t v = cp - 0x10000;
      absl::StrAppendFormat(&out, "\\u%04x\\u%04x",
                            static_cast<unsigned>(0xD800 + (v >> 10)),
                            static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
    }
    rest.remove_prefix(n);
  }
  return out;
}

// ".5" style fractions as protobuf writes them: none, or 3, 6 or 9 digits.
std::string Nanos(int32_t nanos) {
  if (nanos == 0) return "";
  if (nanos % 1000000 == 0) return absl::StrFormat(".%03d", nanos / 1000000);
  if (nanos % 1000 == 0) return absl::StrFormat(".%06d", nanos / 1000);
  return absl::StrFormat(".%09d", nanos);
}

JsonRecord WellKnownOrMessageJson(const Message& message);

// One value of `field` (element `index` of a repeated one, -1: singular).
JsonRecord FieldJson(const Message& message, const FieldDescriptor* field,
                     int index) {
  const Reflection* r = message.GetReflection();
  const bool rep = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(message, field, index)
                 : r->GetInt32(message, field);
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(message, field, index)
                 : r->GetUInt32(message, field);
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(message, field, index)
                              : r->GetInt64(message, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(message, field, index)
                              : r->GetUInt64(message, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(message, field, index)
                 : r->GetDouble(message, field);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(message, field, index)
                 : r->GetFloat(message, field);
    case FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(message, field, index)
                 : r->GetBool(message, field);
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int number = rep ? r->GetRepeatedEnumValue(message, field, index)
                             : r->GetEnumValue(message, field);
      const auto* value = field->enum_type()->FindValueByNumber(number);
      return value != nullptr ? JsonRecord(value->name()) : JsonRecord(number);
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string text = rep ? r->GetRepeatedString(message, field, index)
                             : r->GetString(message, field);
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        return absl::Base64Escape(text);
      }
      return text;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return WellKnownOrMessageJson(
          rep ? r->GetRepeatedMessage(message, field, index)
              : r->GetMessage(message, field));
  }
  return nullptr;
}

JsonRecord WellKnownOrMessageJson(const Message& message) {
  const Descriptor* d = message.GetDescriptor();
  const Reflection* r = message.GetReflection();
  const std::string& type = d->full_name();
  if (type == "google.protobuf.Timestamp" ||
      type == "google.protobuf.Duration") {
    const int64_t seconds = r->GetInt64(message, d->FindFieldByNumber(1));
    const int32_t nanos = r->GetInt32(message, d->FindFieldByNumber(2));
    if (type == "google.protobuf.Duration") {
      const bool negative = seconds < 0 || nanos < 0;
      return absl::StrCat(negative ? "-" : "", negative ? -seconds : seconds,
                          Nanos(negative ? -nanos : nanos), "s");
    }
    return absl::StrCat(
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(seconds),
                         absl::UTCTimeZone()),
        Nanos(nanos), "Z");
  }
  JsonRecord out = JsonRecord::object();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(message, &fields);  // set ones, by field number
  for (const FieldDescriptor* field : fields) {
    if (field->is_map()) {
      const FieldDescriptor* key = field->message_type()->map_key();
      const FieldDescriptor* value = field->message_type()->map_value();
      JsonRecord map = JsonRecord::object();
      for (int i = 0; i < r->FieldSize(message, field); ++i) {
        const Message& entry = r->GetRepeatedMessage(message, field, i);
        JsonRecord k = FieldJson(entry, key, -1);
        map[k.is_string() ? k.get<std::string>() : k.dump()] =
            FieldJson(entry, value, -1);
      }
      out[field->name()] = std::move(map);
    } else if (field->is_repeated()) {
      JsonRecord list = JsonRecord::array();
      for (int i = 0; i < r->FieldSize(message, field); ++i) {
        list.push_back(FieldJson(message, field, i));
      }
      out[field->name()] = std::move(list);
    } else {
      out[field->name()] = FieldJson(message, field, -1);
    }
  }
  return out;
}

const Json* Member(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

}  // namespace

void WriteJson(const Json& document, std::ostream& out) {
  out << document.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
}

void WriteJsonLine(const JsonRecord& record, std::ostream& out) {
  if (!record.is_object()) {
    out << LineText(record) << "\n";
    return;
  }
  out << "{";
  bool first = true;
  for (const auto& [key, value] : record.items()) {
    out << (first ? "" : ", ") << LineText(JsonRecord(key)) << ": "
        << LineText(value);
    first = false;
  }
  out << "}\n";
}

JsonRecord MessageJson(const google::protobuf::Message& message) {
  return WellKnownOrMessageJson(message);
}

int Report(Format format, const Json& result,
           absl::FunctionRef<void(const Json& result, std::ostream& out)> text,
           std::ostream& out) {
  if (format == Format::kJson) {
    WriteJson(result, out);
  } else {
    text(result, out);
  }
  return kExitOk;
}

std::string StringAt(const Json& j, const char* key) {
  const Json* v = Member(j, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

uint64_t UintAt(const Json& j, const char* key) {
  const Json* v = Member(j, key);
  return v != nullptr && v->is_number_integer() ? v->get<uint64_t>() : 0;
}

int64_t IntAt(const Json& j, const char* key) {
  const Json* v = Member(j, key);
  return v != nullptr && v->is_number_integer() ? v->get<int64_t>() : 0;
}

bool BoolAt(const Json& j, const char* key) {
  const Json* v = Member(j, key);
  return v != nullptr && v->is_boolean() && v->get<bool>();
}

std::vector<std::string> StringsAt(const Json& j, const char* key) {
  std::vector<std::string> out;
  const Json* v = Member(j, key);
  if (v == nullptr || !v->is_array()) return out;
  for (const Json& s : *v) {
    if (s.is_string()) out.push_back(s.get<std::string>());
  }
  return out;
}

// ---------------------------------------------------------------------------
// For the commands' files.

int UsageError(absl::string_view message, std::ostream& err) {
  err << "wardenctl: " << message << "\n";
  return kExitUsage;
}

std::string TimeText(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                          absl::FromUnixSeconds(ts.seconds()),
                          absl::UTCTimeZone());
}

Json TimeJson(const google::protobuf::Timestamp& ts) {
  const std::string text = TimeText(ts);
  return text.empty() ? Json(nullptr) : Json(text);
}

int Remote::Open(const RemoteOptions& options, std::ostream& err) {
  options_ = &options;
  if (!absl::ParseDuration(options.connection.timeout, &timeout_) ||
      timeout_ <= absl::ZeroDuration()) {
    return UsageError(absl::StrCat("--timeout '", options.connection.timeout,
                                   "' is not a positive duration (e.g. 10s)"),
                      err);
  }
  auto channel = MakeChannel(options.connection);
  if (!channel.ok()) return UsageError(channel.status().message(), err);
  channel_ = *std::move(channel);
  return kExitOk;
}

void Remote::Prepare(grpc::ClientContext* context) const {
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoMilliseconds(timeout_));
  Authorize(context);
}

void Remote::Authorize(grpc::ClientContext* context) const {
  if (!options_->connection.token.empty()) {
    context->AddMetadata("authorization",
                         "Bearer " + options_->connection.token);
  }
}

int Remote::Failed(const grpc::Status& status, std::ostream& out,
                   std::ostream& err) const {
  const std::string code = absl::StatusCodeToString(
      static_cast<absl::StatusCode>(status.error_code()));
  err << "error: " << code << ": " << TerminalSafe(status.error_message())
      << "\n";
  if (options_->format == Format::kJson) {
    WriteJson(
        {{"error", {{"code", code}, {"message", status.error_message()}}}},
        out);
  }
  return ExitForGrpc(status);
}

}  // namespace warden::controlplane::cli
