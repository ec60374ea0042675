#include <functional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/pgwire/startup.h"
#include "gtest/gtest.h"
#include "tests/unit/dataplane/pgwire/pgwire_test_util.h"

namespace warden::dataplane::pgwire {
namespace {

using testing::Byte;
using testing::Cs;
using testing::I16;
using testing::I32;
using testing::Keep;

// ------------------------------------------------------------- test inputs

std::string BindBody() {
  return Cs("portal") + Cs("stmt") + I16(2) + I16(0) + I16(1) + I16(2) +
         I32(3) + "abc" + I32(-1) + I16(1) + I16(1);
}
std::string ParseBody() {
  return Cs("s1") + Cs("SELECT $1, $2") + I16(2) + I32(23) + I32(0);
}
std::string FunctionCallBody() {
  return I32(1598) + I16(1) + I16(1) + I16(2) + I32(2) + "hi" + I32(-1) +
         I16(0);
}
std::string RowDescriptionBody() {
  return I16(2) + Cs("id") + I32(16384) + I16(1) + I32(23) + I16(4) + I32(-1) +
         I16(0) + Cs("") + I32(0) + I16(0) + I32(25) + I16(-1) + I32(-1) +
         I16(1);
}
std::string DataRowBody() { return I16(3) + I32(1) + "1" + I32(-1) + I32(0); }
std::string ErrorBody() {
  return Byte('S') + Cs("ERROR") + Byte('C') + Cs("42P01") + Byte('M') +
         Cs("relation \"x\" does not exist") + Byte('\0');
}

// A structured message whose every strict prefix and every one-byte
// extension must be rejected.
struct Case {
  const char* name;
  std::string body;
  std::function<absl::Status(absl::string_view)> parse;
};

std::vector<Case> StructuredCases() {
  auto wrap = [](auto fn) {
    return [fn](absl::string_view b) { return fn(b).status(); };
  };
  return {
      {"Query", Cs("SELECT 1"), wrap(ParseQuery)},
      {"Parse", ParseBody(), wrap(ParseParse)},
      {"Bind", BindBody(), wrap(ParseBind)},
      {"Execute", Cs("p") + I32(10), wrap(ParseExecute)},
      {"Describe", Byte('S') + Cs("s1"), wrap(ParseDescribe)},
      {"Close", Byte('P') + Cs(""), wrap(ParseClose)},
      {"CopyFail", Cs("boom"), wrap(ParseCopyFail)},
      {"FunctionCall", FunctionCallBody(), wrap(ParseFunctionCall)},
      {"PasswordMessage", Cs("secret"), wrap(ParsePasswordMessage)},
      {"SASLInitialResponse", Cs("SCRAM-SHA-256") + I32(3) + "n,,",
       wrap(ParseSaslInitialResponse)},
      {"SASLInitialResponse null", Cs("SCRAM-SHA-256") + I32(-1),
       wrap(ParseSaslInitialResponse)},
      {"AuthOk", I32(0), wrap(ParseAuthentication)},
      {"AuthMd5", I32(5) + "salt", wrap(ParseAuthentication)},
      {"AuthSasl", I32(10) + Cs("SCRAM-SHA-256") + Cs(""),
       wrap(ParseAuthentication)},
      {"BackendKeyData", I32(42) + I32(7), wrap(ParseBackendKeyData)},
      {"ParameterStatus", Cs("TimeZone") + Cs("UTC"),
       wrap(ParseParameterStatus)},
      {"ReadyForQuery", "I", wrap(ParseReadyForQuery)},
      {"CommandComplete", Cs("SELECT 1"), wrap(ParseCommandComplete)},
      {"ErrorResponse", ErrorBody(), wrap(ParseErrorResponse)},
      {"NotificationResponse", I32(9) + Cs("chan") + Cs("payload"),
       wrap(ParseNotificationResponse)},
      {"CopyResponse", Byte(1) + I16(2) + I16(0) + I16(1),
       wrap(ParseCopyResponse)},
      {"DataRow", DataRowBody(), wrap(ParseDataRow)},
      {"DataRow validate", DataRowBody(),
       [](absl::string_view b) { return ValidateBackend('D', b); }},
      {"RowDescription", RowDescriptionBody(), wrap(ParseRowDescription)},
      {"ParameterDescription", I16(2) + I32(23) + I32(25),
       wrap(ParseParameterDescription)},
      {"NegotiateProtocolVersion",
       I32(0) + I32(2) + Cs("_pq_.a") + Cs("_pq_.b"),
       wrap(ParseNegotiateProtocolVersion)},
      {"FunctionCallResponse", I32(2) + "ok", wrap(ParseFunctionCallResponse)},
      {"Startup", I32(kProtocolV3) + Cs("user") + Cs("bob") + Cs(""),
       wrap(ParseStartup)},
      {"CancelRequest", I32(kCancelRequestCode) + I32(1) + I32(2),
       wrap(ParseStartup)},
  };
}

TEST(PgwireMessagesTest, EveryCaseIsValidAsIs) {
  for (const Case& c : StructuredCases()) {
    EXPECT_TRUE(c.parse(c.body).ok()) << c.name << ": " << c.parse(c.body);
  }
}

TEST(PgwireMessagesTest, EveryTruncationIsAnError) {
  for (const Case& c : StructuredCases()) {
    for (size_t k = 0; k < c.body.size(); ++k) {
      // Copy into an exactly-sized heap buffer so ASan catches overreads.
      const std::string prefix = c.body.substr(0, k);
      const absl::Status s = c.parse(prefix);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument)
          << c.name << " truncated to " << k << " bytes";
    }
  }
}

TEST(PgwireMessagesTest, EveryTrailingByteIsAnError) {
  for (const Case& c : StructuredCases()) {
    const absl::Status s = c.parse(c.body + "Z");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
  }
}

// ---------------------------------------------------------------- frontend

TEST(PgwireMessagesTest, Query) {
  auto q = ParseQuery(Keep(Cs("SELECT 1")));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->sql, "SELECT 1");
  EXPECT_EQ(ParseQuery(Cs("a") + Cs("b")).status().message(),
            "Query message: 2 trailing bytes after the last field");
}

