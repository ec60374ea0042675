#include "common/audit_bounds.h"

#include <set>
#include <string>
#include <vector>

#include "common/crypto.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::audit_bounds {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::warden::v1::AuditEvent;

TEST(Utf8Test, AcceptsWhatProtobufAccepts) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
}

TEST(Utf8Test, RefusesEveryInvalidForm) {
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
  EXPECT_FALSE(IsValidUtf8("ab\xe2\x82"));        // cut at the end
}

// The check reads ASCII eight bytes at a time: a bad or a multi-byte
// sequence at any position of a longer string, and a string cut inside a
// character at any length, are judged as byte by byte (MakeValidUtf8,
// which changes exactly the strings that are not valid).
TEST(Utf8Test, EveryPositionInLongerStrings) {
  const std::vector<std::string> inserts = {
      "\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80",
      "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
  for (const std::string& insert : inserts) {
    for (size_t length = 0; length < 40; ++length) {
      for (size_t at = 0; at <= length; ++at) {
        std::string s(length, 'a');
        s.insert(at, insert);
        EXPECT_EQ(IsValidUtf8(s), MakeValidUtf8(s) == s)
            << "insert of " << insert.size() << " bytes at " << at
            << " of " << length;
        const std::string cut = s.substr(0, at + insert.size() - 1);
        EXPECT_EQ(IsValidUtf8(cut), MakeValidUtf8(cut) == cut);
      }
    }
  }
}

TEST(Utf8Test, MakeValidReplacesEachBadByte) {
  EXPECT_EQ(MakeValidUtf8("a\xff" "b"), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(MakeValidUtf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(MakeValidUtf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_TRUE(IsValidUtf8(MakeValidUtf8("\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82")));
}

TEST(Utf8Test, PrefixNeverSplitsACharacter) {
  EXPECT_EQ(Utf8Prefix("ab\xe2\x82\xac", 4), "ab");
  EXPECT_EQ(Utf8Prefix("ab\xe2\x82\xac", 5), "ab\xe2\x82\xac");
  EXPECT_EQ(Utf8Prefix("abcdef", 3), "abc");
}

TEST(BoundTest, LeavesAnOrdinaryEventUntouched) {
  AuditEvent e;
  e.set_proxy_id("p1");
  e.mutable_identity()->set_user("alice");
  e.mutable_statement()->set_text("SELECT 'caf\xc3\xa9'");
  const std::string before = e.SerializeAsString();
  EXPECT_FALSE(Bound(&e));
  EXPECT_FALSE(e.has_repairs());
  EXPECT_EQ(e.SerializeAsString(), before);
}

TEST(BoundTest, InvalidUtf8IsReplacedNamedAndKeptAsBytes) {
  AuditEvent e;
  e.mutable_statement()->set_text("SELECT 1 /* \xff */");
  e.mutable_statement()->add_parameters("ok");
  e.mutable_statement()->add_parameters("\xfe");
  e.mutable_identity()->set_user("mall\xffory");
  ASSERT_TRUE(Bound(&e));
  EXPECT_EQ(e.statement().text(), "SELECT 1 /* \xef\xbf\xbd */");
  EXPECT_EQ(e.statement().text_bytes(), "SELECT 1 /* \xff */");
  EXPECT_EQ(e.statement().parameters(1), "\xef\xbf\xbd");
  EXPECT_EQ(e.identity().user(), "mall\xef\xbf\xbdory");
  EXPECT_EQ(e.repairs().invalid_utf8_size(), 3);
  EXPECT_EQ(e.repairs().truncated_size(), 0);
  // It now encodes and decodes (proto3 refuses invalid UTF-8 on decode).
  AuditEvent back;
  EXPECT_TRUE(back.ParseFromString(e.SerializeAsString()));
}

TEST(BoundTest, OversizedFieldsAreCutWithTheOriginalsDigest) {
  AuditEvent e;
  e.set_kind(warden::v1::AUDIT_EVENT_KIND_AUTHENTICATION);
  e.mutable_authentication()->set_claimed_user(std::string(9900, 'u'));
  e.mutable_authentication()->set_reason(std::string(3 << 20, 'r'));
  for (int i = 0; i < 1000; ++i) e.mutable_identity()->add_groups("g");
  const std::string original = e.SerializeAsString();
  Limits limits;
  ASSERT_TRUE(Bound(&e, limits));
  EXPECT_EQ(e.authentication().claimed_user().size(), limits.max_string);
  EXPECT_EQ(e.authentication().reason().size(), limits.max_string);
  EXPECT_EQ(e.identity().groups_size(), limits.max_repeated);
  EXPECT_EQ(e.repairs().original_size(), original.size());
  EXPECT_EQ(e.repairs().original_sha256(), crypto::Sha256(original));
  EXPECT_LE(e.ByteSizeLong(), limits.max_event);
  const std::set<std::string> cut(e.repairs().truncated().begin(),
                                  e.repairs().truncated().end());
  EXPECT_EQ(cut, (std::set<std::string>{"identity.groups",
                                        "authentication.claimed_user",
                                        "authentication.reason"}));
}

TEST(BoundTest, StatementTextHasItsOwnLargerLimit) {
  AuditEvent e;
  e.mutable_statement()->set_text(std::string(100000, 'x'));
  EXPECT_FALSE(Bound(&e));
  e.mutable_statement()->set_text(std::string(300000, 'x') + "\xc3\xa9");
  ASSERT_TRUE(Bound(&e));
  EXPECT_EQ(e.statement().text().size(), Limits().max_text);
}

TEST(BoundTest, AnEventStillTooLargeIsCutHarder) {
  AuditEvent e;
  Limits limits;
  limits.max_event = 64 * 1024;
  for (int i = 0; i < 200; ++i) {
    e.mutable_statement()->add_parameters(std::string(4000, 'p'));
  }
  e.mutable_statement()->set_text(std::string(200000, 't'));
  ASSERT_TRUE(Bound(&e, limits));
  EXPECT_LE(e.ByteSizeLong(), limits.max_event);
  EXPECT_EQ(e.statement().parameters_size(), 16);
}

TEST(BoundTest, NeverCutsInsideACharacter) {
  AuditEvent e;
  std::string euros;
  for (int i = 0; i < 2000; ++i) euros += "\xe2\x82\xac";
  e.mutable_identity()->set_user(euros);
  Limits limits;
  limits.max_string = 100;
  ASSERT_TRUE(Bound(&e, limits));
  EXPECT_EQ(e.identity().user().size(), 99u);
  EXPECT_TRUE(IsValidUtf8(e.identity().user()));
  EXPECT_EQ(e.repairs().invalid_utf8_size(), 0);
}

}  // namespace
// AppendBounded checks the encoding instead of walking the message; it
// must record exactly what Bound and an encoding record, for ordinary
// events and for every kind of repair.
std::vector<AuditEvent> Corpus() {
  std::vector<AuditEvent> out;
  AuditEvent base;
  base.set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  base.set_environment("prod");
  base.mutable_identity()->set_user("alice@example.com");
  base.mutable_identity()->add_groups("dba");
  (*base.mutable_identity()->mutable_attributes())["dept"] = "eng";
  base.mutable_statement()->set_text("SELECT 1");
  base.mutable_statement()->add_tables("public.t");
  base.mutable_statement()->set_bundle_revision(7);
  out.push_back(base);
  AuditEvent e = base;
  e.mutable_statement()->set_text("SELECT '\xff'");
  out.push_back(e);
  e = base;
  e.mutable_identity()->add_groups("g\xc3");
  out.push_back(e);
  e = base;
  (*e.mutable_identity()->mutable_attributes())["k"] = "v\xed\xa0\x80";
  out.push_back(e);
  e = base;
  (*e.mutable_identity()->mutable_attributes())[std::string(5000, 'k')] = "v";
  out.push_back(e);
  e = base;
  e.mutable_identity()->set_user(std::string(4097, 'u'));
  out.push_back(e);
  e = base;
  e.mutable_identity()->set_user(std::string(4096, 'u'));  // at the limit
  out.push_back(e);
  e = base;
  e.mutable_statement()->set_text(std::string(256 * 1024 + 1, 't'));
  out.push_back(e);
  e = base;
  e.mutable_statement()->set_text(std::string(256 * 1024, 't'));
  out.push_back(e);
  e = base;
  for (int i = 0; i < 257; ++i) e.mutable_statement()->add_parameters("p");
  out.push_back(e);
  e = base;
  for (int i = 0; i < 256; ++i) e.mutable_statement()->add_parameters("p");
  out.push_back(e);
  e = base;
  for (int i = 0; i < 257; ++i) {
    (*e.mutable_identity()->mutable_attributes())[std::to_string(i)] = "v";
  }
  out.push_back(e);
  e = base;
  e.mutable_repairs()->set_undecodable("raw");
  out.push_back(e);
  e = base;
  for (int i = 0; i < 250; ++i) {
    e.mutable_statement()->add_parameters(std::string(4000, 'p'));
  }
  e.mutable_statement()->set_text(std::string(200000, 't'));
  out.push_back(e);  // each field within its limit, the whole over 1 MiB
  return out;
}

TEST(AppendBoundedTest, RecordsWhatBoundAndAnEncodingRecord) {
  int repaired = 0;
  for (const AuditEvent& event : Corpus()) {
    AuditEvent walked = event;
    const bool walked_changed = Bound(&walked);
    AuditEvent checked = event;
    std::string out = "prefix";
    const bool checked_changed = AppendBounded(&checked, &out);
    EXPECT_EQ(checked_changed, walked_changed)
        << event.ShortDebugString().substr(0, 200);
    ASSERT_EQ(out.substr(0, 6), "prefix");
    AuditEvent recorded;
    ASSERT_TRUE(recorded.ParseFromString(out.substr(6)));
    // (A map's encoding order, and so the digest of a cut event's
    // original encoding, differ between two encodings of one event.)
    recorded.mutable_repairs()->clear_original_sha256();
    walked.mutable_repairs()->clear_original_sha256();
    if (recorded.repairs().ByteSizeLong() == 0) recorded.clear_repairs();
    if (walked.repairs().ByteSizeLong() == 0) walked.clear_repairs();
    // (Which entries of a map over the count are dropped is the map's
    // order too: the same number are.)
    EXPECT_EQ(recorded.identity().attributes_size(),
              walked.identity().attributes_size());
    MessageDifferencer differ;
    if (event.identity().attributes_size() > Limits().max_repeated) {
      differ.IgnoreField(
          warden::v1::Identity::descriptor()->FindFieldByName("attributes"));
    }
    EXPECT_TRUE(differ.Compare(recorded, walked))
        << event.ShortDebugString().substr(0, 200);
    EXPECT_EQ(EncodingWithinBounds(event.SerializeAsString()),
              !walked_changed && !event.has_repairs());
    if (walked_changed) ++repaired;
  }
  EXPECT_GE(repaired, 8);  // the corpus does exercise the repairs
}

// What the check cannot vouch for goes to the walk: unknown fields, a
// message field that appears twice (its lists would be merged), bytes
// that are not an encoding.
TEST(AppendBoundedTest, WhatTheCheckCannotVouchForIsWalked) {
  AuditEvent e;
  e.mutable_identity()->set_user("alice");
  std::string twice = e.SerializeAsString() + e.SerializeAsString();
  EXPECT_TRUE(EncodingWithinBounds(e.SerializeAsString()));
  EXPECT_FALSE(EncodingWithinBounds(twice));
  EXPECT_FALSE(EncodingWithinBounds(std::string("\xf8\xff\xff\x7f\x01", 5)));
  EXPECT_FALSE(EncodingWithinBounds(std::string("\x0a\x10ab", 4)));  // short
}

// The check looks fields up in a table per message type, built once:
// a field number the event does not have (within the table, past it, or
// past what protobuf allows though it truncates to a field's) goes to the
// walk, as a descriptor lookup sent it.
TEST(AppendBoundedTest, FieldNumbersTheEventDoesNotHaveAreWalked) {
  auto field = [](uint64_t number) {
    std::string s;
    uint64_t v = (number << 3) | 2;  // length-delimited
    while (v >= 0x80) {
      s.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    s.push_back(static_cast<char>(v));
    return s + std::string("\x01" "a", 2);
  };
  EXPECT_TRUE(EncodingWithinBounds(field(2)));  // proxy_id
  EXPECT_FALSE(EncodingWithinBounds(field(1000)));
  EXPECT_FALSE(EncodingWithinBounds(field(100000)));
  EXPECT_FALSE(EncodingWithinBounds(field((1ull << 32) + 2)));
}

TEST(IsEventFieldPathTest, NamesOfTheEventsFieldsOnly) {
  for (const char* ok : {"statement.text", "identity.user", "identity.groups",
                         "statement", "admin.detail", "repairs.undecodable"}) {
    EXPECT_TRUE(IsEventFieldPath(ok)) << ok;
  }
  for (const char* bad : {"", "nosuch", "statement.text.x", "statement.",
                          ".statement", "statement..text", "statement text",
                          "identity.user; cut: x", "sequence"}) {
    EXPECT_FALSE(IsEventFieldPath(bad)) << bad;
  }
}

}  // namespace warden::audit_bounds
