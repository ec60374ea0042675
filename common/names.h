// How Warden compares the names of people: user names, e-mail aliases,
// group names, and the `users` globs of policies. Two names are the same
// person's when their folded forms are equal.
//
// FoldName is Unicode's canonical caseless form (Unicode 15, D145; ICU's
// full case folding between canonical decompositions, here returned in
// NFC): "ÅSA@EXAMPLE.COM", "åsa@example.com" and "a\u030Asa@example.com"
// fold alike, as do "Kim" and "\u212Aim" (KELVIN SIGN is canonically
// K). Compatibility forms are not merged: a fullwidth "ａ" stays apart
// from "a". ASCII folds to lower case, with a fast path. Text that is not
// valid UTF-8 is only ASCII-lowered, byte for byte, so two different
// invalid names never fold alike.
//
// Thread-safe; no state.
#ifndef WARDEN_COMMON_NAMES_H_
#define WARDEN_COMMON_NAMES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/container/node_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace warden {

std::string FoldName(absl::string_view name);

inline bool SameName(absl::string_view a, absl::string_view b) {
  return FoldName(a) == FoldName(b);
}

// CheckNameIsDistinct refuses a name (of a user, an e-mail alias, a group)
// that can pass on screen for another one Warden treats as a different
// person, with InvalidArgument saying why:
//  - text that is not valid UTF-8, or holds control, format, private-use,
//    unassigned or default-ignorable code points ("ali\u200Bce"), or
//    spaces other than U+0020, or U+0020 at either end or twice in a row;
//  - compatibility characters (the name is not NFKC): fullwidth "ａlice",
//    ligatures, superscripts;
//  - letters of scripts that do not go together in one word (UTS #39
//    "highly restrictive"): one script, or Latin with Han and
//    Hiragana/Katakana, Bopomofo or Hangul. The words are what '@', '.' and
//    ' ' separate. "\u0430lice" (Cyrillic a) and "ex\u0430mple.com" are
//    refused; "José", "田中taro", "Ελένη" and "иван@example.ru" are not.
// A name wholly in a look-alike script ("\u0430\u0440\u0435" for "ape")
// is not caught here: that needs comparing with every other name.
absl::Status CheckNameIsDistinct(absl::string_view name);

// NameSkeletons: the UTS #39 skeletons of a name (ICU's confusables
// data) in each of its case forms: two names look alike when they share
// one and their folded forms differ. Whole-script look-alikes ("\u0430\u0440\u0435"
// for "ape"), Latin look-alikes ("al\u0131ce" with a dotless i for
// "alice"), digits for letters ("b0b" for "bob", "examp1e.com"), "rn" for
// "m", and "Ian" for "lan" (a capital I passes for an l), "B1LLY" for
// "BILLY" (billy's name in capitals), "EMlLY@example.com" for
// "EMILY@example.com": the skeletons of the name in lower case, in
// capitals, capitalised, with the parts before and after the last '@'
// each in any of those, and as written. One to eleven strings.
std::vector<std::string> NameSkeletons(absl::string_view name);

// Names of different people that look alike: `a` and `b` fold apart and
// share a skeleton.
bool NamesLookAlike(absl::string_view a, absl::string_view b);

// LookAlikeIndex: names that exist (a directory's userNames, e-mail
// aliases, group names; a config's users), by skeleton. Find answers which
// of them a new name passes for. Not thread-safe while being filled; const
// use is.
class LookAlikeIndex {
 public:
  void Add(absl::string_view name);
  // A name of the index that `name` looks like without being it (folded),
  // as it was added; "" when there is none, or when `name` is itself in
  // the index.
  std::string Find(absl::string_view name) const;
  bool empty() const { return names_.empty(); }

 private:
  // Each name once, as added; the skeletons by their 64-bit hash (a
  // collision is ruled out on a hit by comparing the skeletons
  // themselves), so that a proxy holds a directory's index in little
  // more than its names.
  absl::node_hash_set<std::string> spellings_;  // stable: names_ points in
  std::vector<const std::string*> names_;
  absl::flat_hash_set<std::string> folded_;
  absl::flat_hash_map<uint64_t, absl::InlinedVector<uint32_t, 1>> by_skeleton_;
};

namespace internal {
// NameSkeletons computed with ICU whatever the text (NameSkeletons takes a
// shortcut for ASCII names that gives the same keys); for tests.
std::vector<std::string> NameSkeletonsWithIcu(absl::string_view name);
}  // namespace internal

// A name nobody verified (a failed login's claim), as text lines show it:
// in double quotes, a quote inside doubled (CSV style; the line is escaped
// for the terminal afterwards, and a backslash here would print doubled
// and read as the closing quote), and a run of spaces shown as its length
// ("<150 spaces>"), so padding cannot push the rest of a line away.
std::string QuoteUnverifiedName(absl::string_view name);

}  // namespace warden

#endif  // WARDEN_COMMON_NAMES_H_
