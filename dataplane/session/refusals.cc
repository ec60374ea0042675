#include "dataplane/session/refusals.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "dataplane/pgwire/encoder.h"

namespace warden::dataplane::session {

namespace {
constexpr absl::string_view kPrefix = "warden_refusal_";

// The poison SQL of a Query or Parse: a syntax error whose message carries
// the name.
std::string PoisonSql(absl::string_view name) {
  return absl::StrCat("/* refused by Warden policy */ ", name);
}

}  // namespace

std::string Refusals::Queue(std::string error, uint64_t batch, bool parse) {
  Refusal r;
  ++seq_;
  r.batch = batch;
  r.error = std::move(error);
  r.parse = parse;
  auto random = crypto::RandomBytes(12);
  r.tag = random.ok() ? crypto::HexEncode(*random)
                      : absl::StrCat(fallback_token_, "_", seq_);
  std::string name = absl::StrCat(kPrefix, r.tag);
  queue_.push_back(std::move(r));
  return name;
}

void Refusals::WriteSubstitute(char type, absl::string_view body,
                               std::string error, uint64_t batch,
                               std::string* out, bool parse) {
  const std::string name = Queue(std::move(error), batch, parse);
  switch (static_cast<pgwire::FrontendType>(type)) {
    case pgwire::FrontendType::kParse: {
      const auto p = pgwire::ParseParse(body);
      pgwire::WriteParse(out, p.ok() ? p->statement : "", PoisonSql(name));
      return;
    }
    case pgwire::FrontendType::kBind:
      pgwire::WriteBind(out, body.substr(0, body.find('\0')), name);
      return;
    case pgwire::FrontendType::kDescribe:
      pgwire::WriteDescribe(out, 'S', name);
      return;
    case pgwire::FrontendType::kExecute:
      pgwire::WriteExecute(out, name);
      return;
    default:  // Query, FunctionCall
      pgwire::WriteQuery(out, PoisonSql(name));
      return;
  }
}

std::optional<Refusals::Taken> Refusals::Take(
    const pgwire::ErrorResponse& error) {
  if (queue_.empty()) return std::nullopt;
  const absl::string_view message = error.Get('M');
  for (size_t at = message.find(kPrefix); at != absl::string_view::npos;
       at = message.find(kPrefix, at + 1)) {
    const absl::string_view rest = message.substr(at + kPrefix.size());
    size_t n = 0;
    while (n < rest.size() &&
           (absl::ascii_isxdigit(rest[n]) || rest[n] == '_')) {
      ++n;
    }
    const absl::string_view tag = rest.substr(0, n);
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (it->tag == tag) {
        Taken taken{std::move(it->error), it->parse};
        queue_.erase(it);
        return taken;
      }
    }
  }
  return std::nullopt;
}

void Refusals::DropDone(uint64_t batches_done) {
  while (!queue_.empty() && queue_.front().batch <= batches_done) {
    queue_.pop_front();
  }
}

}  // namespace warden::dataplane::session
