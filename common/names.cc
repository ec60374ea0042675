#include "common/names.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/uscript.h>
#include <unicode/uniset.h>
#include <unicode/uspoof.h>
#include <unicode/unistr.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <array>
#include <set>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
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

namespace {

// `lower` with the first letter of each word capitalised: at the start and
// after '.', '-', '_', '+', ' ' or '@' ("Emily.Smith@Example.Com").
icu::UnicodeString Capitalised(const icu::UnicodeString& lower) {
  icu::UnicodeString out;
  bool start = true;
  for (int32_t i = 0; i < lower.length();) {
    const UChar32 c = lower.char32At(i);
    out.append(start ? u_toupper(c) : c);
    start = c == '.' || c == '-' || c == '_' || c == '+' || c == ' ' ||
            c == '@';
    i += U16_LENGTH(c);
  }
  return out;
}

}  // namespace

namespace internal {

std::vector<std::string> NameSkeletonsWithIcu(absl::string_view name) {
  // Text that is not UTF-8 is refused as a name anyway; it is its own key.
  if (!IsValidUtf8(name)) return {absl::AsciiStrToLower(name)};
  // Names match whatever their case, so a name is every way it may be
  // written: in lower case, in capitals ("B1LLY" reads as "BILLY",
  // billy's name in capitals; "B0B" as "BOB": a zero is a capital O's
  // look-alike), capitalised ("EmiIy" reads as "Emily"), the part before
  // the last '@' and the part after it each in any of the three
  // ("EMlLY@example.com" reads as "EMILY@example.com"), and as written.
  // Case is not mixed within a part: "kai" and "kal" do not look alike
  // (only "kaI" would read as "kal", and no one writes a name so), but
  // "ian" and "lan" do ("Ian" reads as "lan").
  std::vector<std::string> keys = {Skeleton(FoldName(name))};
  const auto add = [&keys](std::string key) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      keys.push_back(std::move(key));
    }
  };
  const icu::UnicodeString text = icu::UnicodeString::fromUTF8(
      icu::StringPiece(name.data(), static_cast<int32_t>(name.size())));
  icu::UnicodeString lower = text;
  lower.toLower(icu::Locale::getRoot());
  icu::UnicodeString upper = text;
  upper.toUpper(icu::Locale::getRoot());
  const icu::UnicodeString styles[] = {lower, upper, Capitalised(lower)};
  for (const icu::UnicodeString& local : styles) {
    const int32_t at = local.lastIndexOf(u'@');
    for (const icu::UnicodeString& domain : styles) {
      icu::UnicodeString written;
      if (at < 0) {
        if (&domain != &styles[0]) continue;  // one part: its style alone
        written = local;
      } else {
        const int32_t domain_at = domain.lastIndexOf(u'@');
        if (domain_at < 0) continue;
        written = local.tempSubString(0, at);
        written.append(domain.tempSubString(domain_at));
      }
      std::string utf8;
      written.toUTF8String(utf8);
      add(Skeleton(utf8));
    }
  }
  add(Skeleton(name));
  return keys;
}

}  // namespace internal

namespace {

// The skeleton of each ASCII character, from ICU's data once: the
// skeleton of ASCII text is the concatenation of its characters' (each
// maps to ASCII starters), so names in ASCII, nearly all of them, skip
// ICU's conversions (a policy revision with 10,000 users indexes about
// 200,000 skeletons on every proxy).
const std::array<std::string, 128>& AsciiSkeletons() {
  static const std::array<std::string, 128>* const table = [] {
    auto* t = new std::array<std::string, 128>;
    for (int c = 0; c < 128; ++c) {
      const char ch = static_cast<char>(c);
      (*t)[c] = c < 0x20 || c == 0x7f ? std::string(1, ch)
                                      : Skeleton(absl::string_view(&ch, 1));
    }
    return t;
  }();
  return *table;
}

std::string AsciiSkeleton(absl::string_view text) {
  const auto& table = AsciiSkeletons();
  std::string out;
  out.reserve(text.size() + 4);
  for (const char c : text) out += table[static_cast<unsigned char>(c) & 0x7f];
  return out;
}

std::string AsciiCapitalised(absl::string_view lower) {
  std::string out(lower);
  bool start = true;
  for (char& c : out) {
    if (start) c = absl::ascii_toupper(static_cast<unsigned char>(c));
    start = c == '.' || c == '-' || c == '_' || c == '+' || c == ' ' ||
            c == '@';
  }
  return out;
}

}  // namespace

std::vector<std::string> NameSkeletons(absl::string_view name) {
  if (!IsAscii(name) || !IsValidUtf8(name)) {
    return internal::NameSkeletonsWithIcu(name);
  }
  // The same keys, in the same order, as NameSkeletonsWithIcu.
  const std::string lower = absl::AsciiStrToLower(name);
  std::vector<std::string> keys = {AsciiSkeleton(lower)};
  const auto add = [&keys](std::string key) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      keys.push_back(std::move(key));
    }
  };
  const std::string styles[] = {lower, absl::AsciiStrToUpper(name),
                                AsciiCapitalised(lower)};
  const size_t at = lower.rfind('@');
  if (at == std::string::npos) {
    for (const std::string& style : styles) add(AsciiSkeleton(style));
  } else {
    std::string locals[3];
    std::string domains[3];
    for (int i = 0; i < 3; ++i) {
      locals[i] = AsciiSkeleton(absl::string_view(styles[i]).substr(0, at));
      domains[i] = AsciiSkeleton(absl::string_view(styles[i]).substr(at));
    }
    for (const std::string& local : locals) {
      for (const std::string& domain : domains) add(local + domain);
    }
  }
  add(AsciiSkeleton(name));
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
  folded_.insert(FoldName(name));
  // Each spelling once: "Jane@Iab.example" has keys its lower case has not.
  auto [spelling, added] = spellings_.insert(std::string(name));
  if (!added) return;
  const uint32_t index = static_cast<uint32_t>(names_.size());
  names_.push_back(&*spelling);
  for (const std::string& key : NameSkeletons(name)) {
    by_skeleton_[absl::HashOf(key)].push_back(index);
  }
}

std::string LookAlikeIndex::Find(absl::string_view name) const {
  if (names_.empty()) return "";
  const std::string folded = FoldName(name);
  // A name of the index is itself, whatever else looks like it (two
  // existing names that collide were both let in before).
  if (folded_.contains(folded)) return "";
  const std::vector<std::string> keys = NameSkeletons(name);
  for (const std::string& key : keys) {
    auto it = by_skeleton_.find(absl::HashOf(key));
    if (it == by_skeleton_.end()) continue;
    for (const uint32_t i : it->second) {
      // The hash matched; the skeleton itself must.
      for (const std::string& theirs : NameSkeletons(*names_[i])) {
        if (std::find(keys.begin(), keys.end(), theirs) != keys.end()) {
          return *names_[i];
        }
      }
    }
  }
  return "";
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
