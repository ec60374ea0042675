#include "controlplane/audit/checkpoint.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/crypto.h"
#include "controlplane/audit/merkle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::controlplane::audit {
namespace {

using ::testing::HasSubstr;

constexpr absl::string_view kDash = "\xe2\x80\x94 ";  // "— "

// The example of golang.org/x/mod/sumdb/note (note.go, note_test.go): a
// second implementation to agree with byte for byte.
constexpr absl::string_view kPeterSeedBase64 =
    "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";  // 0x01 || seed.
constexpr absl::string_view kPeterKey =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr absl::string_view kPeterText =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
constexpr absl::string_view kPeterSig =
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngot"
    "pRZb6KE6RyyBwJnAM=";

struct Key {
  crypto::Ed25519KeyPair pair;
  std::string name;
  std::string verifier;
};

Key MakeKey(const std::string& name) {
  Key key;
  absl::StatusOr<crypto::Ed25519KeyPair> pair = crypto::GenerateEd25519Key();
  EXPECT_TRUE(pair.ok());
  key.pair = *pair;
  key.name = name;
  absl::StatusOr<std::string> vkey = VerifierKey(name, key.pair.public_pem);
  EXPECT_TRUE(vkey.ok()) << vkey.status();
  key.verifier = *vkey;
  return key;
}

Checkpoint TestCheckpoint() {
  Checkpoint c;
  c.origin = "warden.example.com/audit/prod";
  c.size = 8;
  c.root_hash = RootFromLeafHashes({LeafHash("a"), LeafHash("b")}).value();
  return c;
}

// The base64 part of the first signature line of `note`.
std::string FirstSignature(absl::string_view note) {
  const size_t line = note.find(kDash);
  const size_t start = note.find(' ', line + kDash.size()) + 1;
  return std::string(note.substr(start, note.find('\n', start) - start));
}

TEST(SignedNoteTest, AgreesWithGoSumdbNote) {
  const std::string seed =
      crypto::Base64Decode(kPeterSeedBase64).value().substr(1);
  absl::StatusOr<std::string> private_pem =
      crypto::Ed25519PrivateKeyFromRaw(seed);
  ASSERT_TRUE(private_pem.ok());
  const std::string public_pem =
      crypto::Ed25519PublicKeyFromPrivate(*private_pem).value();
  EXPECT_EQ(VerifierKey("PeterNeumann", public_pem).value(), kPeterKey);

  const std::string want =
      absl::StrCat(kPeterText, "\n", kDash, "PeterNeumann ", kPeterSig, "\n");
  absl::StatusOr<std::string> note =
      SignNote(kPeterText, "PeterNeumann", *private_pem);
  ASSERT_TRUE(note.ok()) << note.status();
  EXPECT_EQ(*note, want);
  // The same with the key decoded once (what the checkpointer signs with).
  auto signer = crypto::Ed25519Signer::FromPem(*private_pem);
  ASSERT_TRUE(signer.ok());
  EXPECT_EQ(SignNote(kPeterText, "PeterNeumann", *signer).value(), want);
  EXPECT_EQ(SignNote("", "PeterNeumann", *signer).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::string> text = VerifyNote(want, kPeterKey);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, kPeterText);
  // Not a checkpoint, though.
  EXPECT_EQ(VerifyCheckpoint(want, kPeterKey).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(VerifierKeyTest, ParsesOtherImplementationsKeys) {
  for (absl::string_view vkey :
       {kPeterKey,
        absl::string_view(
            "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"),
        // Its base64 contains a '+' (transparency-dev/formats tests).
        absl::string_view(
            "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")}) {
    absl::StatusOr<ParsedVerifierKey> parsed = ParseVerifierKey(vkey);
    ASSERT_TRUE(parsed.ok()) << vkey << ": " << parsed.status();
    EXPECT_EQ(parsed->key_hash.size(), 4u);
    EXPECT_EQ(parsed->raw_public_key.size(), 32u);
    EXPECT_EQ(VerifierKey(parsed->name, parsed->public_pem).value(), vkey);
  }
}

TEST(VerifierKeyTest, RejectsManglings) {
  const std::string vkey(kPeterKey);
  for (size_t i = 0; i <= vkey.size(); ++i) {
    for (size_t j = i + 1; j <= vkey.size(); ++j) {
      if (i == 0 && j == vkey.size()) continue;
      EXPECT_FALSE(ParseVerifierKey(vkey.substr(i, j - i)).ok())
          << vkey.substr(i, j - i);
    }
  }
  for (size_t i = 0; i < vkey.size(); ++i) {
    std::string bad = vkey;
    ++bad[i];
    EXPECT_FALSE(ParseVerifierKey(bad).ok()) << bad;
  }
  absl::Status s = ParseVerifierKey(
                       "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/"
                       "LDE4izWy10TW")
                       .status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("hash does not match"));
  EXPECT_THAT(ParseVerifierKey("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiB"
                               "fsVkmqq/LDE4izWy10TW")
                  .status()
                  .message(),
              HasSubstr("8 lower-case hex digits"));
  EXPECT_EQ(
      VerifierKey("bad name", MakeKey("x").pair.public_pem).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifierKey("a+b", MakeKey("x").pair.public_pem).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifierKey("name", "not pem").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CheckpointTest, RoundTrip) {
  const Key key = MakeKey("warden.example.com/audit");
  const Checkpoint c = TestCheckpoint();
  absl::StatusOr<std::string> note =
      SignCheckpoint(c, key.name, key.pair.private_pem);
  ASSERT_TRUE(note.ok()) << note.status();
  const std::string body = CheckpointBody(c).value();
  EXPECT_EQ(body, absl::StrCat("warden.example.com/audit/prod\n8\n",
                               crypto::Base64Encode(c.root_hash), "\n"));
  EXPECT_EQ(note->substr(0, body.size() + 1 + kDash.size()),
            absl::StrCat(body, "\n", kDash));
  EXPECT_EQ(crypto::Base64Decode(FirstSignature(*note)).value().size(), 68u);

  absl::StatusOr<Checkpoint> got = VerifyCheckpoint(*note, key.verifier);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, c);

  // Size 0 and the largest size survive too.
  for (uint64_t size : {uint64_t{0}, UINT64_MAX}) {
    Checkpoint other = c;
    other.size = size;
    got = VerifyCheckpoint(
        SignCheckpoint(other, key.name, key.pair.private_pem).value(),
        key.verifier);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, other);
  }
}

TEST(CheckpointTest, TamperedFieldsAreRejected) {
  const Key key = MakeKey("warden.example.com/audit");
  const Checkpoint c = TestCheckpoint();
  const std::string note =
      SignCheckpoint(c, key.name, key.pair.private_pem).value();
  const std::string root_b64 = crypto::Base64Encode(c.root_hash);

  struct Case {
    const char* what;
    std::string note;
    const char* message;
  };
  std::string other_root = root_b64;
  other_root[0] = other_root[0] == 'A' ? 'B' : 'A';
  const std::string sig = FirstSignature(note);
  std::string raw_sig = crypto::Base64Decode(sig).value();
  std::string flipped_sig = raw_sig;
  flipped_sig[10] ^= 0x01;  // inside the Ed25519 signature.
  std::string flipped_hash = raw_sig;
  flipped_hash[0] ^= 0x01;  // inside the key hash.

  const std::vector<Case> cases = {
      {"origin", absl::StrReplaceAll(note, {{"audit/prod\n", "audit/test\n"}}),
       "does not verify"},
      {"size", absl::StrReplaceAll(note, {{"\n8\n", "\n9\n"}}),
       "does not verify"},
      {"root", absl::StrReplaceAll(note, {{root_b64, other_root}}),
       "does not verify"},
      {"signature byte",
       absl::StrReplaceAll(note, {{sig, crypto::Base64Encode(flipped_sig)}}),
       "does not verify"},
      {"key hash",
       absl::StrReplaceAll(note, {{sig, crypto::Base64Encode(flipped_hash)}}),
       "note has no signature by key warden.example.com/audit+"},
      {"key name",
       absl::StrReplaceAll(note, {{absl::StrCat(kDash, key.name, " "),
                                   absl::StrCat(kDash, key.name, "x ")}}),
       "note has no signature by key warden.example.com/audit+"},
  };
  for (const Case& t : cases) {
    ASSERT_NE(t.note, note) << t.what;
    absl::StatusOr<Checkpoint> got = VerifyCheckpoint(t.note, key.verifier);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kPermissionDenied)
        << t.what << ": " << got.status();
    EXPECT_THAT(got.status().message(), HasSubstr(t.message)) << t.what;
  }
}