TEST(PgwireMessagesTest, Parse) {
  auto p = ParseParse(Keep(ParseBody()));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->statement, "s1");
  EXPECT_EQ(p->query, "SELECT $1, $2");
  EXPECT_EQ(p->param_types, (std::vector<uint32_t>{23, 0}));
  // A count far larger than the body is rejected before any allocation.
  auto big = ParseParse(Keep(Cs("") + Cs("x") + I16(65535) + I32(1)));
  EXPECT_NE(big.status().message().find("parameter type count 65535"),
            std::string::npos)
      << big.status();
}

TEST(PgwireMessagesTest, Bind) {
  auto b = ParseBind(Keep(BindBody()));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->portal, "portal");
  EXPECT_EQ(b->statement, "stmt");
  EXPECT_EQ(b->param_formats, (std::vector<int16_t>{0, 1}));
  ASSERT_EQ(b->params.size(), 2u);
  EXPECT_FALSE(b->params[0].is_null);
  EXPECT_EQ(b->params[0].value, "abc");
  EXPECT_TRUE(b->params[1].is_null);
  EXPECT_EQ(b->result_formats, (std::vector<int16_t>{1}));
}

TEST(PgwireMessagesTest, BindTargetSkipsTheParameters) {
  auto b = ParseBindTarget(Keep(BindBody()));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->portal, "portal");
  EXPECT_EQ(b->statement, "stmt");
  EXPECT_EQ(b->result_formats, (std::vector<int16_t>{1}));
  // Its structure is checked as ParseBind's is: a parameter running past
  // the body, a format count that fits no parameter count, trailing bytes.
  const std::string overrun = Cs("") + Cs("") + I16(0) + I16(2) + I32(1) +
                              "x" + I32(900) + std::string(12, 'y');
  EXPECT_EQ(ParseBindTarget(overrun).status().message(),
            "Bind message: parameter 2 length 900 exceeds remaining 12 bytes");
  EXPECT_FALSE(
      ParseBindTarget(Cs("") + Cs("") + I16(2) + I16(0) + I16(0) + I16(1) +
                      I16(0) + I16(0))
          .ok());
  EXPECT_FALSE(ParseBindTarget(BindBody() + "z").ok());
}

