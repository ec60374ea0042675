// Settings that would make PostgreSQL read statements differently from
// Warden, from every route a client has to them: startup parameters,
// `options`, SET, set_config, ALTER ... SET, and what the server reports.
#include "dataplane/session/startup_params.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/sql/facts.h"
#include "policy/sql/lexing.h"

namespace warden::dataplane::session {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::ElementsAre;

TEST(OptionsTest, ParsesEverySpellingLibpqSends) {
  auto o = ParseOptions("-c search_path=app  --statement-timeout=5s -cwork_mem=4MB");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_THAT(*o, ElementsAre(Pair("search_path", "app"),
                              Pair("statement_timeout", "5s"),
                              Pair("work_mem", "4MB")));
  o = ParseOptions("-c application_name=a\\ b");
  ASSERT_TRUE(o.ok());
  EXPECT_THAT(*o, ElementsAre(Pair("application_name", "a b")));
  EXPECT_FALSE(ParseOptions("-c").ok());
  EXPECT_FALSE(ParseOptions("-c novalue").ok());
  EXPECT_FALSE(ParseOptions("-B 100").ok());  // other postgres switches
}

TEST(StartupParametersTest, WhatDriversSendIsAccepted) {
  for (const auto& [name, value] :
       {std::pair{"application_name", "psql"}, {"client_encoding", "UTF8"},
        {"DateStyle", "ISO"}, {"TimeZone", "UTC"}, {"extra_float_digits", "3"},
        {"standard_conforming_strings", "on"}, {"search_path", "app"},
        {"options", "-c statement_timeout=5s"}}) {
    EXPECT_TRUE(JudgeStartupParameter(name, value).ok()) << name;
  }
}

TEST(StartupParametersTest, LexingChangesAreRefusedOnEveryRoute) {
  const std::pair<const char*, const char*> refused[] = {
      {"standard_conforming_strings", "off"},
      {"standard_conforming_strings", "0"},
      {"client_encoding", "SJIS"},
      {"client_encoding", "shift_jis"},
      {"client_encoding", "Big5"},
      {"client_encoding", "GBK"},
      {"client_encoding", "gb-18030"},
      {"client_encoding", "UHC"},
      {"client_encoding", "win932"},
      {"client_encoding", "JOHAB"},
      {"backslash_quote", "on"},
      {"options", "-c standard_conforming_strings=off"},
      {"options", "--standard-conforming-strings=off"},
      {"options", "-c client_encoding=sjis"},
      {"options", "-c search_path=a -cbackslash_quote=on"},
  };
  for (const auto& [name, value] : refused) {
    const absl::Status s = JudgeStartupParameter(name, value);
    EXPECT_FALSE(s.ok()) << name << "=" << value;
  }
  EXPECT_THAT(
      std::string(JudgeStartupParameter("options",
                                        "-c standard_conforming_strings=off")
                      .message()),
      HasSubstr("standard_conforming_strings"));
}

TEST(StartupParametersTest, AnythingElseIsRefusedAsUnjudged) {
  for (const auto& [name, value] :
       {std::pair{"session_replication_role", "replica"}, {"role", "postgres"},
        {"session_authorization", "postgres"},
        {"default_transaction_read_only", "on"}}) {
    const absl::Status s = JudgeStartupParameter(name, value);
    if (std::string(name) == "default_transaction_read_only") {
      EXPECT_TRUE(s.ok());
      continue;
    }
    EXPECT_FALSE(s.ok()) << name;
    EXPECT_THAT(std::string(s.message()), HasSubstr("not accepted"));
  }
  EXPECT_FALSE(
      JudgeStartupParameter("options", "-c session_replication_role=replica")
          .ok());
  EXPECT_FALSE(JudgeStartupParameter("options", "-c options=x").ok());
}

TEST(ReportedStateTest, OnlyAStateThatReadsDifferentlyIsFlagged) {
  EXPECT_EQ(ReportedLexingState("standard_conforming_strings", "on"), "");
  EXPECT_NE(ReportedLexingState("standard_conforming_strings", "off"), "");
  EXPECT_EQ(ReportedLexingState("client_encoding", "UTF8"), "");
  EXPECT_EQ(ReportedLexingState("client_encoding", "LATIN1"), "");
  EXPECT_NE(ReportedLexingState("client_encoding", "SJIS"), "");
  EXPECT_EQ(ReportedLexingState("TimeZone", "SJIS"), "");
}

std::string Lexing(const char* sql) {
  auto facts = policy::sql::Analyze(sql);
  EXPECT_TRUE(facts.ok()) << sql;
  if (!facts.ok()) return "";
  for (const auto& f : *facts) {
    std::string why = policy::sql::LexingChangeIn(f);
    if (!why.empty()) return why;
  }
  return "";
}

TEST(LexingStatementsTest, EverySpellingOfTheChangeIsFound) {
  for (const char* sql : {
           "SET standard_conforming_strings = off",
           "SET standard_conforming_strings TO 'off'",
           "SET LOCAL standard_conforming_strings = false",
           "SET SESSION standard_conforming_strings = 0",
           "SET client_encoding = 'SJIS'",
           "SET NAMES 'BIG5'",
           "SET client_encoding TO gbk",
           "SELECT set_config('standard_conforming_strings', 'off', false)",
           "SELECT set_config('client_encoding', 'SJIS', true)",
           "SELECT set_config('client_encoding', current_setting('x'), false)",
           "SELECT set_config(lower('CLIENT_ENCODING'), 'sjis', false)",
           "ALTER ROLE alice SET standard_conforming_strings = off",
           "ALTER DATABASE shop SET client_encoding = 'SJIS'",
           "CREATE FUNCTION f() RETURNS int LANGUAGE sql "
           "SET standard_conforming_strings = off AS 'SELECT 1'",
           "UPDATE pg_settings SET setting = 'off' WHERE name = "
           "'standard_conforming_strings'",
           "SET backslash_quote = on",
           "DO $$ BEGIN PERFORM set_config('standard_conforming_strings', "
           "'off', false); END $$",
           "WITH s AS (SELECT set_config('client_encoding', 'UHC', false)) "
           "SELECT * FROM s",
           // SQL given as text to a function that runs it (red team).
           "SELECT query_to_xml($q$select set_config('client_encoding', "
           "'SJIS', false)$q$, true, false, '')",
           "SELECT * FROM ts_stat($q$select set_config('client_encoding', "
           "'SJIS', false)::tsvector$q$)",
       }) {
    EXPECT_NE(Lexing(sql), "") << sql;
  }
}

TEST(LexingStatementsTest, HarmlessSettingsAreLeftToPolicy) {
  for (const char* sql : {
           "SET standard_conforming_strings = on",
           "RESET standard_conforming_strings",
           "SET client_encoding = 'UTF8'",
           "SET client_encoding TO DEFAULT",
           "RESET client_encoding",
           "RESET ALL",
           "DISCARD ALL",
           "SET search_path = app",
           "SELECT set_config('application_name', 'x', false)",
           "SELECT 'standard_conforming_strings = off'",
       }) {
    EXPECT_EQ(Lexing(sql), "") << sql;
  }
}

}  // namespace
}  // namespace warden::dataplane::session
