// wardenctl's one JSON path (controlplane/cli/remote_common): audit entries
// as JSON lines must stay the bytes they were when protobuf's JSON printer
// made them (scripts diff them, readers split them on Unicode line
// breaks), so MessageJson + WriteJsonLine are checked against that printer
// here, on leaves holding every kind of field and awkward text.
#include <sstream>
#include <string>

#include "controlplane/cli/remote_common.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::controlplane::cli {
namespace {

// The line audit tail --format json printed before: protobuf's compact
// JSON of the leaf inside a hand-written {"index": N, "leaf": ...}.
std::string ProtobufLine(uint64_t index, const warden::v1::AuditLeaf& leaf) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  EXPECT_TRUE(
      google::protobuf::util::MessageToJsonString(leaf, &text, options).ok());
  return "{\"index\": " + std::to_string(index) + ", \"leaf\": " + text + "}\n";
}

std::string OurLine(uint64_t index, const warden::v1::AuditLeaf& leaf) {
  std::ostringstream out;
  WriteJsonLine({{"index", index}, {"leaf", MessageJson(leaf)}}, out);
  return out.str();
}

// Text with everything either printer might escape: quotes, backslash, C0
// controls, DEL, '<' '>', C1 (NEL), U+2028/U+2029, bidi and zero-width
// controls, BOM, soft hyphen, a tag character, non-BMP letters and emoji.
const std::string kAwkward =
    "a\"b\\c\n\r\t\b\f\x01\x1b[2J\x7f <x> & '\xC2\x85\xC2\x9b\xC2\xAD"
    "\xE2\x80\xA8\xE2\x80\xA9\xE2\x80\xAE\xE2\x81\xA6\xE2\x80\x8B\xEF\xBB\xBF"
    "\xD8\x80\xF3\xA0\x80\x81\xF0\x9D\x85\xB3 caf\xC3\xA9 \xE6\x97\xA5 "
    "\xF0\x9F\x98\x80 /end";

TEST(WardenctlJsonTest, StatementLeafMatchesProtobufPrinter) {
  warden::v1::AuditLeaf leaf;
  leaf.set_source("prod/p1" + kAwkward);
  leaf.mutable_received_at()->set_seconds(1714564800);
  leaf.mutable_received_at()->set_nanos(123000000);
  auto* e = leaf.mutable_event();
  e->set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  e->set_proxy_id("p1");
  e->set_environment("prod");
  e->set_session_id("s-1");
  e->set_sequence(18446744073709551615u);
  e->mutable_time()->set_seconds(1714564799);
  e->mutable_time()->set_nanos(1000);
  auto* id = e->mutable_identity();
  id->set_user(kAwkward);
  id->add_groups("dba");
  id->add_groups("<admins>");
  id->set_kind(warden::v1::IDENTITY_KIND_AGENT);
  (*id->mutable_attributes())["department"] = kAwkward;
  (*id->mutable_attributes())["team"] = "payments";
  (*id->mutable_attributes())["cost_center"] = "42";
  auto* st = e->mutable_statement();
  st->set_phase(warden::v1::STATEMENT_PHASE_RESULT);
  st->add_command_tags("SELECT");
  st->add_tables("public.orders");
  st->set_text("SELECT * FROM t WHERE a > 1 AND b < 2 -- " + kAwkward);
  st->set_decision(warden::v1::POLICY_ACTION_DENY);
  st->set_rule("no-drop");
  st->set_bundle_revision(42);
  st->set_rows(-3);
  st->mutable_duration()->set_seconds(1);
  st->mutable_duration()->set_nanos(500);
  st->set_intent_sequence(17);
  st->set_text_bytes(std::string("\xff\x00\xfe<", 4));
  auto* repairs = e->mutable_repairs();
  repairs->add_invalid_utf8("statement.text");
  repairs->set_original_size(9000);
  repairs->set_original_sha256(std::string(32, '\x07'));
  repairs->set_unauthorized_kind(static_cast<warden::v1::AuditEventKind>(99));
  repairs->set_unauthorized_body(true);
  EXPECT_EQ(OurLine(12, leaf), ProtobufLine(12, leaf));
}

TEST(WardenctlJsonTest, EveryBodyAndTimeFormMatchesProtobufPrinter) {
  for (int nanos : {0, 5000000, 123456000, 123456789}) {
    warden::v1::AuditLeaf leaf;
    leaf.mutable_received_at()->set_seconds(0);
    leaf.mutable_received_at()->set_nanos(nanos);
    auto* e = leaf.mutable_event();
    e->mutable_session_start()->set_client_address("[::1]:5432");
    e->mutable_session_start()->set_client_tls(true);
    EXPECT_EQ(OurLine(0, leaf), ProtobufLine(0, leaf)) << nanos;
    e->mutable_session_end()->set_reason(
        warden::v1::SESSION_END_REASON_UPSTREAM);
    e->mutable_session_end()->mutable_duration()->set_seconds(-2);
    e->mutable_session_end()->mutable_duration()->set_nanos(-nanos);
    EXPECT_EQ(OurLine(1, leaf), ProtobufLine(1, leaf)) << nanos;
    e->mutable_authentication()->set_claimed_user(kAwkward);
    e->mutable_authentication()->set_count(3);
    EXPECT_EQ(OurLine(2, leaf), ProtobufLine(2, leaf)) << nanos;
    e->mutable_admin()->set_action("token.create");
    e->mutable_admin()->set_target(kAwkward);
    e->mutable_admin()->set_success(true);
    EXPECT_EQ(OurLine(3, leaf), ProtobufLine(3, leaf)) << nanos;
  }
  // A body set but empty, an empty event, an empty leaf.
  warden::v1::AuditLeaf leaf;
  EXPECT_EQ(OurLine(4, leaf), ProtobufLine(4, leaf));
  leaf.mutable_event();
  EXPECT_EQ(OurLine(5, leaf), ProtobufLine(5, leaf));
  leaf.mutable_event()->mutable_statement();
  EXPECT_EQ(OurLine(6, leaf), ProtobufLine(6, leaf));
}

TEST(WardenctlJsonTest, ExportLineKeepsItsFormat) {
  std::ostringstream out;
  WriteJsonLine({{"index", uint64_t{3}}, {"leaf", "AAE+/w=="}}, out);
  EXPECT_EQ(out.str(), "{\"index\": 3, \"leaf\": \"AAE+/w==\"}\n");
}

TEST(WardenctlJsonTest, DocumentsAreIndentedWithSortedKeys) {
  std::ostringstream out;
  WriteJson({{"b", 1}, {"a", {{"code", "NOT_FOUND"}}}}, out);
  EXPECT_EQ(
      out.str(),
      "{\n  \"a\": {\n    \"code\": \"NOT_FOUND\"\n  },\n  \"b\": 1\n}\n");
}

}  // namespace
}  // namespace warden::controlplane::cli