TEST(PgwireMessagesTest, BindParameterLengthOverrun) {
  const std::string body = Cs("") + Cs("") + I16(0) + I16(2) + I32(1) + "x" +
                           I32(900) + std::string(12, 'y');
  EXPECT_EQ(ParseBind(body).status().message(),
            "Bind message: parameter 2 length 900 exceeds remaining 12 bytes");
}

TEST(PgwireMessagesTest, BindRejectsBadLengthsAndFormats) {
  EXPECT_EQ(ParseBind(Cs("") + Cs("") + I16(0) + I16(1) + I32(-2) + I16(0))
                .status()
                .message(),
            "Bind message: parameter 1 has invalid length -2");
  EXPECT_EQ(ParseBind(Cs("") + Cs("") + I16(1) + I16(2) + I16(0) + I16(0))
                .status()
                .message(),
            "Bind message: parameter format 1 is 2 (must be 0 for text or 1 "
            "for binary)");
  // 2 formats for 3 parameters.
  EXPECT_EQ(ParseBind(Cs("") + Cs("") + I16(2) + I16(0) + I16(0) + I16(3) +
                      I32(-1) + I32(-1) + I32(-1) + I16(0))
                .status()
                .message(),
            "Bind message: 2 parameter formats but 3 parameters (must be 0, 1 "
            "or equal)");
  // 0 formats and 1 format are both fine.
  EXPECT_TRUE(ParseBind(Cs("") + Cs("") + I16(1) + I16(1) + I16(2) + I32(-1) +
                        I32(0) + I16(0))
                  .ok());
  EXPECT_EQ(ParseBind(Cs("") + Cs("") + I16(0) + I16(0) + I16(1) + I16(7))
                .status()
                .message(),
            "Bind message: result format 1 is 7 (must be 0 for text or 1 for "
            "binary)");
}

TEST(PgwireMessagesTest, ExecuteDescribeClose) {
  auto e = ParseExecute(Keep(Cs("p1") + I32(100)));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->portal, "p1");
  EXPECT_EQ(e->max_rows, 100);
  auto d = ParseDescribe(Keep(Byte('P') + Cs("p1")));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->kind, 'P');
  EXPECT_EQ(d->name, "p1");
  auto c = ParseClose(Keep(Byte('S') + Cs("")));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, 'S');
  EXPECT_EQ(c->name, "");
  EXPECT_EQ(ParseDescribe(Byte('X') + Cs("a")).status().message(),
            "Describe message: kind is 'X' (must be 'S' or 'P')");
  EXPECT_FALSE(ParseClose(Byte('\0') + Cs("a")).ok());
}

TEST(PgwireMessagesTest, FunctionCall) {
  auto f = ParseFunctionCall(Keep(FunctionCallBody()));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->function_oid, 1598u);
  EXPECT_EQ(f->arg_formats, (std::vector<int16_t>{1}));
  ASSERT_EQ(f->args.size(), 2u);
  EXPECT_EQ(f->args[0].value, "hi");
  EXPECT_TRUE(f->args[1].is_null);
  EXPECT_EQ(f->result_format, 0);
  EXPECT_FALSE(
      ParseFunctionCall(I32(1) + I16(0) + I16(0) + I16(5)).ok());  // format 5
}

TEST(PgwireMessagesTest, PasswordAndSasl) {
  auto p = ParsePasswordMessage(Keep(Cs("hunter2")));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, "hunter2");
  EXPECT_FALSE(ParsePasswordMessage("no-nul").ok());
  EXPECT_FALSE(ParsePasswordMessage(Cs("a") + "b").ok());

  auto s =
      ParseSaslInitialResponse(Keep(Cs("SCRAM-SHA-256") + I32(5) + "n,,ab"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->mechanism, "SCRAM-SHA-256");
  EXPECT_TRUE(s->has_data);
  EXPECT_EQ(s->data, "n,,ab");
  auto n = ParseSaslInitialResponse(Keep(Cs("X") + I32(-1)));
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(n->has_data);
  EXPECT_FALSE(ParseSaslInitialResponse(Cs("") + I32(0)).ok());
  EXPECT_EQ(
      ParseSaslInitialResponse(Cs("X") + I32(10) + "abc").status().message(),
      "SASLInitialResponse message: initial response length 10 exceeds "
      "remaining 3 bytes");
}

