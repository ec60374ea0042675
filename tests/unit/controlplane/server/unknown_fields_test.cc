#include "controlplane/server/unknown_fields.h"

#include <functional>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/unknown_field_set.h"
#include "gtest/gtest.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::controlplane::server {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

warden::v1::AuditEvent Statement() {
  warden::v1::AuditEvent e;
  e.set_proxy_id("p1");
  e.set_sequence(7);
  e.mutable_identity()->set_user("alice");
  e.mutable_statement()->set_text("SELECT 1");
  e.mutable_statement()->mutable_duration()->set_nanos(5);
  return e;
}

// Field 99 (varint 1) appended to a message's encoding.
std::string WithUnknown(const std::string& bytes) {
  return bytes + std::string("\x98\x06\x01", 3);
}

TEST(UnknownFieldsTest, NoneInAnEventOfKnownFields) {
  EXPECT_FALSE(HasUnknownFields(Statement()));
  EXPECT_FALSE(HasUnknownFields(warden::v1::AuditEvent()));
}

TEST(UnknownFieldsTest, FoundAtTheTopAndInNestedMessagesAsDecoded) {
  const warden::v1::AuditEvent base = Statement();
  warden::v1::AuditEvent top;
  ASSERT_TRUE(top.ParseFromString(WithUnknown(base.SerializeAsString())));
  EXPECT_TRUE(HasUnknownFields(top));

  // Two levels down: statement.duration, re-encoded with field 99.
  warden::v1::AuditEvent deep = base;
  deep.mutable_statement()->clear_duration();
  std::string duration =
      WithUnknown(base.statement().duration().SerializeAsString());
  std::string statement = deep.statement().SerializeAsString();
  statement += '\x92';  // field 18, length-delimited
  statement += '\x01';
  statement += static_cast<char>(duration.size());
  statement += duration;
  deep.clear_statement();
  std::string bytes = deep.SerializeAsString();
  bytes += '\x6a';  // field 13, length-delimited
  bytes += static_cast<char>(statement.size());
  bytes += statement;
  warden::v1::AuditEvent parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.statement().duration().nanos(), 5);
  EXPECT_TRUE(HasUnknownFields(parsed));
  parsed.DiscardUnknownFields();
  EXPECT_FALSE(HasUnknownFields(parsed));
  EXPECT_EQ(parsed.SerializeAsString(), base.SerializeAsString());
}

// Every message field of AuditEvent, at any depth (to 4), singular or
// repeated: one unknown field there is found. The check is generic, so a
// message field added to the schema later is covered as well.
void ForEachPath(const Descriptor* d, std::vector<const FieldDescriptor*>* path,
                 const std::function<void()>& visit) {
  if (path->size() >= 4) return;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    path->push_back(f);
    visit();
    ForEachPath(f->message_type(), path, visit);
    path->pop_back();
  }
}

TEST(UnknownFieldsTest, FoundInEveryMessageFieldOfAnEvent) {
  std::vector<const FieldDescriptor*> path;
  int paths = 0;
  ForEachPath(warden::v1::AuditEvent::descriptor(), &path, [&] {
    warden::v1::AuditEvent event = Statement();
    Message* m = &event;
    for (const FieldDescriptor* f : path) {
      m = f->is_repeated() ? m->GetReflection()->AddMessage(m, f)
                           : m->GetReflection()->MutableMessage(m, f);
    }
    std::string where;
    for (const FieldDescriptor* f : path) where += "." + f->name();
    m->GetReflection()->MutableUnknownFields(m)->AddVarint(999, 1);
    EXPECT_TRUE(HasUnknownFields(event)) << where;
    event.DiscardUnknownFields();
    EXPECT_FALSE(HasUnknownFields(event)) << where;
    ++paths;
  });
  // statement, identity, repairs, the other bodies, durations, ...
  EXPECT_GT(paths, 8);
}

}  // namespace
}  // namespace warden::controlplane::server