TEST(CheckpointTest, OtherKeys) {
  const Key log_key = MakeKey("warden.example.com/audit");
  const Key witness = MakeKey("witness.example.org");
  const Key same_name = MakeKey("warden.example.com/audit");
  const Checkpoint c = TestCheckpoint();
  const std::string body = CheckpointBody(c).value();
  const std::string note =
      SignCheckpoint(c, log_key.name, log_key.pair.private_pem).value();
  const std::string by_witness =
      SignCheckpoint(c, witness.name, witness.pair.private_pem).value();
  const std::string witness_line = by_witness.substr(body.size() + 1);

  // Signed by another key only.
  absl::Status s = VerifyCheckpoint(by_witness, log_key.verifier).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("no signature by key"));

  // By another key with the log's name: not accepted, and said so.
  const std::string by_impostor =
      SignCheckpoint(c, same_name.name, same_name.pair.private_pem).value();
  s = VerifyCheckpoint(by_impostor, log_key.verifier).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("a different key of the same name"));

  // An extra signature by a key the verifier does not know, before or after.
  absl::StatusOr<Checkpoint> got =
      VerifyCheckpoint(note + witness_line, log_key.verifier);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, c);
  got = VerifyCheckpoint(
      absl::StrCat(body, "\n", witness_line, note.substr(body.size() + 1)),
      log_key.verifier);
  ASSERT_TRUE(got.ok()) << got.status();
  // ... and the witness's key verifies the same note.
  EXPECT_TRUE(VerifyCheckpoint(note + witness_line, witness.verifier).ok());
  // Unknown signers may use UTF-8 names.
  got = VerifyCheckpoint(absl::StrCat(note, kDash, "t\xc3\xa9moin AAAAAAAA\n"),
                         log_key.verifier);
  EXPECT_TRUE(got.ok()) << got.status();

  // A second, bad signature by the trusted key spoils the note.
  const std::string log_line = note.substr(body.size() + 1);
  std::string raw = crypto::Base64Decode(FirstSignature(note)).value();
  raw[20] ^= 0x40;
  const std::string bad_line =
      absl::StrCat(kDash, log_key.name, " ", crypto::Base64Encode(raw), "\n");
  s = VerifyCheckpoint(note + bad_line, log_key.verifier).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("signature line 2 by key"));
}