TEST(PgwireMessagesTest, ValidateFrontendTable) {
  EXPECT_TRUE(ValidateFrontend('Q', Cs("x")).ok());
  EXPECT_TRUE(ValidateFrontend('B', BindBody()).ok());
  EXPECT_TRUE(ValidateFrontend('d', "").ok());
  EXPECT_TRUE(ValidateFrontend('p', "anything").ok());
  EXPECT_EQ(ValidateFrontend('p', "").message(),
            "PasswordMessage: empty body (password, SASL and GSS responses "
            "are never empty)");
  for (char t : {'S', 'H', 'X', 'c'}) {
    EXPECT_TRUE(ValidateFrontend(t, "").ok()) << t;
    EXPECT_FALSE(ValidateFrontend(t, "x").ok()) << t;
  }
  EXPECT_EQ(ValidateFrontend('S', "xy").message(),
            "Sync message: expected an empty body, got 2 bytes");
  EXPECT_FALSE(ValidateFrontend('Q', "x").ok());
  EXPECT_EQ(ValidateFrontend('\x07', "").message(),
            "unknown frontend message type 0x07");
  EXPECT_EQ(ValidateFrontend('Z', "").message(),
            "unknown frontend message type 0x5a ('Z')");
  // Backend-only types are not frontend messages.
  EXPECT_FALSE(ValidateFrontend('T', RowDescriptionBody()).ok());
}

// ----------------------------------------------------------------- backend

TEST(PgwireMessagesTest, Authentication) {
  auto ok = ParseAuthentication(Keep(I32(0)));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->code, 0);
  EXPECT_TRUE(ok->data.empty());
  auto md5 = ParseAuthentication(Keep(I32(5) + "abcd"));
  ASSERT_TRUE(md5.ok());
  EXPECT_EQ(md5->data, "abcd");
  EXPECT_FALSE(ParseAuthentication(I32(5) + "abc").ok());
  EXPECT_FALSE(ParseAuthentication(I32(3) + "x").ok());
  auto cont = ParseAuthentication(Keep(I32(11) + "r=abc"));
  ASSERT_TRUE(cont.ok());
  EXPECT_EQ(cont->data, "r=abc");
  EXPECT_EQ(ParseAuthentication(I32(99)).status().message(),
            "Authentication message: unknown authentication code 99");

  auto sasl = ParseAuthentication(
      Keep(I32(10) + Cs("SCRAM-SHA-256-PLUS") + Cs("SCRAM-SHA-256") + Cs("")));
  ASSERT_TRUE(sasl.ok()) << sasl.status();
  auto mechs = ParseSaslMechanisms(sasl->data);
  ASSERT_TRUE(mechs.ok());
  EXPECT_EQ(*mechs, (std::vector<absl::string_view>{"SCRAM-SHA-256-PLUS",
                                                    "SCRAM-SHA-256"}));
  EXPECT_FALSE(ParseAuthentication(I32(10) + Cs("")).ok());  // none offered
  EXPECT_FALSE(
      ParseAuthentication(I32(10) + Cs("SCRAM-SHA-256")).ok());  // no final
}

TEST(PgwireMessagesTest, SimpleBackendMessages) {
  auto k = ParseBackendKeyData(Keep(I32(1234) + I32(-5)));
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->pid, 1234);
  EXPECT_EQ(k->secret, -5);
  auto ps = ParseParameterStatus(Keep(Cs("server_version") + Cs("16.2")));
  ASSERT_TRUE(ps.ok());
  EXPECT_EQ(ps->name, "server_version");
  EXPECT_EQ(ps->value, "16.2");
  for (char c : {'I', 'T', 'E'}) {
    auto z = ParseReadyForQuery(Byte(c));
    ASSERT_TRUE(z.ok());
    EXPECT_EQ(z->status, c);
  }
  EXPECT_EQ(ParseReadyForQuery("X").status().message(),
            "ReadyForQuery message: transaction status is 'X' (must be 'I', "
            "'T' or 'E')");
  auto cc = ParseCommandComplete(Keep(Cs("INSERT 0 1")));
  ASSERT_TRUE(cc.ok());
  EXPECT_EQ(cc->tag, "INSERT 0 1");
  auto nr = ParseNotificationResponse(Keep(I32(77) + Cs("ch") + Cs("")));
  ASSERT_TRUE(nr.ok());
  EXPECT_EQ(nr->pid, 77);
  EXPECT_EQ(nr->channel, "ch");
  EXPECT_EQ(nr->payload, "");
  auto fr = ParseFunctionCallResponse(Keep(I32(-1)));
  ASSERT_TRUE(fr.ok());
  EXPECT_TRUE(fr->is_null);
}

