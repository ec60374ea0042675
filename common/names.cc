#include "common/names.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/uscript.h>
#include <unicode/uniset.h>
#include <unicode/uspoof.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace warden {
namespace {

bool IsAscii(absl::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

bool IsValidUtf8(absl::string_view s) {
  int32_t i = 0;
  const int32_t n = static_cast<int32_t>(s.size());
  while (i < n) {
    UChar32 c;
    U8_NEXT(reinterpret_cast<const uint8_t*>(s.data()), i, n, c);
    if (c < 0) return false;
  }
  return true;
}

// Whether a set of scripts may be mixed in one name (UTS #39, section
// 5.2, "highly restrictive").
bool ScriptsGoTogether(const std::set<UScriptCode>& scripts) {
  if (scripts.size() <= 1) return true;
  const std::vector<std::set<UScriptCode>> allowed = {
      {USCRIPT_LATIN, USCRIPT_HAN, USCRIPT_HIRAGANA, USCRIPT_KATAKANA},
      {USCRIPT_LATIN, USCRIPT_HAN, USCRIPT_BOPOMOFO},
      {USCRIPT_LATIN, USCRIPT_HAN, USCRIPT_HANGUL},
  };
  for (const auto& group : allowed) {
    bool inside = true;
    for (UScriptCode s : scripts) inside = inside && group.count(s) > 0;
    if (inside) return true;
  }
  return false;
}

// Whether `c` is in Unicode's recommended set for identifiers (UTS #39,
// Identifier_Status=Allowed): letters of modern languages, not IPA, math,
// obsolete or look-alike ones such as U+0251 (ɑ) or U+029F (ʟ).
bool Recommended(UChar32 c) {
  static const icu::UnicodeSet* const recommended = [] {
    UErrorCode status = U_ZERO_ERROR;
    const icu::UnicodeSet* set = uspoof_getRecommendedUnicodeSet(&status);
    return U_SUCCESS(status) ? set : nullptr;
  }();
  return recommended == nullptr || recommended->contains(c);
}

absl::Status MixedScripts(const std::set<UScriptCode>& scripts) {
  std::vector<std::string> names;
  for (UScriptCode s : scripts) names.push_back(uscript_getName(s));
  return absl::InvalidArgumentError(
      absl::StrCat("mixes the ", absl::StrJoin(names, " and "),
                   " scripts in one word, which can make it pass for "
                   "another name"));
}

absl::Status EdgeError(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("begins or ends with a ", what,
                   ", which is easily missed and could make it pass for "
                   "another name"));
}

}  // namespace

