#include "controlplane/cli/remote_audit.h"

#include <algorithm>
#include <deque>
#include <set>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/crypto.h"
#include "common/files.h"
#include "common/names.h"
#include "common/proto_time.h"
#include "controlplane/audit/checkpoint.h"
#include "controlplane/audit/leaf.h"
#include "controlplane/audit/merkle.h"
#include "controlplane/audit/verify.h"
#include "proto/warden/v1/audit.grpc.pb.h"

namespace warden::controlplane::cli {
namespace {

std::unique_ptr<warden::v1::AuditLog::Stub> AuditStub(const Remote& remote) {
  return warden::v1::AuditLog::NewStub(remote.channel());
}

std::unique_ptr<warden::v1::AuditExport::Stub> ExportStub(
    const Remote& remote) {
  return warden::v1::AuditExport::NewStub(remote.channel());
}

// The audit calls several commands make, with deadline and token.
grpc::Status Checkpoint(const Remote& remote,
                        warden::v1::GetCheckpointResponse* out) {
  grpc::ClientContext context;
  remote.Prepare(&context);
  return AuditStub(remote)->GetCheckpoint(&context, {}, out);
}

grpc::Status Entries(const Remote& remote, uint64_t start, uint64_t end,
                     warden::v1::GetEntriesResponse* out) {
  warden::v1::GetEntriesRequest request;
  request.set_start(start);
  request.set_end(end);
  grpc::ClientContext context;
  remote.Prepare(&context);
  return AuditStub(remote)->GetEntries(&context, request, out);
}

// A verifier key given as text ("name+hash+key") or as a file holding it.
absl::StatusOr<std::string> LoadVerifierKey(const std::string& key) {
  if (key.empty()) {
    return absl::InvalidArgumentError(
        "--key is required: the audit log's verifier key (warden-control's "
        "DATA_DIR/audit.vkey, or its text)");
  }
  auto text = ReadFile(key);
  std::string value = text.ok() ? *text : key;
  return std::string(absl::StripAsciiWhitespace(value));
}

std::string EventSummary(const warden::v1::AuditLeaf& leaf) {
  const warden::v1::AuditEvent& e = leaf.event();
  std::string who = e.identity().user();
  if (who.empty() && e.has_authentication() &&
      !e.authentication().claimed_user().empty()) {
    // Not verified: a failed login names whom it claimed to be, quoted,
    // so that a claimed "x: authentication ok (oidc:corp)" padded with
    // spaces cannot read as a successful login (red team).
    who = absl::StrCat("(claimed) ",
                       QuoteUnverifiedName(e.authentication().claimed_user()));
  }
  if (who.empty()) who = "-";
  // What ingest had to change says so first: a proxy's claim to an
  // administrator's action or to another environment reads as a claim.
  std::string repaired;
  if (e.has_repairs()) {
    const warden::v1::EventRepairs& r = e.repairs();
    std::vector<std::string> notes;
    if (r.unauthorized_kind() != warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED) {
      notes.push_back(absl::StrCat(
          "claimed kind ",
          warden::v1::AuditEventKind_Name(r.unauthorized_kind()).substr(17)));
    }
    if (r.unauthorized_body()) notes.push_back("sent an admin action");
    if (!r.unauthorized_environment().empty()) {
      notes.push_back(
          absl::StrCat("claimed environment ", r.unauthorized_environment()));
    }
    if (!r.invalid_utf8().empty()) {
      notes.push_back(absl::StrCat("invalid UTF-8 in ",
                                   absl::StrJoin(r.invalid_utf8(), ",")));
    }
    if (!r.truncated().empty()) {
      notes.push_back(absl::StrCat("cut: ", absl::StrJoin(r.truncated(), ",")));
    }
    if (r.unknown_field_bytes() > 0) {
      notes.push_back(
          absl::StrCat(r.unknown_field_bytes(), " bytes of unknown fields"));
    }
    if (!r.undecodable().empty() && !r.unauthorized_body()) {
      notes.push_back("undecodable");
    }
    if (!notes.empty()) {
      repaired = absl::StrCat("[REPAIRED: ", absl::StrJoin(notes, "; "), "] ");
    }
  }
  std::string what;
  switch (e.body_case()) {
    case warden::v1::AuditEvent::kSessionStart:
      what = absl::StrCat("session start db=", e.session_start().database(),
                          " from ", e.session_start().client_address());
      break;
    case warden::v1::AuditEvent::kSessionEnd:
      what = absl::StrCat(
          "session end: ",
          warden::v1::SessionEndReason_Name(e.session_end().reason()),
          e.session_end().detail().empty() ? ""
                                           : " " + e.session_end().detail());
      break;
    case warden::v1::AuditEvent::kAuthentication:
      what = absl::StrCat("authentication ",
                          e.authentication().success() ? "ok" : "FAILED", " (",
                          e.authentication().method(), ")",
                          e.authentication().reason().empty()
                              ? ""
                              : ": " + e.authentication().reason());
      break;
    case warden::v1::AuditEvent::kStatement: {
      const auto& st = e.statement();
      if (st.phase() == warden::v1::STATEMENT_PHASE_RESULT) {
        const absl::Duration took = FromDuration(st.duration());
        what = absl::StrCat(
            "result of #", st.intent_sequence(), ": ",
            st.sqlstate().empty() ? "no answer" : st.sqlstate(), ", ",
            st.rows(), st.rows() == 1 ? " row" : " rows", ", ",
            absl::FormatDuration(absl::Trunc(took, absl::Microseconds(1))),
            st.reason().empty() ? "" : " (" + st.reason() + ")");
        break;
      }
      // The exact bytes when the text had to be made valid UTF-8: printed
      // with the invalid ones as \xNN (TerminalSafe), not as U+FFFD.
      std::string text = !st.text_bytes().empty() ? st.text_bytes()
                         : !st.text().empty()     ? st.text()
                         : !st.normalized_text().empty()
                             ? st.normalized_text()
                             : absl::StrJoin(st.command_tags(), ";");
      what = absl::StrCat(
          warden::v1::PolicyAction_Name(st.decision()).substr(14), " ",
          st.rule().empty() ? "" : "[" + st.rule() + "] ", text,
          st.sqlstate().empty() ? "" : " -> " + st.sqlstate());
      break;
    }
    case warden::v1::AuditEvent::kAdmin:
      // A refused action says so first, before any text a caller chose (a
      // claimed name in the target; red team: padded to push FAILED off
      // the screen, it read as "certificate issued").
      what = absl::StrCat(
          e.admin().action(), e.admin().success() ? " " : " FAILED ",
          e.admin().target(),
          e.admin().detail().empty() ? "" : ": " + e.admin().detail());
      break;
    default:
      what = warden::v1::AuditEventKind_Name(e.kind());
  }
  return absl::StrCat(leaf.source(), " #", e.sequence(), " ", who, ": ",
                      repaired, what);
}

std::string TimeOf(const google::protobuf::Timestamp& ts) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", FromTimestamp(ts),
                          absl::UTCTimeZone());
}