TEST(PgwireMessagesTest, ErrorResponse) {
  auto e = ParseErrorResponse(Keep(ErrorBody()));
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->fields.size(), 3u);
  EXPECT_EQ(e->Get('S'), "ERROR");
  EXPECT_EQ(e->Get('C'), "42P01");
  EXPECT_EQ(e->Get('M'), "relation \"x\" does not exist");
  EXPECT_EQ(e->Get('H'), "");
  auto empty = ParseErrorResponse(Keep(Byte('\0')));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->fields.empty());
  EXPECT_FALSE(ParseErrorResponse("").ok());
  EXPECT_TRUE(ValidateBackend('N', ErrorBody()).ok());
}

TEST(PgwireMessagesTest, CopyResponse) {
  auto c = ParseCopyResponse(Keep(Byte(1) + I16(2) + I16(0) + I16(1)));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->format, 1);
  EXPECT_EQ(c->column_formats, (std::vector<int16_t>{0, 1}));
  EXPECT_TRUE(ParseCopyResponse(Byte(0) + I16(1) + I16(0)).ok());
  EXPECT_EQ(ParseCopyResponse(Byte(0) + I16(1) + I16(1)).status().message(),
            "CopyResponse message: column format 1 is binary in a "
            "text-format copy");
  EXPECT_FALSE(ParseCopyResponse(Byte(2) + I16(0)).ok());
  for (char t : {'G', 'H', 'W'}) {
    EXPECT_TRUE(ValidateBackend(t, Byte(0) + I16(0)).ok()) << t;
  }
}

TEST(PgwireMessagesTest, DataRow) {
  auto d = ParseDataRow(Keep(DataRowBody()));
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->columns.size(), 3u);
  EXPECT_EQ(d->columns[0].value, "1");
  EXPECT_TRUE(d->columns[1].is_null);
  EXPECT_FALSE(d->columns[2].is_null);
  EXPECT_EQ(d->columns[2].value, "");
  EXPECT_TRUE(ValidateBackend('D', I16(0)).ok());
  EXPECT_EQ(ValidateBackend('D', I16(1) + I32(5) + "abc").message(),
            "DataRow message: column 1 length 5 exceeds remaining 3 bytes");
  EXPECT_EQ(ValidateBackend('D', I16(1) + I32(-3)).message(),
            "DataRow message: column 1 has invalid length -3");
  EXPECT_EQ(ValidateBackend('D', I16(1) + I32(1) + "ab").message(),
            "DataRow message: 1 trailing bytes after the last field");
  EXPECT_EQ(ValidateBackend('D', I16(2) + I32(1) + "a" + "xyz").message(),
            "DataRow message: truncated at column 2 length (need 4 bytes, 3 "
            "remaining)");
  EXPECT_EQ(ValidateBackend('D', I16(3) + I32(-1)).message(),
            "DataRow message: column count 3 needs at least 12 bytes but only "
            "4 remain");
}

TEST(PgwireMessagesTest, DataRowValidatorAgreesWithParser) {
  // Exhaustive over small bodies built from a few interesting fragments.
  const std::vector<std::string> frags = {I16(0), I16(1), I16(2), I32(-1),
                                          I32(0), I32(1), "a",    I32(-2)};
  std::vector<std::string> bodies = {""};
  for (int depth = 0; depth < 4; ++depth) {
    std::vector<std::string> next;
    for (const std::string& b : bodies) {
      for (const std::string& f : frags) next.push_back(b + f);
    }
    for (const std::string& b : next) {
      EXPECT_EQ(ValidateBackend('D', b).ok(), ParseDataRow(b).ok())
          << absl::CHexEscape(b);
      EXPECT_EQ(ValidateBackend('D', b).message(),
                ParseDataRow(b).status().message());
    }
    bodies = std::move(next);
  }
}

