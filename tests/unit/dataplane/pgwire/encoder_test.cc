#include <string>
#include <vector>

#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/framing.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/pgwire/sqlstate.h"
#include "dataplane/pgwire/startup.h"
#include "gtest/gtest.h"
#include "tests/unit/dataplane/pgwire/pgwire_test_util.h"

namespace warden::dataplane::pgwire {
namespace {

using testing::Cs;
using testing::I32;

// Frames exactly one typed message that must fill `out` completely, and
// checks it passes the matching validator.
Frame One(const std::string& out, bool backend) {
  const Frame f = NextMessage(out, kDefaultMaxBackendMessageSize);
  EXPECT_EQ(f.status, FrameStatus::kMessage) << f.error;
  EXPECT_EQ(f.size, out.size());
  const absl::Status v = backend ? ValidateBackend(f.type, f.body)
                                 : ValidateFrontend(f.type, f.body);
  EXPECT_TRUE(v.ok()) << v;
  return f;
}

Frame OnePacket(const std::string& out) {
  const Frame f = NextStartupPacket(out);
  EXPECT_EQ(f.status, FrameStatus::kMessage) << f.error;
  EXPECT_EQ(f.size, out.size());
  return f;
}

TEST(MessageWriterTest, ExactBytes) {
  std::string out = "prefix";
  MessageWriter w(&out);
  w.Begin('Z');
  w.Byte('I');
  w.End();
  EXPECT_EQ(out, std::string("prefix") + "Z" + I32(5) + "I");

  std::string pkt;
  MessageWriter p(&pkt);
  p.Begin(0);
  p.Int32(kSslRequestCode);
  p.Int16(-2);
  p.CString("ab");
  p.Bytes(absl::string_view("\0x", 2));
  p.End();
  EXPECT_EQ(pkt, I32(15) + I32(kSslRequestCode) + "\xff\xfe" + Cs("ab") +
                     std::string("\0x", 2));
}

TEST(MessageWriterTest, EmbeddedNulIsTruncatedAndOutputStaysValid) {
  std::string out;
  WriteQuery(&out, absl::string_view("SELECT 1\0; DROP TABLE x", 23));
  const Frame f = One(out, /*backend=*/false);
  auto q = ParseQuery(f.body);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->sql, "SELECT 1");
}

TEST(EncoderRoundTripTest, Authentication) {
  std::string out;
  WriteAuthenticationOk(&out);
  auto a = ParseAuthentication(One(out, true).body);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->code, kAuthOk);

  out.clear();
  WriteAuthenticationCleartextPassword(&out);
  a = ParseAuthentication(One(out, true).body);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->code, kAuthCleartextPassword);

  out.clear();
  WriteAuthenticationMd5Password(&out, "salt");
  a = ParseAuthentication(One(out, true).body);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->code, kAuthMd5Password);
  EXPECT_EQ(a->data, "salt");

  out.clear();
  WriteAuthenticationSasl(&out, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  a = ParseAuthentication(One(out, true).body);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->code, kAuthSasl);
  auto mechs = ParseSaslMechanisms(a->data);
  ASSERT_TRUE(mechs.ok());
  EXPECT_EQ(*mechs, (std::vector<absl::string_view>{"SCRAM-SHA-256-PLUS",
                                                    "SCRAM-SHA-256"}));

  out.clear();
  WriteAuthenticationSaslContinue(&out, "r=nonce,s=salt,i=4096");
  a = ParseAuthentication(One(out, true).body);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->code, kAuthSaslContinue);
  EXPECT_EQ(a->data, "r=nonce,s=salt,i=4096");

  out.clear();
  WriteAuthenticationSaslFinal(&out, "v=sig");
  a = ParseAuthentication(One(out, true).body);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->code, kAuthSaslFinal);
  EXPECT_EQ(a->data, "v=sig");
}

TEST(EncoderRoundTripTest, SessionMessages) {
  std::string out;
  WriteBackendKeyData(&out, 31337, -1);
  auto k = ParseBackendKeyData(One(out, true).body);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->pid, 31337);
  EXPECT_EQ(k->secret, -1);

  out.clear();
  WriteParameterStatus(&out, "client_encoding", "UTF8");
  auto ps = ParseParameterStatus(One(out, true).body);
  ASSERT_TRUE(ps.ok());
  EXPECT_EQ(ps->name, "client_encoding");
  EXPECT_EQ(ps->value, "UTF8");

  out.clear();
  WriteReadyForQuery(&out, 'T');
  auto z = ParseReadyForQuery(One(out, true).body);
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->status, 'T');

  out.clear();
  WriteCommandComplete(&out, "SELECT 3");
  auto cc = ParseCommandComplete(One(out, true).body);
  ASSERT_TRUE(cc.ok());
  EXPECT_EQ(cc->tag, "SELECT 3");

  out.clear();
  WriteEmptyQueryResponse(&out);
  EXPECT_EQ(out, "I" + I32(4));

  out.clear();
  WriteNegotiateProtocolVersion(&out, 0, {"_pq_.foo", "_pq_.bar"});
  auto n = ParseNegotiateProtocolVersion(One(out, true).body);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->newest_minor, 0);
  EXPECT_EQ(n->unrecognized,
            (std::vector<absl::string_view>{"_pq_.foo", "_pq_.bar"}));
}