// Prints one entry: a text line, or {"index": N, "leaf": AuditLeaf} as
// one JSON line (the leaf in protobuf's JSON mapping, MessageJson).
void PrintEntry(const warden::v1::AuditEntry& entry, Format format,
                std::ostream& out) {
  auto parts = audit::SplitLeaf(entry.leaf());
  warden::v1::AuditLeaf leaf;
  if (!parts.ok() || !audit::ParseAuditLeaf(parts->second, &leaf)) {
    out << "#" << entry.index() << " (not an audit leaf)\n";
    return;
  }
  if (format == Format::kJson) {
    WriteJsonLine({{"index", entry.index()}, {"leaf", MessageJson(leaf)}}, out);
    return;
  }
  // One line per event whatever its fields hold: a newline a client put in
  // a user name or a token's issuer must not print as a second event.
  out << "#" << entry.index() << " " << TimeOf(leaf.received_at()) << " "
      << TerminalSafe(EventSummary(leaf)) << "\n";
}

// The signed note as it is (it ends with its own newline).
void PrintCheckpointText(const Json& checkpoint, std::ostream& out) {
  out << StringAt(checkpoint, "checkpoint");
}

void PrintVerifyText(const Json& verified, std::ostream& out,
                     std::ostream& err) {
  const bool ok = BoolAt(verified, "ok");
  (ok ? out : err) << (ok ? "verified: " : "NOT VERIFIED: ")
                   << TerminalSafe(StringAt(verified, "message")) << "\n";
}