TEST(PgwireMessagesTest, RowAndParameterDescription) {
  auto r = ParseRowDescription(Keep(RowDescriptionBody()));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->fields.size(), 2u);
  EXPECT_EQ(r->fields[0].name, "id");
  EXPECT_EQ(r->fields[0].table_oid, 16384u);
  EXPECT_EQ(r->fields[0].column, 1);
  EXPECT_EQ(r->fields[0].type_oid, 23u);
  EXPECT_EQ(r->fields[0].type_size, 4);
  EXPECT_EQ(r->fields[0].type_modifier, -1);
  EXPECT_EQ(r->fields[0].format, 0);
  EXPECT_EQ(r->fields[1].name, "");
  EXPECT_EQ(r->fields[1].type_size, -1);
  EXPECT_EQ(r->fields[1].format, 1);
  auto p = ParseParameterDescription(Keep(I16(2) + I32(23) + I32(25)));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type_oids, (std::vector<uint32_t>{23, 25}));
}

TEST(PgwireMessagesTest, NegotiateProtocolVersion) {
  auto n = ParseNegotiateProtocolVersion(Keep(I32(0) + I32(1) + Cs("_pq_.x")));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->newest_minor, 0);
  EXPECT_EQ(n->unrecognized, (std::vector<absl::string_view>{"_pq_.x"}));
  EXPECT_FALSE(ParseNegotiateProtocolVersion(I32(0) + I32(-1)).ok());
  EXPECT_FALSE(ParseNegotiateProtocolVersion(I32(0) + I32(1000000)).ok());
}

TEST(PgwireMessagesTest, ValidateBackendTable) {
  for (char t : {'1', '2', '3', 'n', 'I', 's', 'c'}) {
    EXPECT_TRUE(ValidateBackend(t, "").ok()) << t;
    EXPECT_FALSE(ValidateBackend(t, "x").ok()) << t;
  }
  EXPECT_TRUE(ValidateBackend('T', RowDescriptionBody()).ok());
  EXPECT_TRUE(ValidateBackend('Z', "T").ok());
  EXPECT_FALSE(ValidateBackend('Z', "").ok());
  EXPECT_TRUE(ValidateBackend('d', "raw").ok());
  EXPECT_EQ(ValidateBackend('Q', Cs("x")).message(),
            "unknown backend message type 0x51 ('Q')");
  EXPECT_FALSE(ValidateBackend('\0', "").ok());
  EXPECT_FALSE(ValidateBackend('\xff', "").ok());
}

TEST(PgwireMessagesTest, TypeNames) {
  EXPECT_STREQ(ToString(FrontendType::kBind), "Bind");
  EXPECT_STREQ(ToString(static_cast<FrontendType>('z')), "Unknown");
  EXPECT_STREQ(ToString(BackendType::kDataRow), "DataRow");
  EXPECT_STREQ(ToString(static_cast<BackendType>('z')), "Unknown");
  EXPECT_TRUE(IsFrontendType('p'));
  EXPECT_FALSE(IsFrontendType('T'));
  EXPECT_TRUE(IsBackendType('T'));
}

// ----------------------------------------------------------------- startup

TEST(PgwireStartupTest, StartupMessage) {
  const std::string body = I32(kProtocolV3) + Cs("user") + Cs("alice") +
                           Cs("database") + Cs("prod") + Cs("options") +
                           Cs("") + Cs("");
  auto s = ParseStartup(body);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kind, StartupKind::kStartup);
  EXPECT_EQ(s->protocol_version, kProtocolV3);
  ASSERT_EQ(s->parameters.size(), 3u);
  EXPECT_EQ(s->parameters[1].first, "database");
  EXPECT_EQ(s->Get("user"), "alice");
  EXPECT_EQ(s->Get("database"), "prod");
  EXPECT_EQ(s->Get("options"), "");
  EXPECT_EQ(s->Get("missing"), "");
  // Views point into the caller's buffer.
  EXPECT_EQ(s->Get("user").data(), body.data() + 9);
}

