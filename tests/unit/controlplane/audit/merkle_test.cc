#include "controlplane/audit/merkle.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::controlplane::audit {
namespace {

using ::testing::HasSubstr;

std::string Hex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

std::vector<std::string> Hexes(const std::vector<std::string>& hexes) {
  std::vector<std::string> out;
  for (const std::string& h : hexes) out.push_back(Hex(h));
  return out;
}

// The certificate-transparency project's RFC 6962 test data
// (cpp/merkletree/merkle_tree_test.cc, also in transparency-dev/merkle).
const std::vector<std::string>& CtLeaves() {
  static const auto* const kLeaves = new std::vector<std::string>{
      "",
      std::string("\x00", 1),
      "\x10",
      "\x20\x21",
      "\x30\x31",
      "\x40\x41\x42\x43",
      "\x50\x51\x52\x53\x54\x55\x56\x57",
      "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
  };
  return *kLeaves;
}

// Roots of the trees of the first 1..8 CT leaves.
const char* const kCtRoots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

std::vector<std::string> LeafHashes(const std::vector<std::string>& leaves) {
  std::vector<std::string> out;
  for (const std::string& leaf : leaves) out.push_back(LeafHash(leaf));
  return out;
}

std::vector<std::string> Prefix(const std::vector<std::string>& v, size_t n) {
  return std::vector<std::string>(v.begin(), v.begin() + n);
}

TEST(MerkleHashTest, DomainSeparatedSha256) {
  EXPECT_EQ(absl::BytesToHexString(EmptyRoot()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // The one-leaf tree of the empty leaf is SHA-256(0x00).
  EXPECT_EQ(LeafHash(""), Hex(kCtRoots[0]));
  const std::string a = LeafHash("a");
  const std::string b = LeafHash("b");
  EXPECT_NE(NodeHash(a, b), NodeHash(b, a));
  EXPECT_NE(LeafHash(a + b), NodeHash(a, b));  // prefixes separate domains.
  EXPECT_EQ(NodeHash(a, b).size(), kHashSize);
}

TEST(MerkleVectorsTest, RootsOfCtTestData) {
  const std::vector<std::string> hashes = LeafHashes(CtLeaves());
  TreeBuilder tree;
  EXPECT_EQ(tree.Root(), EmptyRoot());
  for (size_t n = 1; n <= 8; ++n) {
    absl::StatusOr<std::string> root = RootFromLeafHashes(Prefix(hashes, n));
    ASSERT_TRUE(root.ok()) << root.status();
    EXPECT_EQ(absl::BytesToHexString(*root), kCtRoots[n - 1]) << "size " << n;
    ASSERT_TRUE(tree.AppendLeaf(CtLeaves()[n - 1]).ok());
    EXPECT_EQ(absl::BytesToHexString(tree.Root()), kCtRoots[n - 1])
        << "size " << n;
  }
}

TEST(MerkleVectorsTest, InclusionProofsOfCtTestData) {
  struct Case {
    uint64_t index, size;
    std::vector<std::string> proof;
  };
  const std::vector<Case> cases = {
      {0, 1, {}},
      {0,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5,
       8,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2,
       3,
       {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
      {1,
       5,
       {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  const VectorHashReader reader(LeafHashes(CtLeaves()));
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<std::string>> proof =
        InclusionProof(reader, c.index, c.size);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(*proof, Hexes(c.proof)) << c.index << " of " << c.size;
    EXPECT_TRUE(VerifyInclusion(LeafHash(CtLeaves()[c.index]), c.index, c.size,
                                *proof, Hex(kCtRoots[c.size - 1]))
                    .ok());
  }
}

TEST(MerkleVectorsTest, ConsistencyProofsOfCtTestData) {
  struct Case {
    uint64_t old_size, new_size;
    std::vector<std::string> proof;
  };
  const std::vector<Case> cases = {
      {1, 1, {}},
      {1,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {6,
       8,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2,
       5,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  const VectorHashReader reader(LeafHashes(CtLeaves()));
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<std::string>> proof =
        ConsistencyProof(reader, c.old_size, c.new_size);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(*proof, Hexes(c.proof)) << c.old_size << " -> " << c.new_size;
    EXPECT_TRUE(VerifyConsistency(c.old_size, c.new_size,
                                  Hex(kCtRoots[c.old_size - 1]),
                                  Hex(kCtRoots[c.new_size - 1]), *proof)
                    .ok());
  }
}

// --- TreeBuilder ---

std::vector<std::string> TestLeafHashes(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(LeafHash(absl::StrCat("leaf ", i)));
  return out;
}

TEST(TreeBuilderTest, MatchesRootFromLeafHashesAndSurvivesRestore) {
  const std::vector<std::string> hashes = TestLeafHashes(200);
  TreeBuilder tree;
  for (size_t n = 0; n <= 200; ++n) {
    absl::StatusOr<std::string> want = RootFromLeafHashes(Prefix(hashes, n));
    ASSERT_TRUE(want.ok());
    ASSERT_EQ(tree.size(), n);
    ASSERT_EQ(tree.Root(), *want) << "size " << n;
    const std::string saved = tree.Serialize();
    EXPECT_EQ(saved.size(), 9 + 32 * __builtin_popcountll(n));
    absl::StatusOr<TreeBuilder> restored = TreeBuilder::Restore(saved);
    ASSERT_TRUE(restored.ok()) << restored.status();
    EXPECT_EQ(restored->size(), n);
    EXPECT_EQ(restored->Root(), *want);
    EXPECT_EQ(restored->Serialize(), saved);
    if (n == 200) break;
    // Continue from the restored copy half of the time: both must agree.
    if (n % 2 == 1) tree = *std::move(restored);
    ASSERT_TRUE(tree.AppendLeafHash(hashes[n]).ok());
  }
}

TEST(TreeBuilderTest, RejectsBadInput) {
  TreeBuilder tree;
  absl::Status s = tree.AppendLeafHash("short");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("leaf hash is 5 bytes, want 32"));
  EXPECT_EQ(tree.size(), 0u);

  ASSERT_TRUE(tree.AppendLeaf("a").ok());
  ASSERT_TRUE(tree.AppendLeaf("b").ok());
  ASSERT_TRUE(tree.AppendLeaf("c").ok());
  const std::string saved = tree.Serialize();  // size 3: two hashes.

  EXPECT_EQ(TreeBuilder::Restore("").status().code(),
            absl::StatusCode::kDataLoss);
  std::string bad_version = saved;
  bad_version[0] = '\x02';
  EXPECT_THAT(TreeBuilder::Restore(bad_version).status().message(),
              HasSubstr("unknown version 2"));
  EXPECT_THAT(TreeBuilder::Restore(saved.substr(0, saved.size() - 1))
                  .status()
                  .message(),
              HasSubstr("tree state of size 3 must be 73 bytes"));
  EXPECT_EQ(TreeBuilder::Restore(saved + "x").status().code(),
            absl::StatusCode::kDataLoss);
  std::string bad_size = saved;
  bad_size[8] = '\x04';  // size 4 needs one hash, not two.
  EXPECT_EQ(TreeBuilder::Restore(bad_size).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(TreeBuilderTest, RefusesToOverflow) {
  std::string state(1, '\x01');
  state.append(8, '\xff');
  for (int i = 0; i < 64; ++i) state.append(LeafHash(absl::StrCat(i)));
  absl::StatusOr<TreeBuilder> full = TreeBuilder::Restore(state);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->size(), UINT64_MAX);
  EXPECT_EQ(full->AppendLeaf("x").code(), absl::StatusCode::kOutOfRange);
}

TEST(RootFromLeafHashesTest, RejectsWrongHashSize) {
  absl::StatusOr<std::string> root =
      RootFromLeafHashes({LeafHash("a"), "not a hash"});
  EXPECT_EQ(root.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(root.status().message(), HasSubstr("leaf hash 1 is 10 bytes"));
}

// --- Proof generation errors ---

class BadReader : public HashReader {
 public:
  absl::StatusOr<std::string> LeafHashAt(uint64_t index) const override {
    if (index == 3) return std::string("short");
    return LeafHash(absl::StrCat(index));
  }
};

TEST(ProofGenerationTest, Errors) {
  const VectorHashReader reader(TestLeafHashes(5));
  EXPECT_EQ(InclusionProof(reader, 5, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InclusionProof(reader, 0, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  // The tree claims more leaves than the reader holds: its error passes.
  EXPECT_EQ(InclusionProof(reader, 0, 6).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ConsistencyProof(reader, 3, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(reader, 2, 6).status().code(),
            absl::StatusCode::kOutOfRange);
  absl::StatusOr<std::vector<std::string>> empty =
      ConsistencyProof(reader, 0, 5);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  empty = ConsistencyProof(reader, 5, 5);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  const BadReader bad;
  absl::Status s = InclusionProof(bad, 0, 8).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("stored hash of leaf 3 is 5 bytes"));
}

// --- Verification edge cases ---

TEST(VerifyInclusionTest, EdgeCases) {
  const std::vector<std::string> hashes = TestLeafHashes(4);
  const std::string root = *RootFromLeafHashes(hashes);
  const VectorHashReader reader(hashes);
  const std::vector<std::string> proof = *InclusionProof(reader, 1, 4);

  absl::Status s = VerifyInclusion(hashes[1], 4, 4, proof, root);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              HasSubstr("leaf index 4 is outside a tree of size 4"));
  EXPECT_EQ(VerifyInclusion(hashes[1], 0, 0, {}, EmptyRoot()).code(),
            absl::StatusCode::kInvalidArgument);
  s = VerifyInclusion("short", 1, 4, proof, root);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("leaf hash is 5 bytes, want 32"));
  EXPECT_EQ(VerifyInclusion(hashes[1], 1, 4, proof, "short").code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<std::string> bad_hash = proof;
  bad_hash[1].pop_back();
  s = VerifyInclusion(hashes[1], 1, 4, bad_hash, root);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("inclusion proof hash 1 is 31 bytes"));

  s = VerifyInclusion(hashes[1], 1, 4, {proof[0]}, root);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(),
              HasSubstr("inclusion proof has 1 hashes; leaf 1 of a tree of "
                        "size 4 needs 2"));
  s = VerifyInclusion(hashes[2], 1, 4, proof, root);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("does not lead to the given root"));

  // A one-leaf tree: the empty proof, and the root is the leaf hash.
  EXPECT_TRUE(VerifyInclusion(hashes[0], 0, 1, {}, hashes[0]).ok());
  EXPECT_EQ(VerifyInclusion(hashes[0], 0, 1, {hashes[1]}, hashes[0]).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(VerifyConsistencyTest, EdgeCases) {
  const std::vector<std::string> hashes = TestLeafHashes(8);
  const VectorHashReader reader(hashes);
  const std::string root4 = *RootFromLeafHashes(Prefix(hashes, 4));
  const std::string root5 = *RootFromLeafHashes(Prefix(hashes, 5));
  const std::string root8 = *RootFromLeafHashes(hashes);

  absl::Status s = VerifyConsistency(5, 4, root5, root4, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("old size 5 is larger than new size 4"));
  EXPECT_EQ(VerifyConsistency(4, 8, "x", root8, {}).code(),
            absl::StatusCode::kInvalidArgument);

  // Equal sizes: empty proof and equal roots.
  EXPECT_TRUE(VerifyConsistency(5, 5, root5, root5, {}).ok());
  s = VerifyConsistency(5, 5, root5, root5, {root5});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("between equal sizes must be empty"));
  s = VerifyConsistency(5, 5, root5, root4, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("trees of equal size 5 have different"));

  // From the empty tree.
  EXPECT_TRUE(VerifyConsistency(0, 8, EmptyRoot(), root8, {}).ok());
  EXPECT_TRUE(VerifyConsistency(0, 0, EmptyRoot(), EmptyRoot(), {}).ok());
  s = VerifyConsistency(0, 8, EmptyRoot(), root8, {root8});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("from the empty tree must be empty"));
  s = VerifyConsistency(0, 8, root4, root8, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("not the empty tree's root"));

  // 0 < old < new with an empty proof (RFC 9162 2.1.4.2 step 1).
  s = VerifyConsistency(4, 8, root4, root8, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(),
              HasSubstr("consistency proof has 0 hashes; sizes 4 -> 8 need 1"));

  // Power-of-two old size: old root is not repeated in the proof.
  const std::vector<std::string> proof = *ConsistencyProof(reader, 4, 8);
  ASSERT_EQ(proof.size(), 1u);
  EXPECT_TRUE(VerifyConsistency(4, 8, root4, root8, proof).ok());
  // With a power-of-two old size, a wrong old root shows at the new root.
  s = VerifyConsistency(4, 8, root5, root8, proof);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("does not lead to the new root"));
  const std::vector<std::string> proof58 = *ConsistencyProof(reader, 5, 8);
  s = VerifyConsistency(5, 8, root4, root8, proof58);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("does not lead to the old root"));
  s = VerifyConsistency(5, 8, root5, root4, proof58);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("does not lead to the new root"));
}

// --- Properties over every small tree ---

constexpr uint64_t kMaxSize = 70;

struct Fixture {
  std::vector<std::string> hashes = TestLeafHashes(kMaxSize + 1);
  VectorHashReader reader{hashes};
  std::vector<std::string> roots;  // roots[n] for n in 0..kMaxSize+1.
  Fixture() {
    for (size_t n = 0; n <= kMaxSize + 1; ++n) {
      roots.push_back(*RootFromLeafHashes(Prefix(hashes, n)));
    }
  }
};

const Fixture& GetFixture() {
  static const Fixture* const kFixture = new Fixture;
  return *kFixture;
}

// The bits to flip in a proof hash: all 256 for small trees, one per byte
// (a different bit in each) above, to keep the test within seconds.
std::vector<int> BitsToFlip(uint64_t size) {
  std::vector<int> bits;
  for (int bit = 0; bit < 256; ++bit) {
    if (size <= 24 || bit % 8 == (bit / 8) % 8) bits.push_back(bit);
  }
  return bits;
}

bool Denied(const absl::Status& s) {
  return s.code() == absl::StatusCode::kPermissionDenied;
}

TEST(MerklePropertyTest, InclusionProofsVerifyAndMutationsFail) {
  const Fixture& f = GetFixture();
  for (uint64_t n = 1; n <= kMaxSize; ++n) {
    const std::vector<int> bits = BitsToFlip(n);
    for (uint64_t i = 0; i < n; ++i) {
      SCOPED_TRACE(absl::StrCat("leaf ", i, " of ", n));
      absl::StatusOr<std::vector<std::string>> got =
          InclusionProof(f.reader, i, n);
      ASSERT_TRUE(got.ok()) << got.status();
      const std::vector<std::string>& proof = *got;
      const std::string& leaf = f.hashes[i];
      ASSERT_TRUE(VerifyInclusion(leaf, i, n, proof, f.roots[n]).ok());

      for (size_t j = 0; j < proof.size(); ++j) {
        for (int bit : bits) {
          std::vector<std::string> bad = proof;
          bad[j][bit / 8] ^= static_cast<char>(1 << (bit % 8));
          ASSERT_TRUE(Denied(VerifyInclusion(leaf, i, n, bad, f.roots[n])))
              << "hash " << j << " bit " << bit;
        }
      }
      for (int bit : bits) {  // the leaf and the root themselves.
        std::string bad_leaf = leaf;
        bad_leaf[bit / 8] ^= static_cast<char>(1 << (bit % 8));
        ASSERT_TRUE(Denied(VerifyInclusion(bad_leaf, i, n, proof, f.roots[n])));
        std::string bad_root = f.roots[n];
        bad_root[bit / 8] ^= static_cast<char>(1 << (bit % 8));
        ASSERT_TRUE(Denied(VerifyInclusion(leaf, i, n, proof, bad_root)));
      }
      // Wrong index inside the tree.
      if (i > 0) {
        EXPECT_TRUE(Denied(VerifyInclusion(leaf, i - 1, n, proof, f.roots[n])));
      }
      if (i + 1 < n) {
        EXPECT_TRUE(Denied(VerifyInclusion(leaf, i + 1, n, proof, f.roots[n])));
      }
      // Wrong size, with the genuine root of the claimed size.
      if (n - 1 > i) {
        EXPECT_TRUE(
            Denied(VerifyInclusion(leaf, i, n - 1, proof, f.roots[n - 1])));
      }
      EXPECT_TRUE(
          Denied(VerifyInclusion(leaf, i, n + 1, proof, f.roots[n + 1])));
      // Truncated and extended.
      if (!proof.empty()) {
        std::vector<std::string> shorter(proof.begin(), proof.end() - 1);
        EXPECT_TRUE(Denied(VerifyInclusion(leaf, i, n, shorter, f.roots[n])));
        shorter.assign(proof.begin() + 1, proof.end());
        EXPECT_TRUE(Denied(VerifyInclusion(leaf, i, n, shorter, f.roots[n])));
      }
      std::vector<std::string> longer = proof;
      longer.push_back(f.hashes[0]);
      EXPECT_TRUE(Denied(VerifyInclusion(leaf, i, n, longer, f.roots[n])));
      longer.assign(1, f.hashes[0]);
      longer.insert(longer.end(), proof.begin(), proof.end());
      EXPECT_TRUE(Denied(VerifyInclusion(leaf, i, n, longer, f.roots[n])));
    }
  }
}

TEST(MerklePropertyTest, ConsistencyProofsVerifyAndMutationsFail) {
  const Fixture& f = GetFixture();
  for (uint64_t n = 1; n <= kMaxSize; ++n) {
    const std::vector<int> bits = BitsToFlip(n);
    for (uint64_t m = 0; m <= n; ++m) {
      SCOPED_TRACE(absl::StrCat(m, " -> ", n));
      absl::StatusOr<std::vector<std::string>> got =
          ConsistencyProof(f.reader, m, n);
      ASSERT_TRUE(got.ok()) << got.status();
      const std::vector<std::string>& proof = *got;
      const std::string& old_root = f.roots[m];
      const std::string& new_root = f.roots[n];
      ASSERT_TRUE(VerifyConsistency(m, n, old_root, new_root, proof).ok());
      ASSERT_EQ(proof.empty(), m == 0 || m == n);

      for (size_t j = 0; j < proof.size(); ++j) {
        for (int bit : bits) {
          std::vector<std::string> bad = proof;
          bad[j][bit / 8] ^= static_cast<char>(1 << (bit % 8));
          ASSERT_TRUE(Denied(VerifyConsistency(m, n, old_root, new_root, bad)))
              << "hash " << j << " bit " << bit;
        }
      }
      if (m > 0 && m < n) {  // roots are checked (else see EdgeCases).
        for (int bit : bits) {
          std::string bad = old_root;
          bad[bit / 8] ^= static_cast<char>(1 << (bit % 8));
          ASSERT_TRUE(Denied(VerifyConsistency(m, n, bad, new_root, proof)));
          bad = new_root;
          bad[bit / 8] ^= static_cast<char>(1 << (bit % 8));
          ASSERT_TRUE(Denied(VerifyConsistency(m, n, old_root, bad, proof)));
        }
        EXPECT_TRUE(Denied(VerifyConsistency(m, n, new_root, old_root, proof)));
      }
      // Wrong sizes, with the genuine roots of the claimed sizes. (With an
      // empty proof, a neighbouring claim such as 0 -> n-1 is simply true.)
      if (m > 0 && m < n) {
        EXPECT_TRUE(Denied(
            VerifyConsistency(m - 1, n, f.roots[m - 1], new_root, proof)));
        EXPECT_TRUE(Denied(
            VerifyConsistency(m + 1, n, f.roots[m + 1], new_root, proof)));
        EXPECT_TRUE(Denied(
            VerifyConsistency(m, n - 1, old_root, f.roots[n - 1], proof)));
        EXPECT_TRUE(Denied(
            VerifyConsistency(m, n + 1, old_root, f.roots[n + 1], proof)));
      }
      // Truncated and extended.
      if (!proof.empty()) {
        std::vector<std::string> shorter(proof.begin(), proof.end() - 1);
        EXPECT_TRUE(
            Denied(VerifyConsistency(m, n, old_root, new_root, shorter)));
        shorter.assign(proof.begin() + 1, proof.end());
        EXPECT_TRUE(
            Denied(VerifyConsistency(m, n, old_root, new_root, shorter)));
      }
      std::vector<std::string> longer = proof;
      longer.push_back(f.hashes[0]);
      EXPECT_TRUE(Denied(VerifyConsistency(m, n, old_root, new_root, longer)));
      longer.assign(1, old_root);
      longer.insert(longer.end(), proof.begin(), proof.end());
      EXPECT_TRUE(Denied(VerifyConsistency(m, n, old_root, new_root, longer)));
    }
  }
}

}  // namespace
}  // namespace warden::controlplane::audit