absl::Status CheckNameIsDistinct(absl::string_view name) {
  // A space or a dot at either end, or two in a row, is easily missed:
  // "dave@example.com " and "dave@example.com." are not dave's name (red
  // team passes 7 and 8).
  for (const auto& [c, what] : {std::pair<char, const char*>{' ', "space"},
                                std::pair<char, const char*>{'.', "dot"}}) {
    if (!name.empty() && (name.front() == c || name.back() == c)) {
      return EdgeError(what);
    }
    if (absl::StrContains(name, std::string(2, c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("holds two ", what, "s in a row, which are easily "
                       "missed and could make it pass for another name"));
    }
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(name.data());
  const int32_t n = static_cast<int32_t>(name.size());
  std::set<UScriptCode> scripts;
  bool ascii = true;
  // The last character that is not a combining mark: the base the marks
  // after it sit on.
  UChar32 base = -1;
  for (int32_t i = 0; i < n;) {
    const int32_t at = i;
    UChar32 c;
    U8_NEXT(bytes, i, n, c);
    const UChar32 on = base;
    if (c >= 0) {
      const int8_t type = u_charType(c);
      if (type != U_NON_SPACING_MARK && type != U_ENCLOSING_MARK &&
          type != U_COMBINING_SPACING_MARK) {
        base = c;
      }
    }
    // A dot above an i or j (soft-dotted letters) does not show: "i\u0307"
    // reads as "i" (red team pass 8), also with other marks between them
    // ("\u1ECB" or "i\u0323" then U+0307; pass 9).
    if (c == 0x0307 && on >= 0 &&
        u_hasBinaryProperty(on, UCHAR_SOFT_DOTTED)) {
      return absl::InvalidArgumentError(
          "holds U+0307 (a dot above) on a soft-dotted letter such as i, "
          "where it does not show");
    }
    if (c < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("is not valid UTF-8 (at byte ", at, ")"));
    }
    if (c >= 0x80) ascii = false;
    const int8_t category = u_charType(c);
    const bool invisible =
        category == U_CONTROL_CHAR || category == U_FORMAT_CHAR ||
        category == U_PRIVATE_USE_CHAR || category == U_UNASSIGNED ||
        category == U_SURROGATE || category == U_LINE_SEPARATOR ||
        category == U_PARAGRAPH_SEPARATOR ||
        (category == U_SPACE_SEPARATOR && c != ' ') ||
        u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT);
    if (invisible) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "holds U+%04X, a control, format, space or invisible character "
          "that could make it pass for another name",
          static_cast<uint32_t>(c)));
    }
    if (c == '@' || c == '.' || c == ' ') {
      // The parts of an e-mail address, of a domain, of a full name are
      // judged apart: "иван@example.ru" is fine, "ex\u0430mple" is not.
      if (!ScriptsGoTogether(scripts)) return MixedScripts(scripts);
      scripts.clear();
      continue;
    }
    // Symbols (an emoji in a group's name) are no letter's look-alike.
    const bool symbol = category == U_MATH_SYMBOL ||
                        category == U_CURRENCY_SYMBOL ||
                        category == U_MODIFIER_SYMBOL ||
                        category == U_OTHER_SYMBOL;
    if (c >= 0x80 && !symbol && !Recommended(c)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "holds U+%04X, a character Unicode does not recommend in names "
          "(UTS #39: technical, obsolete or look-alike)",
          static_cast<uint32_t>(c)));
    }
    UErrorCode status = U_ZERO_ERROR;
    const UScriptCode script = uscript_getScript(c, &status);
    if (U_SUCCESS(status) && script != USCRIPT_COMMON &&
        script != USCRIPT_INHERITED) {
      scripts.insert(script);
    }
  }
  if (base == '.') return EdgeError("dot");  // a mark on it (pass 9)
  if (!ScriptsGoTogether(scripts)) return MixedScripts(scripts);
  if (ascii) return absl::OkStatus();
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(status);
  if (U_FAILURE(status)) {
    return absl::InternalError("ICU normalization data is missing");
  }
  const icu::UnicodeString composed = nfc->normalize(
      icu::UnicodeString::fromUTF8(icu::StringPiece(name.data(), n)), status);
  if (U_FAILURE(status) || !nfkc->isNormalized(composed, status) ||
      U_FAILURE(status)) {
    return absl::InvalidArgumentError(
        "holds compatibility characters (fullwidth or styled letters, "
        "ligatures, superscripts) that look like other characters");
  }
  return absl::OkStatus();
}

std::string QuoteUnverifiedName(absl::string_view name) {
  std::string out = "\"";
  for (size_t i = 0; i < name.size();) {
    if (name[i] == ' ' && i + 1 < name.size() && name[i + 1] == ' ') {
      size_t j = i;
      while (j < name.size() && name[j] == ' ') ++j;
      absl::StrAppend(&out, "<", j - i, " spaces>");
      i = j;
      continue;
    }
    if (name[i] == '"') out.push_back('"');
    out.push_back(name[i]);
    ++i;
  }
  out.push_back('"');
  return out;
}