TEST(PgwireStartupTest, SpecialRequests) {
  auto ssl = ParseStartup(Keep(I32(kSslRequestCode)));
  ASSERT_TRUE(ssl.ok());
  EXPECT_EQ(ssl->kind, StartupKind::kSslRequest);
  auto gss = ParseStartup(Keep(I32(kGssEncRequestCode)));
  ASSERT_TRUE(gss.ok());
  EXPECT_EQ(gss->kind, StartupKind::kGssEncRequest);
  auto cancel =
      ParseStartup(Keep(I32(kCancelRequestCode) + I32(4321) + I32(-99)));
  ASSERT_TRUE(cancel.ok());
  EXPECT_EQ(cancel->kind, StartupKind::kCancelRequest);
  EXPECT_EQ(cancel->cancel_pid, 4321);
  EXPECT_EQ(cancel->cancel_secret, -99);

  EXPECT_EQ(ParseStartup(I32(kSslRequestCode) + "x").status().message(),
            "SSLRequest: expected a 4-byte body, got 5 bytes");
  EXPECT_FALSE(ParseStartup(I32(kGssEncRequestCode) + I32(0)).ok());
  EXPECT_EQ(ParseStartup(I32(kCancelRequestCode) + I32(1)).status().message(),
            "CancelRequest: expected a 12-byte body, got 8 bytes");
  EXPECT_FALSE(
      ParseStartup(I32(kCancelRequestCode) + I32(1) + I32(2) + "x").ok());
}

TEST(PgwireStartupTest, ProtocolVersions) {
  EXPECT_EQ(ParseStartup(I32(2 << 16) + Cs("user") + Cs("a") + Cs(""))
                .status()
                .message(),
            "unsupported frontend protocol 2.0: Warden speaks 3.0");
  EXPECT_EQ(ParseStartup(I32((4 << 16) | 1)).status().message(),
            "unsupported frontend protocol 4.1: Warden speaks 3.0");
  auto v32 = ParseStartup(Keep(I32((3 << 16) | 2) + Cs("user") + Cs("a") +
                               Cs("_pq_.opt") + Cs("1") + Cs("")));
  ASSERT_TRUE(v32.ok()) << v32.status();
  EXPECT_EQ(v32->protocol_version, (3 << 16) | 2);
  EXPECT_FALSE(ParseStartup("").ok());
  EXPECT_FALSE(ParseStartup(absl::string_view("\0\3\0", 3)).ok());
}

TEST(PgwireStartupTest, MalformedParameters) {
  const std::string v = I32(kProtocolV3);
  EXPECT_EQ(
      ParseStartup(v + Cs("database") + Cs("x") + Cs("")).status().message(),
      "startup packet: no PostgreSQL user name specified");
  EXPECT_EQ(ParseStartup(v + Cs("user") + Cs("") + Cs("")).status().message(),
            "startup packet: no PostgreSQL user name specified");
  EXPECT_EQ(
      ParseStartup(v + Cs("user") + Cs("a") + Cs("user") + Cs("b") + Cs(""))
          .status()
          .message(),
      "startup packet: duplicate parameter \"user\"");
  EXPECT_EQ(ParseStartup(v + Cs("user") + Cs("a")).status().message(),
            "startup packet: parameter list is missing its terminating NUL");
  EXPECT_EQ(ParseStartup(v).status().message(),
            "startup packet: parameter list is missing its terminating NUL");
  EXPECT_EQ(ParseStartup(v + Cs("user") + "a").status().message(),
            "startup packet: value of parameter \"user\" is not "
            "NUL-terminated");
  EXPECT_EQ(ParseStartup(v + Cs("user") + Cs("a") + "dat").status().message(),
            "startup packet: parameter name \"dat\" is not NUL-terminated");
  EXPECT_EQ(
      ParseStartup(v + Cs("user") + Cs("a") + Cs("") + "zz").status().message(),
      "startup packet: 2 trailing bytes after the parameter list "
      "terminator");
}

}  // namespace
}  // namespace warden::dataplane::pgwire