TEST(CheckpointTest, MalformedNotesAreRejected) {
  const Key key = MakeKey("log");
  const Checkpoint c = TestCheckpoint();
  const std::string body = CheckpointBody(c).value();
  const std::string note =
      SignCheckpoint(c, key.name, key.pair.private_pem).value();
  const std::string line = note.substr(body.size() + 1);
  const std::string sig = FirstSignature(note);

  struct Case {
    const char* what;
    std::string note;
    const char* message;
  };
  std::string many = note;
  for (int i = 0; i < 100; ++i) absl::StrAppend(&many, kDash, "w AAAAAAAA\n");
  const std::vector<Case> cases = {
      {"no blank line", body + line, "no blank line"},
      {"no signatures", body + "\n", "no signature lines"},
      {"no final newline", note.substr(0, note.size() - 1),
       "does not end with a newline"},
      {"ascii dash", absl::StrReplaceAll(note, {{kDash, "-- "}}), "em dash"},
      {"bad base64", absl::StrReplaceAll(note, {{sig, sig.substr(1)}}),
       "canonical padded base64"},
      {"unpadded base64",
       absl::StrReplaceAll(note, {{sig, sig.substr(0, sig.size() - 1)}}),
       "canonical padded base64"},
      {"short signature", absl::StrCat(note, kDash, "w AAAA\n"), "too short"},
      {"no space", absl::StrCat(note, kDash, "wAAAAAAAA\n"), "no space"},
      {"plus in name", absl::StrCat(note, kDash, "w+x AAAAAAAA\n"), "'+'"},
      {"carriage return", absl::StrReplaceAll(note, {{"\n8\n", "\n8\r\n"}}),
       "control characters"},
      {"bad utf-8", absl::StrReplaceAll(note, {{"prod", "pr\xff"}}), "UTF-8"},
      {"blank line in text", absl::StrCat("x\n\n", note),
       "must not contain a blank line"},
      {"too many signatures", many, "101 signatures"},
  };
  for (const Case& t : cases) {
    absl::StatusOr<Checkpoint> got = VerifyCheckpoint(t.note, key.verifier);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument)
        << t.what << ": " << got.status();
    EXPECT_THAT(got.status().message(), HasSubstr(t.message)) << t.what;
  }
  EXPECT_EQ(VerifyCheckpoint(note, "not a key").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CheckpointBodyTest, StrictParsing) {
  const std::string root = crypto::Base64Encode(std::string(32, '\x07'));
  auto body = [&](absl::string_view size) {
    return absl::StrCat("origin\n", size, "\n", root, "\n");
  };
  absl::StatusOr<Checkpoint> got = ParseCheckpointBody(body("0"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size, 0u);
  got = ParseCheckpointBody(body("18446744073709551615"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size, UINT64_MAX);
  EXPECT_EQ(got->origin, "origin");
  EXPECT_EQ(got->root_hash, std::string(32, '\x07'));

  for (absl::string_view size :
       {"08", "+8", "-1", " 8", "8 ", "", "0x8", "1e3", "18446744073709551616",
        "000000000000000000001"}) {
    absl::Status s = ParseCheckpointBody(body(size)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << size;
    EXPECT_THAT(s.message(), HasSubstr("checkpoint size line")) << size;
  }
  struct Case {
    const char* what;
    std::string body;
    const char* message;
  };
  const std::string root31 = crypto::Base64Encode(std::string(31, '\x07'));
  std::string noncanonical = root;  // "Bw...c=": last char carries spare bits.
  noncanonical[noncanonical.size() - 2] = 'd';
  const std::vector<Case> cases = {
      {"root 31 bytes", absl::StrCat("o\n1\n", root31, "\n"), "31 bytes"},
      {"root not canonical", absl::StrCat("o\n1\n", noncanonical, "\n"),
       "canonical padded base64"},
      {"root unpadded",
       absl::StrCat("o\n1\n", root.substr(0, root.size() - 1), "\n"),
       "canonical padded base64"},
      {"extension line", absl::StrCat("o\n1\n", root, "\next\n"),
       "1 extension lines; extensions are not supported"},
      {"two lines", "o\n1\n", "has 2 lines"},
      {"no final newline", absl::StrCat("o\n1\n", root), "end with a newline"},
      {"empty origin", absl::StrCat("\n1\n", root, "\n"),
       "origin line is empty"},
      {"tab in origin", absl::StrCat("o\tp\n1\n", root, "\n"), "printable"},
  };
  for (const Case& t : cases) {
    absl::Status s = ParseCheckpointBody(t.body).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << t.what;
    EXPECT_THAT(s.message(), HasSubstr(t.message)) << t.what;
  }

  // A correctly signed note whose body is malformed is still refused.
  const Key key = MakeKey("log");
  for (absl::string_view size : {"08", "+8"}) {
    const std::string note =
        SignNote(body(size), key.name, key.pair.private_pem).value();
    absl::Status s = VerifyCheckpoint(note, key.verifier).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << size;
    EXPECT_THAT(s.message(), HasSubstr("checkpoint size line")) << size;
  }
}

TEST(CheckpointBodyTest, RefusesToWriteBadCheckpoints) {
  const Key key = MakeKey("log");
  Checkpoint c = TestCheckpoint();
  c.origin = "";
  EXPECT_EQ(CheckpointBody(c).status().code(),
            absl::StatusCode::kInvalidArgument);
  c.origin = "a\nb";
  EXPECT_EQ(SignCheckpoint(c, key.name, key.pair.private_pem).status().code(),
            absl::StatusCode::kInvalidArgument);
  c = TestCheckpoint();
  c.root_hash.pop_back();
  EXPECT_THAT(CheckpointBody(c).status().message(),
              HasSubstr("root hash is 31 bytes"));
  c = TestCheckpoint();
  EXPECT_EQ(
      SignCheckpoint(c, "two words", key.pair.private_pem).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignCheckpoint(c, "log", "not a key").status().code(),
            absl::StatusCode::kInvalidArgument);
  for (absl::string_view text : {"", "no newline", "a\n\nb\n", "\n", "tab\t\n",
                                 "bad \xc0\xaf utf-8\n"}) {
    EXPECT_EQ(SignNote(text, key.name, key.pair.private_pem).status().code(),
              absl::StatusCode::kInvalidArgument)
        << text;
  }
}

}  // namespace
}  // namespace warden::controlplane::audit