namespace {

const USpoofChecker* SkeletonChecker() {
  static const USpoofChecker* const checker = [] {
    UErrorCode status = U_ZERO_ERROR;
    USpoofChecker* c = uspoof_open(&status);
    return U_SUCCESS(status) ? c : nullptr;
  }();
  return checker;
}

// skeleton(text); `text` valid UTF-8.
std::string Skeleton(absl::string_view text) {
  const USpoofChecker* checker = SkeletonChecker();
  if (checker == nullptr) return FoldName(text);
  UErrorCode status = U_ZERO_ERROR;
  icu::UnicodeString skeleton;
  uspoof_getSkeletonUnicodeString(
      checker, 0,
      icu::UnicodeString::fromUTF8(icu::StringPiece(
          text.data(), static_cast<int32_t>(text.size()))),
      skeleton, &status);
  if (U_FAILURE(status)) return FoldName(text);
  std::string out;
  skeleton.toUTF8String(out);
  return out;
}

}  // namespace

std::vector<std::string> NameSkeletons(absl::string_view name) {
  // Text that is not UTF-8 is refused as a name anyway; it is its own key.
  if (!IsValidUtf8(name)) return {absl::AsciiStrToLower(name)};
  // Names match whatever their case, so a name is all of its case forms:
  // the skeletons of its lower-case form, of its capitals ("B1LLY" reads
  // as "BILLY", billy's name in capitals; "B0B" as "BOB": a zero is a
  // capital O's look-alike), and of the name as written ("Ian" reads as
  // "lan"). Skeletons are compared as they are: "IAN" and "LAN" do not
  // look alike, and neither do "KAI" and "KAL".
  std::vector<std::string> keys = {Skeleton(FoldName(name))};
  const auto add = [&keys](std::string key) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      keys.push_back(std::move(key));
    }
  };
  icu::UnicodeString upper = icu::UnicodeString::fromUTF8(
      icu::StringPiece(name.data(), static_cast<int32_t>(name.size())));
  upper.toUpper(icu::Locale::getRoot());
  std::string upper_utf8;
  upper.toUTF8String(upper_utf8);
  add(Skeleton(upper_utf8));
  add(Skeleton(name));
  return keys;
}

bool NamesLookAlike(absl::string_view a, absl::string_view b) {
  if (FoldName(a) == FoldName(b)) return false;
  const std::vector<std::string> ka = NameSkeletons(a);
  for (const std::string& k : NameSkeletons(b)) {
    if (std::find(ka.begin(), ka.end(), k) != ka.end()) return true;
  }
  return false;
}

void LookAlikeIndex::Add(absl::string_view name) {
  Known known{FoldName(name), std::string(name)};
  for (std::string& key : NameSkeletons(name)) {
    auto& names = by_skeleton_[std::move(key)];
    bool present = false;
    for (const Known& k : names) present = present || k.folded == known.folded;
    if (!present) names.push_back(known);
  }
}

std::string LookAlikeIndex::Find(absl::string_view name) const {
  if (by_skeleton_.empty()) return "";
  const std::string folded = FoldName(name);
  std::string other;
  for (const std::string& key : NameSkeletons(name)) {
    auto it = by_skeleton_.find(key);
    if (it == by_skeleton_.end()) continue;
    for (const Known& k : it->second) {
      // A name of the index is itself, whatever else looks like it (two
      // existing names that collide were both let in before).
      if (k.folded == folded) return "";
      if (other.empty()) other = k.name;
    }
  }
  return other;
}

std::string FoldName(absl::string_view name) {
  if (IsAscii(name) || !IsValidUtf8(name)) return absl::AsciiStrToLower(name);
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) return absl::AsciiStrToLower(name);
  icu::UnicodeString text = icu::UnicodeString::fromUTF8(
      icu::StringPiece(name.data(), static_cast<int32_t>(name.size())));
  icu::UnicodeString decomposed = nfd->normalize(text, status);
  decomposed.foldCase(U_FOLD_CASE_DEFAULT);
  icu::UnicodeString folded = nfc->normalize(decomposed, status);
  if (U_FAILURE(status)) return absl::AsciiStrToLower(name);
  std::string out;
  folded.toUTF8String(out);
  return out;
}

}  // namespace warden
