#include "dataplane/pgwire/messages.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "dataplane/pgwire/reader.h"

namespace warden::dataplane::pgwire {
namespace {

using internal::Reader;
using internal::What;

// Both Describe and Close: a kind byte ('S' or 'P') then a name.
template <typename T>
absl::StatusOr<T> ParseKindAndName(absl::string_view body,
                                   const char* context) {
  Reader r(body, context);
  T out;
  WARDEN_ASSIGN_OR_RETURN(out.kind, r.ReadByte("kind"));
  if (out.kind != 'S' && out.kind != 'P') {
    return r.Error(absl::StrCat("kind is ", DescribeTypeByte(out.kind),
                                " (must be 'S' or 'P')"));
  }
  WARDEN_ASSIGN_OR_RETURN(out.name, r.ReadCString("name"));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

// Format-code count check shared by Bind and FunctionCall.
absl::Status CheckFormatCount(const Reader& r, size_t formats, size_t values,
                              const char* format_label,
                              const char* value_label) {
  if (formats <= 1 || formats == values) return absl::OkStatus();
  return r.Error(absl::StrCat(formats, " ", format_label, "s but ", values, " ",
                              value_label, "s (must be 0, 1 or equal)"));
}

absl::Status ExpectEmpty(absl::string_view body, const char* name) {
  if (body.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      name, " message: expected an empty body, got ", body.size(), " bytes"));
}

}  // namespace

// ---------------------------------------------------------------- frontend

absl::StatusOr<Query> ParseQuery(absl::string_view body) {
  Reader r(body, "Query message");
  Query out;
  WARDEN_ASSIGN_OR_RETURN(out.sql, r.ReadCString("query string"));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<Parse> ParseParse(absl::string_view body) {
  Reader r(body, "Parse message");
  Parse out;
  WARDEN_ASSIGN_OR_RETURN(out.statement, r.ReadCString("statement name"));
  WARDEN_ASSIGN_OR_RETURN(out.query, r.ReadCString("query string"));
  WARDEN_ASSIGN_OR_RETURN(uint16_t n, r.ReadCount("parameter type count", 4));
  out.param_types.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    WARDEN_ASSIGN_OR_RETURN(uint32_t oid,
                            r.ReadUint32(What("parameter type", i + 1)));
    out.param_types.push_back(oid);
  }
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<Bind> ParseBind(absl::string_view body) {
  Reader r(body, "Bind message");
  Bind out;
  WARDEN_ASSIGN_OR_RETURN(out.portal, r.ReadCString("portal name"));
  WARDEN_ASSIGN_OR_RETURN(out.statement, r.ReadCString("statement name"));
  WARDEN_ASSIGN_OR_RETURN(uint16_t nformats,
                          r.ReadCount("parameter format count", 2));
  WARDEN_RETURN_IF_ERROR(
      r.ReadFormats(nformats, "parameter format", &out.param_formats));
  WARDEN_ASSIGN_OR_RETURN(uint16_t nparams, r.ReadCount("parameter count", 4));
  WARDEN_RETURN_IF_ERROR(
      CheckFormatCount(r, nformats, nparams, "parameter format", "parameter"));
  out.params.reserve(nparams);
  for (size_t i = 0; i < nparams; ++i) {
    WARDEN_ASSIGN_OR_RETURN(BindParam p, r.ReadValue(What("parameter", i + 1)));
    out.params.push_back(p);
  }
  WARDEN_ASSIGN_OR_RETURN(uint16_t nresults,
                          r.ReadCount("result format count", 2));
  WARDEN_RETURN_IF_ERROR(
      r.ReadFormats(nresults, "result format", &out.result_formats));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<BindTarget> ParseBindTarget(absl::string_view body) {
  Reader r(body, "Bind message");
  BindTarget out;
  WARDEN_ASSIGN_OR_RETURN(out.portal, r.ReadCString("portal name"));
  WARDEN_ASSIGN_OR_RETURN(out.statement, r.ReadCString("statement name"));
  WARDEN_ASSIGN_OR_RETURN(uint16_t nformats,
                          r.ReadCount("parameter format count", 2));
  WARDEN_RETURN_IF_ERROR(
      r.ReadBytes(size_t{nformats} * 2, "parameter formats").status());
  WARDEN_ASSIGN_OR_RETURN(uint16_t nparams, r.ReadCount("parameter count", 4));
  WARDEN_RETURN_IF_ERROR(
      CheckFormatCount(r, nformats, nparams, "parameter format", "parameter"));
  for (size_t i = 0; i < nparams; ++i) {
    WARDEN_RETURN_IF_ERROR(r.ReadValue(What("parameter", i + 1)).status());
  }
  WARDEN_ASSIGN_OR_RETURN(uint16_t nresults,
                          r.ReadCount("result format count", 2));
  WARDEN_RETURN_IF_ERROR(
      r.ReadFormats(nresults, "result format", &out.result_formats));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<Execute> ParseExecute(absl::string_view body) {
  Reader r(body, "Execute message");
  Execute out;
  WARDEN_ASSIGN_OR_RETURN(out.portal, r.ReadCString("portal name"));
  WARDEN_ASSIGN_OR_RETURN(out.max_rows, r.ReadInt32("row limit"));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<Describe> ParseDescribe(absl::string_view body) {
  return ParseKindAndName<Describe>(body, "Describe message");
}

absl::StatusOr<Close> ParseClose(absl::string_view body) {
  return ParseKindAndName<Close>(body, "Close message");
}

absl::StatusOr<CopyFail> ParseCopyFail(absl::string_view body) {
  Reader r(body, "CopyFail message");
  CopyFail out;
  WARDEN_ASSIGN_OR_RETURN(out.message, r.ReadCString("error message"));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<FunctionCall> ParseFunctionCall(absl::string_view body) {
  Reader r(body, "FunctionCall message");
  FunctionCall out;
  WARDEN_ASSIGN_OR_RETURN(out.function_oid, r.ReadUint32("function OID"));
  WARDEN_ASSIGN_OR_RETURN(uint16_t nformats,
                          r.ReadCount("argument format count", 2));
  WARDEN_RETURN_IF_ERROR(
      r.ReadFormats(nformats, "argument format", &out.arg_formats));
  WARDEN_ASSIGN_OR_RETURN(uint16_t nargs, r.ReadCount("argument count", 4));
  WARDEN_RETURN_IF_ERROR(
      CheckFormatCount(r, nformats, nargs, "argument format", "argument"));
  out.args.reserve(nargs);
  for (size_t i = 0; i < nargs; ++i) {
    WARDEN_ASSIGN_OR_RETURN(BindParam p, r.ReadValue(What("argument", i + 1)));
    out.args.push_back(p);
  }
  WARDEN_ASSIGN_OR_RETURN(out.result_format, r.ReadInt16("result format"));
  if (out.result_format != 0 && out.result_format != 1) {
    return r.Error(absl::StrCat("result format is ", out.result_format,
                                " (must be 0 for text or 1 for binary)"));
  }
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<absl::string_view> ParsePasswordMessage(absl::string_view body) {
  Reader r(body, "PasswordMessage");
  WARDEN_ASSIGN_OR_RETURN(absl::string_view password,
                          r.ReadCString("password"));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return password;
}

absl::StatusOr<SaslInitialResponse> ParseSaslInitialResponse(
    absl::string_view body) {
  Reader r(body, "SASLInitialResponse message");
  SaslInitialResponse out;
  WARDEN_ASSIGN_OR_RETURN(out.mechanism, r.ReadCString("mechanism name"));
  if (out.mechanism.empty()) return r.Error("empty mechanism name");
  WARDEN_ASSIGN_OR_RETURN(BindParam data, r.ReadValue("initial response"));
  out.has_data = !data.is_null;
  out.data = data.value;
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

// ----------------------------------------------------------------- backend

absl::StatusOr<std::vector<absl::string_view>> ParseSaslMechanisms(
    absl::string_view data) {
  Reader r(data, "AuthenticationSASL message");
  std::vector<absl::string_view> out;
  while (true) {
    WARDEN_ASSIGN_OR_RETURN(
        absl::string_view name,
        r.ReadCString(What("mechanism name", out.size() + 1)));
    if (name.empty()) break;
    out.push_back(name);
  }
  if (out.empty()) return r.Error("no SASL mechanisms offered");
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<Authentication> ParseAuthentication(absl::string_view body) {
  Reader r(body, "Authentication message");
  Authentication out;
  WARDEN_ASSIGN_OR_RETURN(out.code, r.ReadInt32("authentication code"));
  out.data = r.Rest();
  switch (out.code) {
    case kAuthOk:
    case kAuthKerberosV5:
    case kAuthCleartextPassword:
    case kAuthScmCredential:
    case kAuthGss:
    case kAuthSspi:
      WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
      break;
    case kAuthMd5Password:
      if (out.data.size() != 4) {
        return r.Error(
            absl::StrCat("MD5 salt must be 4 bytes, got ", out.data.size()));
      }
      break;
    case kAuthSasl:
      WARDEN_RETURN_IF_ERROR(ParseSaslMechanisms(out.data).status());
      break;
    case kAuthGssContinue:
    case kAuthSaslContinue:
    case kAuthSaslFinal:
      break;  // opaque data
    default:
      return r.Error(absl::StrCat("unknown authentication code ", out.code));
  }
  return out;
}

absl::StatusOr<BackendKeyData> ParseBackendKeyData(absl::string_view body) {
  Reader r(body, "BackendKeyData message");
  BackendKeyData out;
  WARDEN_ASSIGN_OR_RETURN(out.pid, r.ReadInt32("process ID"));
  WARDEN_ASSIGN_OR_RETURN(out.secret, r.ReadInt32("secret key"));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<ParameterStatus> ParseParameterStatus(absl::string_view body) {
  Reader r(body, "ParameterStatus message");
  ParameterStatus out;
  WARDEN_ASSIGN_OR_RETURN(out.name, r.ReadCString("parameter name"));
  WARDEN_ASSIGN_OR_RETURN(out.value, r.ReadCString("parameter value"));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<ReadyForQuery> ParseReadyForQuery(absl::string_view body) {
  Reader r(body, "ReadyForQuery message");
  ReadyForQuery out;
  WARDEN_ASSIGN_OR_RETURN(out.status, r.ReadByte("transaction status"));
  if (out.status != 'I' && out.status != 'T' && out.status != 'E') {
    return r.Error(absl::StrCat("transaction status is ",
                                DescribeTypeByte(out.status),
                                " (must be 'I', 'T' or 'E')"));
  }
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<CommandComplete> ParseCommandComplete(absl::string_view body) {
  Reader r(body, "CommandComplete message");
  CommandComplete out;
  WARDEN_ASSIGN_OR_RETURN(out.tag, r.ReadCString("command tag"));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::string_view ErrorResponse::Get(char code) const {
  for (const ErrorField& f : fields) {
    if (f.code == code) return f.value;
  }
  return absl::string_view();
}

absl::StatusOr<ErrorResponse> ParseErrorResponse(absl::string_view body) {
  Reader r(body, "ErrorResponse message");
  ErrorResponse out;
  while (true) {
    WARDEN_ASSIGN_OR_RETURN(
        char code, r.ReadByte(What("field code", out.fields.size() + 1)));
    if (code == '\0') break;
    WARDEN_ASSIGN_OR_RETURN(
        absl::string_view value,
        r.ReadCString(What("field value", out.fields.size() + 1)));
    out.fields.push_back(ErrorField{code, value});
  }
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<NotificationResponse> ParseNotificationResponse(
    absl::string_view body) {
  Reader r(body, "NotificationResponse message");
  NotificationResponse out;
  WARDEN_ASSIGN_OR_RETURN(out.pid, r.ReadInt32("process ID"));
  WARDEN_ASSIGN_OR_RETURN(out.channel, r.ReadCString("channel name"));
  WARDEN_ASSIGN_OR_RETURN(out.payload, r.ReadCString("payload"));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<CopyResponse> ParseCopyResponse(absl::string_view body) {
  Reader r(body, "CopyResponse message");
  CopyResponse out;
  WARDEN_ASSIGN_OR_RETURN(char format, r.ReadByte("copy format"));
  if (format != 0 && format != 1) {
    return r.Error(absl::StrCat("copy format is ", static_cast<int>(format),
                                " (must be 0 for text or 1 for binary)"));
  }
  out.format = static_cast<int8_t>(format);
  WARDEN_ASSIGN_OR_RETURN(uint16_t n, r.ReadCount("column count", 2));
  WARDEN_RETURN_IF_ERROR(
      r.ReadFormats(n, "column format", &out.column_formats));
  if (out.format == 0) {
    for (size_t i = 0; i < out.column_formats.size(); ++i) {
      if (out.column_formats[i] != 0) {
        return r.Error(absl::StrCat("column format ", i + 1,
                                    " is binary in a text-format copy"));
      }
    }
  }
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<DataRow> ParseDataRow(absl::string_view body) {
  Reader r(body, "DataRow message");
  DataRow out;
  WARDEN_ASSIGN_OR_RETURN(uint16_t n, r.ReadCount("column count", 4));
  out.columns.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    WARDEN_ASSIGN_OR_RETURN(BindParam c, r.ReadValue(What("column", i + 1)));
    out.columns.push_back(c);
  }
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<RowDescription> ParseRowDescription(absl::string_view body) {
  Reader r(body, "RowDescription message");
  RowDescription out;
  // Minimum field: empty name (1) + 4 + 2 + 4 + 2 + 4 + 2 = 19 bytes.
  WARDEN_ASSIGN_OR_RETURN(uint16_t n, r.ReadCount("field count", 19));
  out.fields.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    FieldDescription f;
    const size_t k = i + 1;
    WARDEN_ASSIGN_OR_RETURN(f.name, r.ReadCString(What("field name", k)));
    WARDEN_ASSIGN_OR_RETURN(f.table_oid, r.ReadUint32(What("table OID", k)));
    WARDEN_ASSIGN_OR_RETURN(f.column, r.ReadInt16(What("column number", k)));
    WARDEN_ASSIGN_OR_RETURN(f.type_oid, r.ReadUint32(What("type OID", k)));
    WARDEN_ASSIGN_OR_RETURN(f.type_size, r.ReadInt16(What("type size", k)));
    WARDEN_ASSIGN_OR_RETURN(f.type_modifier,
                            r.ReadInt32(What("type modifier", k)));
    WARDEN_ASSIGN_OR_RETURN(f.format, r.ReadInt16(What("format code", k)));
    if (f.format != 0 && f.format != 1) {
      return r.Error(absl::StrCat("format code ", k, " is ", f.format,
                                  " (must be 0 for text or 1 for binary)"));
    }
    out.fields.push_back(f);
  }
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<ParameterDescription> ParseParameterDescription(
    absl::string_view body) {
  Reader r(body, "ParameterDescription message");
  ParameterDescription out;
  WARDEN_ASSIGN_OR_RETURN(uint16_t n, r.ReadCount("parameter count", 4));
  out.type_oids.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    WARDEN_ASSIGN_OR_RETURN(uint32_t oid,
                            r.ReadUint32(What("parameter type", i + 1)));
    out.type_oids.push_back(oid);
  }
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<NegotiateProtocolVersion> ParseNegotiateProtocolVersion(
    absl::string_view body) {
  Reader r(body, "NegotiateProtocolVersion message");
  NegotiateProtocolVersion out;
  WARDEN_ASSIGN_OR_RETURN(out.newest_minor,
                          r.ReadInt32("newest minor version"));
  if (out.newest_minor < 0 || out.newest_minor > 0xffff) {
    return r.Error(absl::StrCat("newest minor version ", out.newest_minor,
                                " is out of range"));
  }
  WARDEN_ASSIGN_OR_RETURN(int32_t n, r.ReadInt32("option count"));
  // Each option name takes at least its NUL byte.
  if (n < 0 || static_cast<size_t>(n) > r.remaining()) {
    return r.Error(absl::StrCat("option count ", n, " is invalid with ",
                                r.remaining(), " bytes remaining"));
  }
  out.unrecognized.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    WARDEN_ASSIGN_OR_RETURN(
        absl::string_view name,
        r.ReadCString(What("option name", static_cast<size_t>(i) + 1)));
    out.unrecognized.push_back(name);
  }
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

absl::StatusOr<BindParam> ParseFunctionCallResponse(absl::string_view body) {
  Reader r(body, "FunctionCallResponse message");
  WARDEN_ASSIGN_OR_RETURN(BindParam result, r.ReadValue("result"));
  WARDEN_RETURN_IF_ERROR(r.ExpectEnd());
  return result;
}

// ------------------------------------------------------------- validation

namespace {

using Validator = absl::Status (*)(absl::string_view body);

absl::Status AnyBody(absl::string_view) { return absl::OkStatus(); }

// 'p': PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse. The
// variant depends on the auth state; every variant is non-empty.
absl::Status NonEmptyPassword(absl::string_view body) {
  if (!body.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "PasswordMessage: empty body (password, SASL and GSS responses are "
      "never empty)");
}

template <typename T, absl::StatusOr<T> (*Fn)(absl::string_view)>
absl::Status Discard(absl::string_view body) {
  return Fn(body).status();
}

template <char kType, bool kFrontend>
absl::Status Empty(absl::string_view body) {
  return ExpectEmpty(body, kFrontend
                               ? ToString(static_cast<FrontendType>(kType))
                               : ToString(static_cast<BackendType>(kType)));
}

// Hot path: no allocation, no Status construction unless invalid.
absl::Status ValidateDataRow(absl::string_view body) {
  const char* p = body.data();
  const size_t size = body.size();
  if (size < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DataRow message: truncated at column count (need 2 bytes, ", size,
        " remaining)"));
  }
  const size_t n = internal::LoadUint16(p);
  size_t pos = 2;
  if (n * 4 > size - pos) {
    return absl::InvalidArgumentError(
        absl::StrCat("DataRow message: column count ", n, " needs at least ",
                     n * 4, " bytes but only ", size - pos, " remain"));
  }
  for (size_t i = 0; i < n; ++i) {
    if (size - pos < 4) {
      return absl::InvalidArgumentError(
          absl::StrCat("DataRow message: truncated at column ", i + 1,
                       " length (need 4 bytes, ", size - pos, " remaining)"));
    }
    const int32_t len = internal::LoadInt32(p + pos);
    pos += 4;
    if (len == -1) continue;
    if (len < 0 || static_cast<size_t>(len) > size - pos) {
      if (len < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "DataRow message: column ", i + 1, " has invalid length ", len));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("DataRow message: column ", i + 1, " length ", len,
                       " exceeds remaining ", size - pos, " bytes"));
    }
    pos += static_cast<size_t>(len);
  }
  if (pos != size) {
    return absl::InvalidArgumentError(
        absl::StrCat("DataRow message: ", size - pos,
                     " trailing bytes after the last field"));
  }
  return absl::OkStatus();
}

struct ValidatorTable {
  std::array<Validator, 256> fn{};
  Validator& operator[](char c) { return fn[static_cast<unsigned char>(c)]; }
  Validator at(char c) const { return fn[static_cast<unsigned char>(c)]; }
};

ValidatorTable MakeFrontendTable() {
  ValidatorTable t;
  t['B'] = Discard<Bind, ParseBind>;
  t['C'] = Discard<Close, ParseClose>;
  t['d'] = AnyBody;
  t['c'] = Empty<'c', true>;
  t['f'] = Discard<CopyFail, ParseCopyFail>;
  t['D'] = Discard<Describe, ParseDescribe>;
  t['E'] = Discard<Execute, ParseExecute>;
  t['H'] = Empty<'H', true>;
  t['F'] = Discard<FunctionCall, ParseFunctionCall>;
  t['P'] = Discard<Parse, ParseParse>;
  t['p'] = NonEmptyPassword;
  t['Q'] = Discard<Query, ParseQuery>;
  t['S'] = Empty<'S', true>;
  t['X'] = Empty<'X', true>;
  return t;
}

ValidatorTable MakeBackendTable() {
  ValidatorTable t;
  t['R'] = Discard<Authentication, ParseAuthentication>;
  t['K'] = Discard<BackendKeyData, ParseBackendKeyData>;
  t['2'] = Empty<'2', false>;
  t['3'] = Empty<'3', false>;
  t['C'] = Discard<CommandComplete, ParseCommandComplete>;
  t['d'] = AnyBody;
  t['c'] = Empty<'c', false>;
  t['G'] = Discard<CopyResponse, ParseCopyResponse>;
  t['H'] = Discard<CopyResponse, ParseCopyResponse>;
  t['W'] = Discard<CopyResponse, ParseCopyResponse>;
  t['D'] = ValidateDataRow;
  t['I'] = Empty<'I', false>;
  t['E'] = Discard<ErrorResponse, ParseErrorResponse>;
  t['V'] = Discard<BindParam, ParseFunctionCallResponse>;
  t['v'] = Discard<NegotiateProtocolVersion, ParseNegotiateProtocolVersion>;
  t['n'] = Empty<'n', false>;
  t['N'] = Discard<ErrorResponse, ParseErrorResponse>;
  t['A'] = Discard<NotificationResponse, ParseNotificationResponse>;
  t['t'] = Discard<ParameterDescription, ParseParameterDescription>;
  t['S'] = Discard<ParameterStatus, ParseParameterStatus>;
  t['1'] = Empty<'1', false>;
  t['s'] = Empty<'s', false>;
  t['Z'] = Discard<ReadyForQuery, ParseReadyForQuery>;
  t['T'] = Discard<RowDescription, ParseRowDescription>;
  return t;
}

const ValidatorTable& FrontendTable() {
  static const ValidatorTable* const table =
      new ValidatorTable(MakeFrontendTable());
  return *table;
}

const ValidatorTable& BackendTable() {
  static const ValidatorTable* const table =
      new ValidatorTable(MakeBackendTable());
  return *table;
}

std::string UnknownType(const char* side, char type) {
  const unsigned char u = static_cast<unsigned char>(type);
  std::string out = absl::StrCat("unknown ", side, " message type 0x",
                                 absl::Hex(u, absl::kZeroPad2));
  if (u >= 0x21 && u <= 0x7e)
    absl::StrAppend(&out, " ('", std::string(1, type), "')");
  return out;
}

}  // namespace

std::string PrintableType(char type) {
  if (absl::ascii_isprint(static_cast<unsigned char>(type))) {
    return absl::StrCat("'", std::string(1, type), "'");
  }
  return absl::StrCat(
      "0x", absl::Hex(static_cast<unsigned char>(type), absl::kZeroPad2));
}

absl::Status ValidateFrontend(char type, absl::string_view body) {
  const Validator fn = FrontendTable().at(type);
  if (fn == nullptr) {
    return absl::InvalidArgumentError(UnknownType("frontend", type));
  }
  return fn(body);
}

absl::Status ValidateBackend(char type, absl::string_view body) {
  const Validator fn = BackendTable().at(type);
  if (fn == nullptr) {
    return absl::InvalidArgumentError(UnknownType("backend", type));
  }
  return fn(body);
}

}  // namespace warden::dataplane::pgwire
