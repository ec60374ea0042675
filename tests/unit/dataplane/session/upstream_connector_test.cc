// How Warden reaches a client's database: literal addresses at once, host
// names through the resolver, every address tried once in order, TLS
// asked for first when configured and required of the answer (fail
// closed), the startup message, and what each failure tells the client.
#include "dataplane/session/upstream_connector.h"

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "dataplane/config/config.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/sqlstate.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::dataplane::session {
namespace {

using ::testing::HasSubstr;

// Stands for the upstream's TLS context (never dereferenced here).
SSL_CTX* const kContext = reinterpret_cast<SSL_CTX*>(0x1);

config::Upstream Upstream(std::string host, config::UpstreamTlsMode tls) {
  config::Upstream up;
  up.host = std::move(host);
  up.port = 6543;
  up.database = "shop_db";
  up.tls_mode = tls;
  up.server_name = "db.example.com";
  return up;
}

UpstreamConnector Connector(const config::Upstream* up) {
  return UpstreamConnector(
      up,
      up->tls_mode == config::UpstreamTlsMode::kDisable ? nullptr : kContext,
      "svc_reader", {{"application_name", "psql"}});
}

TEST(UpstreamConnectorTest, ALiteralAddressIsUsedAsItIs) {
  for (const std::string host : {"127.0.0.1", "::1"}) {
    const auto up = Upstream(host, config::UpstreamTlsMode::kDisable);
    const auto literal = Connector(&up).LiteralAddresses();
    ASSERT_TRUE(literal.has_value()) << host;
    ASSERT_EQ(literal->size(), 1u);
    EXPECT_EQ((*literal)[0].first, host);
    EXPECT_EQ((*literal)[0].second, 6543);
  }
  const auto named = Upstream("db.internal", config::UpstreamTlsMode::kDisable);
  EXPECT_FALSE(Connector(&named).LiteralAddresses().has_value());
}

TEST(UpstreamConnectorTest, EveryAddressIsTriedOnceInOrder) {
  const auto up = Upstream("db.internal", config::UpstreamTlsMode::kDisable);
  UpstreamConnector c = Connector(&up);
  EXPECT_EQ(c.NextAddress(), nullptr);
  c.SetAddresses({{"10.0.0.1", 6543}, {"10.0.0.2", 6543}});
  ASSERT_TRUE(c.has_next());
  const auto* first = c.NextAddress();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->first, "10.0.0.1");
  ASSERT_TRUE(c.has_next());
  const auto* second = c.NextAddress();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->first, "10.0.0.2");
  EXPECT_FALSE(c.has_next());
  EXPECT_EQ(c.NextAddress(), nullptr);
}

TEST(UpstreamConnectorTest, WithoutTlsTheStartupGoesFirst) {
  const auto up = Upstream("127.0.0.1", config::UpstreamTlsMode::kDisable);
  const UpstreamConnector c = Connector(&up);
  EXPECT_FALSE(c.wants_tls());
  std::string expected;
  pgwire::WriteStartupMessage(&expected, {{"user", "svc_reader"},
                                          {"database", "shop_db"},
                                          {"application_name", "psql"}});
  EXPECT_EQ(c.FirstMessage(), expected);
  EXPECT_EQ(c.StartupMessage(), expected);
}

TEST(UpstreamConnectorTest, WithTlsAnSslRequestGoesFirst) {
  const auto up = Upstream("127.0.0.1", config::UpstreamTlsMode::kRequire);
  const UpstreamConnector c = Connector(&up);
  EXPECT_TRUE(c.wants_tls());
  std::string request;
  pgwire::WriteSslRequest(&request);
  EXPECT_EQ(c.FirstMessage(), request);
}

TEST(UpstreamConnectorTest, OnlyAYesStartsTls) {
  const auto up = Upstream("127.0.0.1", config::UpstreamTlsMode::kRequire);
  const UpstreamConnector c = Connector(&up);
  const auto yes = c.OnSslAnswer("S");
  EXPECT_FALSE(yes.failure.has_value());
  EXPECT_EQ(yes.context, kContext);
  EXPECT_EQ(yes.verify_host, "");  // require: the name is not checked.

  const auto no = c.OnSslAnswer("N");
  ASSERT_TRUE(no.failure.has_value());
  EXPECT_EQ(no.failure->sqlstate, pgwire::kConnectionFailure);
  EXPECT_THAT(no.failure->message, HasSubstr("refused TLS"));
  EXPECT_EQ(no.failure->reason, warden::v1::SESSION_END_REASON_UPSTREAM);
  // An error message instead of the answer is not an answer either.
  EXPECT_TRUE(c.OnSslAnswer("E").failure.has_value());
  // Bytes behind the 'S' would be read as if they came over TLS.
  const auto more = c.OnSslAnswer("SX");
  ASSERT_TRUE(more.failure.has_value());
  EXPECT_THAT(more.failure->message, HasSubstr("unexpected data"));
}

TEST(UpstreamConnectorTest, VerifyFullChecksTheServerName) {
  const auto up = Upstream("127.0.0.1", config::UpstreamTlsMode::kVerifyFull);
  EXPECT_EQ(Connector(&up).OnSslAnswer("S").verify_host, "db.example.com");
  const auto ca = Upstream("127.0.0.1", config::UpstreamTlsMode::kVerifyCa);
  EXPECT_EQ(Connector(&ca).OnSslAnswer("S").verify_host, "");
}

TEST(UpstreamConnectorTest, FailuresNameTheUpstreamAndItsFault) {
  const auto up = Upstream("db.internal", config::UpstreamTlsMode::kDisable);
  const UpstreamConnector c = Connector(&up);
  const auto lookup = c.LookupFailed(absl::NotFoundError("no such host"));
  EXPECT_EQ(lookup.message,
            "cannot resolve upstream host 'db.internal': no such host");
  EXPECT_EQ(lookup.reason, warden::v1::SESSION_END_REASON_UPSTREAM);
  EXPECT_EQ(c.ConnectFailed(0).message,
            "cannot connect to the upstream database at db.internal:6543");
  EXPECT_THAT(c.ConnectFailed(ECONNREFUSED).message,
              HasSubstr("db.internal:6543: "));
  EXPECT_EQ(c.TlsFailed("").message,
            "TLS with the upstream database failed: connection closed");
  EXPECT_EQ(c.TimedOut().message,
            "timed out connecting to the upstream database at "
            "db.internal:6543");
  EXPECT_EQ(c.TimedOut().sqlstate, pgwire::kConnectionFailure);
  const auto internal =
      UpstreamConnector::TlsNotStarted(absl::InternalError("no memory"));
  EXPECT_EQ(internal.sqlstate, pgwire::kInternalError);
  EXPECT_EQ(internal.reason, warden::v1::SESSION_END_REASON_INTERNAL);
}

}  // namespace
}  // namespace warden::dataplane::session