TEST(EncoderRoundTripTest, ErrorAndNotice) {
  std::string out;
  WriteErrorResponse(&out, "FATAL", kInvalidPassword,
                     "password authentication failed", "the detail",
                     "the hint");
  const Frame f = One(out, true);
  EXPECT_EQ(f.type, 'E');
  auto e = ParseErrorResponse(f.body);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->Get('S'), "FATAL");
  EXPECT_EQ(e->Get('V'), "FATAL");
  EXPECT_EQ(e->Get('C'), "28P01");
  EXPECT_EQ(e->Get('M'), "password authentication failed");
  EXPECT_EQ(e->Get('D'), "the detail");
  EXPECT_EQ(e->Get('H'), "the hint");
  ASSERT_EQ(e->fields.size(), 6u);
  EXPECT_EQ(e->fields[0].code, 'S');
  EXPECT_EQ(e->fields[5].code, 'H');

  out.clear();
  WriteErrorResponse(&out, "ERROR", kProtocolViolation, "bad");
  e = ParseErrorResponse(One(out, true).body);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->fields.size(), 4u);  // no D, no H
  EXPECT_EQ(e->Get('C'), "08P01");

  out.clear();
  WriteErrorResponse(&out, "ERROR", "42601", "syntax error", "", "", 12);
  e = ParseErrorResponse(One(out, true).body);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->fields.size(), 5u);  // S V C M P
  EXPECT_EQ(e->Get('P'), "12");

  out.clear();
  WriteNoticeResponse(&out, "WARNING", kInsufficientPrivilege, "careful");
  const Frame nf = One(out, true);
  EXPECT_EQ(nf.type, 'N');
  e = ParseErrorResponse(nf.body);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->Get('S'), "WARNING");
  EXPECT_EQ(e->Get('C'), "42501");
  EXPECT_EQ(e->Get('M'), "careful");
}

TEST(EncoderRoundTripTest, StartupPackets) {
  std::string out;
  WriteStartupMessage(
      &out,
      {{"user", "warden"}, {"database", "app"}, {"application_name", "x"}});
  auto s = ParseStartup(OnePacket(out).body);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kind, StartupKind::kStartup);
  EXPECT_EQ(s->protocol_version, kProtocolV3);
  ASSERT_EQ(s->parameters.size(), 3u);
  EXPECT_EQ(s->Get("user"), "warden");
  EXPECT_EQ(s->parameters[2].first, "application_name");

  out.clear();
  WriteSslRequest(&out);
  EXPECT_EQ(out, I32(8) + I32(80877103));
  s = ParseStartup(OnePacket(out).body);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, StartupKind::kSslRequest);

  out.clear();
  WriteGssEncRequest(&out);
  s = ParseStartup(OnePacket(out).body);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, StartupKind::kGssEncRequest);

  out.clear();
  WriteCancelRequest(&out, 99, 123456789);
  EXPECT_EQ(out.size(), 16u);
  s = ParseStartup(OnePacket(out).body);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, StartupKind::kCancelRequest);
  EXPECT_EQ(s->cancel_pid, 99);
  EXPECT_EQ(s->cancel_secret, 123456789);
}

TEST(EncoderRoundTripTest, FrontendMessages) {
  std::string out;
  WritePasswordMessage(&out, "s3cret");
  Frame f = One(out, false);
  EXPECT_EQ(f.type, 'p');
  auto pw = ParsePasswordMessage(f.body);
  ASSERT_TRUE(pw.ok());
  EXPECT_EQ(*pw, "s3cret");

  out.clear();
  WriteSaslInitialResponse(&out, "SCRAM-SHA-256", "n,,n=,r=abc");
  auto sir = ParseSaslInitialResponse(One(out, false).body);
  ASSERT_TRUE(sir.ok()) << sir.status();
  EXPECT_EQ(sir->mechanism, "SCRAM-SHA-256");
  EXPECT_TRUE(sir->has_data);
  EXPECT_EQ(sir->data, "n,,n=,r=abc");

  out.clear();
  WriteSaslResponse(&out, "c=biws,r=abc,p=xyz");
  f = One(out, false);
  EXPECT_EQ(f.body, "c=biws,r=abc,p=xyz");

  out.clear();
  WriteQuery(&out, "SELECT now()");
  auto q = ParseQuery(One(out, false).body);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->sql, "SELECT now()");

  out.clear();
  WriteSync(&out);
  WriteTerminate(&out);
  EXPECT_EQ(out, "S" + I32(4) + "X" + I32(4));
}

TEST(EncoderRoundTripTest, SqlStateConstantsAreFiveChars) {
  for (const char* code :
       {kProtocolViolation, kConnectionFailure, kConnectionException,
        kRejectedConnection, kInvalidPassword, kInvalidAuthorization,
        kTooManyConnections, kInvalidCatalogName, kFeatureNotSupported,
        kAdminShutdown, kInternalError, kInsufficientPrivilege, kQueryCanceled,
        kProgramLimitExceeded}) {
    EXPECT_EQ(std::string(code).size(), 5u) << code;
  }
  EXPECT_STREQ(kProtocolViolation, "08P01");
  EXPECT_STREQ(kQueryCanceled, "57014");
}

}  // namespace
}  // namespace warden::dataplane::pgwire