// A verified proof and the entry it proves on `out`; a failed one on `err`.
void PrintProofText(const Json& proved, const warden::v1::AuditEntry& entry,
                    std::ostream& out, std::ostream& err) {
  if (!BoolAt(proved, "verified")) {
    err << "NOT VERIFIED: " << TerminalSafe(StringAt(proved, "error")) << "\n";
    return;
  }
  out << "entry " << UintAt(proved, "index") << " is in the log of size "
      << UintAt(proved, "tree_size") << " (" << proved["proof"].size()
      << " proof hashes)\n";
  PrintEntry(entry, Format::kText, out);
}

}  // namespace

int RunAuditCheckpoint(const AuditCheckpointOptions& options, std::ostream& out,
                       std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::GetCheckpointResponse response;
  const grpc::Status status = Checkpoint(remote, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (!options.out_file.empty()) {
    if (auto s = WriteFileDurably(options.out_file, response.checkpoint());
        !s.ok()) {
      return UsageError(s.message(), err);
    }
  }
  return Report(options.format,
                {{"checkpoint", response.checkpoint()},
                 {"tree_size", response.tree_size()},
                 {"root_hash", crypto::HexEncode(response.root_hash())},
                 {"verifier_key", response.verifier_key()}},
                PrintCheckpointText, out);
}

int RunAuditExport(const AuditExportOptions& options, std::ostream& out,
                   std::ostream& err) {
  if (options.out_file.empty())
    return UsageError("--out FILE is required", err);
  uint64_t to = options.to;
  if (!options.checkpoint_file.empty()) {
    if (options.from != 0 || options.to != 0) {
      return UsageError(
          "--checkpoint exports from 0 to its size: not with "
          "--from or --to",
          err);
    }
    // Only the size is needed here; verify checks the signature.
    auto note = ReadFile(options.checkpoint_file);
    if (!note.ok()) {
      return UsageError(absl::StrCat("--checkpoint: ", note.status().message()),
                        err);
    }
    const size_t body_end = note->find("\n\n");
    auto checkpoint = audit::ParseCheckpointBody(
        body_end == std::string::npos
            ? absl::string_view(*note)
            : absl::string_view(*note).substr(0, body_end + 1));
    if (!checkpoint.ok()) {
      return UsageError(
          absl::StrCat("--checkpoint: ", checkpoint.status().message()), err);
    }
    if (checkpoint->size == 0) {
      return UsageError("--checkpoint signs an empty log: nothing to export",
                        err);
    }
    to = checkpoint->size;
  }
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  std::ostringstream text;
  std::ostringstream decoded;
  uint64_t next = options.from;
  uint64_t count = 0;
  for (;;) {
    if (to != 0 && next >= to) break;
    warden::v1::GetEntriesResponse response;
    const grpc::Status status =
        Entries(remote, next, to == 0 ? UINT64_MAX : to, &response);
    if (!status.ok()) return remote.Failed(status, out, err);
    if (response.entries_size() == 0) break;
    for (const auto& e : response.entries()) {
      WriteJsonLine(
          {{"index", e.index()}, {"leaf", crypto::Base64Encode(e.leaf())}},
          text);
      if (!options.decoded_file.empty()) PrintEntry(e, Format::kJson, decoded);
      next = e.index() + 1;
      ++count;
    }
  }
  if (to != 0 && next < to && !options.checkpoint_file.empty()) {
    err << "error: the log has " << next << " entries but the checkpoint "
        << "signed " << to << ": is it this log's?\n";
    return kExitFailed;
  }
  if (auto s = WriteFileDurably(options.out_file, text.str()); !s.ok()) {
    return UsageError(s.message(), err);
  }
  if (!options.decoded_file.empty()) {
    if (auto s = WriteFileDurably(options.decoded_file, decoded.str());
        !s.ok()) {
      return UsageError(s.message(), err);
    }
    err << "decoded copy in " << options.decoded_file
        << " (for reading; verify reads " << options.out_file << ")\n";
  }
  err << "exported " << count << " entries to " << options.out_file << "\n";
  return kExitOk;
}

int RunAuditVerify(const AuditVerifyOptions& options, std::ostream& out,
                   std::ostream& err) {
  auto key = LoadVerifierKey(options.key);
  if (!key.ok()) return UsageError(key.status().message(), err);
  auto note = ReadFile(options.checkpoint_file);
  if (!note.ok()) {
    return UsageError(absl::StrCat("--checkpoint: ", note.status().message()),
                      err);
  }
  auto log = ReadFile(options.log_file);
  if (!log.ok()) {
    return UsageError(absl::StrCat("--log: ", log.status().message()), err);
  }
  std::vector<audit::ExportedEntry> entries;
  size_t line_no = 0;
  for (absl::string_view line : absl::StrSplit(*log, '\n')) {
    ++line_no;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    // A NUL ends the text for some readers and not for others (the JSON
    // parser stopped there; red team: a second, forged entry after it
    // passed): what some reader sees and verify did not check.
    if (line.find('\0') != absl::string_view::npos) {
      return UsageError(absl::StrCat(options.log_file, ":", line_no,
                                     ": holds a NUL byte; verify refuses "
                                     "content it cannot check"),
                        err);
    }
    // Strict: a line is exactly what `audit export` writes, {"index": N,
    // "leaf": "BASE64"}. Anything else in a verified file (a decoded copy
    // of the event, a second "leaf" that another JSON reader would take)
    // is content verify could not check, so it is refused, not ignored.
    std::string bad_member;
    std::set<std::string> seen;
    auto strict = [&](int depth, Json::parse_event_t event, Json& parsed) {
      if (depth == 1 && event == Json::parse_event_t::key &&
          bad_member.empty()) {
        const std::string name = parsed.get<std::string>();
        if (name != "index" && name != "leaf") {
          bad_member = absl::StrCat("member \"", TerminalSafe(name),
                                    "\" is not part of an exported entry");
        } else if (!seen.insert(name).second) {
          // nlohmann keeps the last value, another reader the first.
          bad_member = absl::StrCat("member \"", name, "\" appears twice");
        }
      }
      return true;
    };
    Json j = Json::parse(line.begin(), line.end(), strict, false);
    if (!bad_member.empty()) {
      return UsageError(
          absl::StrCat(options.log_file, ":", line_no, ": ", bad_member,
                       "; verify refuses content "
                       "it cannot check"),
          err);
    }
    if (j.is_discarded() || !j.is_object() || j.size() != 2 ||
        !j.contains("index") || !j["index"].is_number_unsigned() ||
        !j.contains("leaf") || !j["leaf"].is_string()) {
      return UsageError(absl::StrCat(options.log_file, ":", line_no,
                                     ": not an exported entry"),
                        err);
    }
    auto leaf = crypto::Base64Decode(j["leaf"].get<std::string>());
    if (!leaf.ok()) {
      return UsageError(
          absl::StrCat(options.log_file, ":", line_no, ": leaf is not base64"),
          err);
    }
    entries.push_back({j["index"].get<uint64_t>(), *std::move(leaf)});
  }
  const audit::VerifyReport report =
      audit::VerifyExport(entries, *note, *key, options.allow_uncovered);
  const Json verified = {{"ok", report.ok},
                         {"checkpoint_size", report.checkpoint_size},
                         {"entries", report.entries},
                         {"first_bad_index", report.first_bad_index},
                         {"message", report.message}};
  if (options.format == Format::kJson) {
    WriteJson(verified, out);
  } else {
    PrintVerifyText(verified, out, err);
  }
  return report.ok ? kExitOk : kExitFailed;
}

int RunAuditTail(const AuditTailOptions& options, std::ostream& out,
                 std::ostream& err) {
  warden::v1::AuditFilter filter;
  for (const auto& u : options.users) filter.add_users(u);
  for (const auto& e : options.environments) filter.add_environments(e);
  for (const auto& d : options.decisions) {
    warden::v1::PolicyAction action;
    if (!warden::v1::PolicyAction_Parse(
            "POLICY_ACTION_" + absl::AsciiStrToUpper(d), &action) ||
        action == warden::v1::POLICY_ACTION_UNSPECIFIED) {
      return UsageError(
          absl::StrCat("--decision '", d, "': allow, deny or require_approval"),
          err);
    }
    filter.add_decisions(action);
  }
  for (const auto& k : options.kinds) {
    warden::v1::AuditEventKind kind;
    if (!warden::v1::AuditEventKind_Parse(
            "AUDIT_EVENT_KIND_" + absl::AsciiStrToUpper(k), &kind) ||
        kind == warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED) {
      return UsageError(absl::StrCat("--kind '", k,
                                     "': statement, session_start, "
                                     "session_end, authentication or admin"),
                        err);
    }
    filter.add_kinds(kind);
  }
  const warden::v1::AuditFormat format =
      options.ocsf ? warden::v1::AUDIT_FORMAT_OCSF_JSON
                   : warden::v1::AUDIT_FORMAT_NATIVE;
  const auto print = [&](const warden::v1::ExportedEvent& e) {
    if (options.ocsf) {
      out << e.ocsf_json() << "\n";
      return;
    }
    warden::v1::AuditEntry entry;
    entry.set_index(e.index());
    entry.set_leaf(e.leaf());
    PrintEntry(entry, options.format, out);
  };
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  // One page of matches of `filter` from `cursor` (scan_limit 0: the
  // server's default).
  const auto list_page = [&](uint64_t cursor, uint64_t page_size,
                             uint64_t scan_limit,
                             warden::v1::ListEventsResponse* response) {
    warden::v1::ListEventsRequest request;
    request.set_cursor(cursor);
    *request.mutable_filter() = filter;
    request.set_format(format);
    request.set_page_size(static_cast<int32_t>(page_size));
    request.set_scan_limit(scan_limit);
    grpc::ClientContext context;
    remote.Prepare(&context);
    return ExportStub(remote)->ListEvents(&context, request, response);
  };
  // The matches of `filter` in [from, to), in order, at most `keep` of the
  // last ones, or a failed status.
  const auto matches_between =
      [&](uint64_t from, uint64_t to, uint64_t keep,
          std::deque<warden::v1::ExportedEvent>* got) -> grpc::Status {
    uint64_t cursor = from;
    while (cursor < to) {
      warden::v1::ListEventsResponse response;
      const grpc::Status status =
          list_page(cursor, 1000, to - cursor, &response);
      if (!status.ok()) return status;
      for (const auto& e : response.events()) {
        if (e.index() >= to) break;
        got->push_back(e);
        if (got->size() > keep) got->pop_front();
      }
      if (response.next_cursor() <= cursor) break;
      cursor = response.next_cursor();
    }
    return grpc::Status::OK;
  };
  const bool filtered = filter.users_size() > 0 ||
                        filter.environments_size() > 0 ||
                        filter.decisions_size() > 0 || filter.kinds_size() > 0;
  uint64_t next = 0;
  if (options.from >= 0) {
    next = static_cast<uint64_t>(options.from);
  } else if (!options.search) {
    warden::v1::GetCheckpointResponse cp;
    const grpc::Status status = Checkpoint(remote, &cp);
    if (!status.ok()) return remote.Failed(status, out, err);
    next = cp.tree_size() > options.limit ? cp.tree_size() - options.limit : 0;
    if (filtered) {
      // The last --limit events that match, not the matches among the
      // last --limit events: read back from the end in growing windows
      // until enough are found or the log's start is reached.
      std::deque<warden::v1::ExportedEvent> found;
      uint64_t end = cp.tree_size();
      uint64_t window = std::max<uint64_t>(options.limit, 1000);
      while (found.size() < options.limit && end > 0) {
        const uint64_t start = end > window ? end - window : 0;
        std::deque<warden::v1::ExportedEvent> older;
        const grpc::Status got =
            matches_between(start, end, options.limit - found.size(), &older);
        if (!got.ok()) return remote.Failed(got, out, err);
        found.insert(found.begin(), older.begin(), older.end());
        end = start;
        window = std::min<uint64_t>(window * 2, 1u << 20);
      }
      for (const auto& e : found) print(e);
      out.flush();  // a follower sees the backlog before the first new event
      if (!options.follow) return kExitOk;
      next = cp.tree_size();  // --follow goes on from here
    }
  }
  if (options.follow) {
    warden::v1::SubscribeRequest request;
    request.set_cursor(next);
    *request.mutable_filter() = filter;
    request.set_format(format);
    grpc::ClientContext context;  // no deadline: follows until interrupted
    remote.Authorize(&context);
    auto stub = ExportStub(remote);
    auto reader = stub->Subscribe(&context, request);
    warden::v1::SubscribeResponse got;
    while (reader->Read(&got)) {
      if (got.has_event()) {
        print(got.event());
        out.flush();
      }
    }
    const grpc::Status status = reader->Finish();
    return status.ok() ? kExitOk : remote.Failed(status, out, err);
  }
  // One pass over the log (tail: from the last --limit entries; search: up
  // to --limit matches from --from).
  uint64_t printed = 0;
  for (;;) {
    warden::v1::ListEventsResponse response;
    const grpc::Status status = list_page(
        next, std::min<uint64_t>(1000, options.limit - printed), 0, &response);
    if (!status.ok()) return remote.Failed(status, out, err);
    for (const auto& e : response.events()) print(e);
    printed += response.events_size();
    if (response.next_cursor() == next || printed >= options.limit) break;
    next = response.next_cursor();
  }
  return kExitOk;
}

int RunAuditProof(const AuditProofOptions& options, std::ostream& out,
                  std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  // The checkpoint to prove against: a saved one, or the current one.
  std::string note;
  if (!options.checkpoint_file.empty()) {
    auto saved = ReadFile(options.checkpoint_file);
    if (!saved.ok()) return UsageError(saved.status().message(), err);
    note = *saved;
  } else {
    warden::v1::GetCheckpointResponse cp;
    const grpc::Status status = Checkpoint(remote, &cp);
    if (!status.ok()) return remote.Failed(status, out, err);
    note = cp.checkpoint();
  }
  absl::StatusOr<audit::Checkpoint> checkpoint;
  if (!options.key.empty()) {
    auto key = LoadVerifierKey(options.key);
    if (!key.ok()) return UsageError(key.status().message(), err);
    checkpoint = audit::VerifyCheckpoint(note, *key);
  } else {
    // Unsigned trust: the proof is checked against the root the server
    // sent; say so.
    const size_t blank = note.find("\n\n");
    checkpoint = audit::ParseCheckpointBody(
        note.substr(0, blank == std::string::npos ? note.size() : blank + 1));
    err << "note: no --key given, the checkpoint's signature is not "
           "checked\n";
  }
  if (!checkpoint.ok()) {
    err << "NOT VERIFIED: checkpoint: "
        << TerminalSafe(checkpoint.status().message()) << "\n";
    return kExitFailed;
  }
  warden::v1::GetEntriesResponse entries;
  grpc::Status status =
      Entries(remote, options.index, options.index + 1, &entries);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (entries.entries_size() != 1) {
    err << "no entry " << options.index << "\n";
    return kExitFailed;
  }
  warden::v1::GetInclusionProofRequest request;
  request.set_index(options.index);
  request.set_tree_size(checkpoint->size);
  warden::v1::GetInclusionProofResponse proof;
  grpc::ClientContext c2;
  remote.Prepare(&c2);
  status = AuditStub(remote)->GetInclusionProof(&c2, request, &proof);
  if (!status.ok()) return remote.Failed(status, out, err);
  std::vector<std::string> hashes(proof.hashes().begin(), proof.hashes().end());
  const absl::Status verified = audit::VerifyInclusion(
      audit::LeafHash(entries.entries(0).leaf()), options.index,
      checkpoint->size, hashes, checkpoint->root_hash);
  Json hex = Json::array();
  for (const auto& h : hashes) hex.push_back(crypto::HexEncode(h));
  const Json proved = {{"index", options.index},
                       {"tree_size", checkpoint->size},
                       {"verified", verified.ok()},
                       {"proof", std::move(hex)},
                       {"error", std::string(verified.message())}};
  if (options.format == Format::kJson) {
    WriteJson(proved, out);
  } else {
    PrintProofText(proved, entries.entries(0), out, err);
  }
  return verified.ok() ? kExitOk : kExitFailed;
}

}  // namespace warden::controlplane::cli
