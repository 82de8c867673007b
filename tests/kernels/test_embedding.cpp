#include <gtest/gtest.h>

#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/embedding.h"

namespace tessera::kernels::cpu {
namespace {

constexpr int64_t kVocab = 11;
constexpr int64_t kHidden = 5;

// Row v of the full table holds v * 100 + column, so every copied value says where it came from.
std::vector<float> full_table() {
  std::vector<float> t(kVocab * kHidden);
  for (int64_t v = 0; v < kVocab; ++v) {
    for (int64_t c = 0; c < kHidden; ++c) t[static_cast<size_t>(v * kHidden + c)] = static_cast<float>(v * 100 + c);
  }
  return t;
}

std::vector<float> slice(const std::vector<float>& table, int64_t begin, int64_t end) {
  return {table.begin() + begin * kHidden, table.begin() + end * kHidden};
}

TEST(Embedding, FullVocabularyGathersRows) {
  const auto table = full_table();
  const std::vector<int32_t> ids = {3, 0, 10, 3};
  std::vector<float> out(ids.size() * kHidden, -1.0f);
  embedding_lookup(ids.data(), 4, table.data(), 0, kVocab, kVocab, kHidden, out.data());
  for (size_t t = 0; t < ids.size(); ++t) {
    for (int64_t c = 0; c < kHidden; ++c) {
      EXPECT_EQ(out[t * kHidden + static_cast<size_t>(c)], static_cast<float>(ids[t] * 100 + c));
    }
  }
}

TEST(Embedding, VocabParallelSlicesSumToTheFullLookup) {
  const auto table = full_table();
  const std::vector<int32_t> ids = {0, 3, 4, 7, 10, 6, 2};
  const int64_t count = static_cast<int64_t>(ids.size());
  // Three uneven "ranks", one of them owning nothing.
  const std::vector<std::pair<int64_t, int64_t>> ranges = {{0, 4}, {4, 4}, {4, kVocab}};
  std::vector<float> sum(ids.size() * kHidden, 0.0f);
  for (const auto& [begin, end] : ranges) {
    const auto part = slice(table, begin, end);
    std::vector<float> out(ids.size() * kHidden, -1.0f);
    embedding_lookup(ids.data(), count, part.data(), begin, end, kVocab, kHidden, out.data());
    for (size_t t = 0; t < ids.size(); ++t) {
      const bool owned = ids[t] >= begin && ids[t] < end;
      for (int64_t c = 0; c < kHidden; ++c) {
        const float value = out[t * kHidden + static_cast<size_t>(c)];
        EXPECT_EQ(value, owned ? static_cast<float>(ids[t] * 100 + c) : 0.0f) << "range " << begin << ".." << end;
        sum[t * kHidden + static_cast<size_t>(c)] += value;
      }
    }
  }
  std::vector<float> full(ids.size() * kHidden);
  embedding_lookup(ids.data(), count, table.data(), 0, kVocab, kVocab, kHidden, full.data());
  EXPECT_EQ(sum, full);
}

TEST(Embedding, EmptyInputIsFine) {
  const auto table = full_table();
  embedding_lookup(nullptr, 0, table.data(), 0, kVocab, kVocab, kHidden, nullptr);
}

TEST(Embedding, IdsOutsideTheVocabularyThrowAndLeaveOutputUntouched) {
  const auto table = full_table();
  std::vector<float> out(2 * kHidden, 7.0f);
  for (const int32_t bad : {-1, static_cast<int32_t>(kVocab), 1 << 30}) {
    const std::vector<int32_t> ids = {1, bad};
    EXPECT_THROW(embedding_lookup(ids.data(), 2, table.data(), 0, kVocab, kVocab, kHidden, out.data()), Error);
    EXPECT_EQ(out, std::vector<float>(2 * kHidden, 7.0f));
  }
  try {
    const std::vector<int32_t> ids = {1, 42};
    embedding_lookup(ids.data(), 2, table.data(), 0, kVocab, kVocab, kHidden, out.data());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("42"), std::string::npos) << e.what();
  }
}

TEST(Embedding, BadRangesThrow) {
  const auto table = full_table();
  const int32_t id = 1;
  std::vector<float> out(kHidden);
  EXPECT_THROW(embedding_lookup(&id, 1, table.data(), 5, 4, kVocab, kHidden, out.data()), Error);
  EXPECT_THROW(embedding_lookup(&id, 1, table.data(), -1, 4, kVocab, kHidden, out.data()), Error);
  EXPECT_THROW(embedding_lookup(&id, 1, table.data(), 0, kVocab + 1, kVocab, kHidden, out.data()), Error);
}

}  // namespace
}  // namespace tessera::kernels::cpu
