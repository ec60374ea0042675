// UpstreamDial on real loopback sockets: a literal address connects at
// once, a host name asks the session to resolve it, a refused connect and
// a failed lookup end the dial with the client's wording, TLS is asked
// for first and a plaintext answer refused (fail closed), and Warden's
// login ends the dial once the database accepts it.
#include "dataplane/session/upstream_dial.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "dataplane/pgwire/encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/dataplane/net/loopback.h"

namespace warden::dataplane::session {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using State = UpstreamDial::State;

using Listener = net::testing::LoopbackListener;

// A port nobody listens on: bound, then closed.
uint16_t ClosedPort() {
  Listener l;
  return l.port;
}

struct Session : UpstreamDial::Callbacks {
  bool WatchUpstream(const std::string& host, uint16_t port) override {
    watched.push_back(host + ":" + std::to_string(port));
    return true;
  }
  void SendUpstream(absl::string_view bytes) override {
    sent.emplace_back(bytes);
  }
  void ReadUpstream() override { ++reads; }
  void Resolve(const std::string& host, uint16_t) override {
    resolving = host;
  }
  void DialFailed(const UpstreamConnector::Failure& f) override {
    failure = f.sqlstate + " " + f.message;
  }
  std::vector<std::string> watched;
  std::vector<std::string> sent;
  int reads = 0;
  std::string resolving;
  std::string failure;
};

config::Upstream Upstream(std::string host, uint16_t port,
                          config::UpstreamTlsMode tls) {
  config::Upstream up;
  up.host = std::move(host);
  up.port = port;
  up.database = "shop_db";
  up.auth = config::UpstreamAuthMethod::kTrust;
  up.tls_mode = tls;
  return up;
}

UpstreamDial::Login Login() {
  UpstreamDial::Login login;
  login.user = "svc_reader";
  login.database = "shop";
  login.params = {{"application_name", "psql"}};
  return login;
}

// Waits until the connect finished (writable), as the loop would.
void AwaitConnect(const Duplex::Peer& peer) {
  pollfd p{peer.conn->fd(), POLLOUT, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
}

TEST(UpstreamDialTest, ALiteralAddressConnectsThenWardenLogsIn) {
  Listener db;
  const auto up = Upstream("127.0.0.1", db.port, config::UpstreamTlsMode::kDisable);
  Session session;
  Duplex::Peer peer;
  UpstreamDial dial(&session, &peer, &up, nullptr, Login(), "test");
  dial.Start();
  EXPECT_TRUE(session.resolving.empty());
  ASSERT_EQ(session.watched.size(), 1u);
  EXPECT_EQ(session.watched[0], "127.0.0.1:" + std::to_string(db.port));
  EXPECT_EQ(dial.state(), State::kConnect);
  EXPECT_FALSE(dial.reading());
  AwaitConnect(peer);
  EXPECT_TRUE(dial.OnEvents(EPOLLOUT));
  // No TLS: the startup message, naming Warden's role and the database.
  EXPECT_EQ(dial.state(), State::kLogin);
  EXPECT_TRUE(dial.reading());
  ASSERT_EQ(session.sent.size(), 1u);
  EXPECT_THAT(session.sent[0], HasSubstr("svc_reader"));
  EXPECT_THAT(session.sent[0], HasSubstr("shop_db"));
  EXPECT_EQ(session.reads, 1);
  // The database lets Warden in (trust): the dial is done.
  std::string ok;
  pgwire::WriteAuthenticationOk(&ok);
  EXPECT_TRUE(dial.OnLoginMessage('R', absl::string_view(ok).substr(5)));
  EXPECT_EQ(dial.state(), State::kDone);
  EXPECT_TRUE(session.failure.empty());
  // Events are the session's once the socket is connected.
  EXPECT_FALSE(dial.OnEvents(EPOLLIN));
}

TEST(UpstreamDialTest, ARefusedConnectEndsTheDial) {
  const auto up = Upstream("127.0.0.1", ClosedPort(),
                           config::UpstreamTlsMode::kDisable);
  Session session;
  Duplex::Peer peer;
  UpstreamDial dial(&session, &peer, &up, nullptr, Login(), "test");
  dial.Start();
  if (session.failure.empty()) {  // the connect did not fail at once
    AwaitConnect(peer);
    dial.OnEvents(EPOLLOUT | EPOLLERR);
  }
  EXPECT_THAT(session.failure, HasSubstr("cannot connect to the upstream"));
  EXPECT_THAT(session.sent, IsEmpty());
}

TEST(UpstreamDialTest, AHostNameIsResolvedByTheSessionFirst) {
  const auto up = Upstream("db.invalid", 5432, config::UpstreamTlsMode::kDisable);
  Session session;
  Duplex::Peer peer;
  UpstreamDial dial(&session, &peer, &up, nullptr, Login(), "test");
  dial.Start();
  EXPECT_EQ(session.resolving, "db.invalid");
  EXPECT_THAT(session.watched, IsEmpty());
  dial.OnResolved(absl::NotFoundError("no such host"));
  EXPECT_THAT(session.failure, HasSubstr("cannot resolve upstream host"));
  // A late second answer changes nothing.
  session.failure.clear();
  dial.OnResolved(net::Addresses{{"127.0.0.1", 5432}});
  EXPECT_TRUE(session.failure.empty());
  EXPECT_THAT(session.watched, IsEmpty());
}

TEST(UpstreamDialTest, WithTlsConfiguredAPlaintextAnswerIsRefused) {
  Listener db;
  const auto up = Upstream("127.0.0.1", db.port, config::UpstreamTlsMode::kRequire);
  Session session;
  Duplex::Peer peer;
  // Stands for the upstream's TLS context (never used: the answer is 'N').
  SSL_CTX* const context = reinterpret_cast<SSL_CTX*>(0x1);
  UpstreamDial dial(&session, &peer, &up, context, Login(), "test");
  dial.Start();
  AwaitConnect(peer);
  dial.OnEvents(EPOLLOUT);
  EXPECT_EQ(dial.state(), State::kSsl);
  ASSERT_EQ(session.sent.size(), 1u);
  EXPECT_EQ(session.sent[0].size(), 8u);  // SSLRequest, not the startup
  EXPECT_EQ(dial.OnSslAnswer("N"), 0u);
  EXPECT_THAT(session.failure, HasSubstr("refused TLS"));
}

}  // namespace
}  // namespace warden::dataplane::session
