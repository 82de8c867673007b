#include <gtest/gtest.h>

#include <bit>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "runtime/model/gguf_file.h"
#include "tests/support/json_file.h"
#include "runtime/model/sha256.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

TEST(Sha256, KnownVectors) {
  runtime::Sha256 empty;
  EXPECT_EQ(empty.hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  runtime::Sha256 abc;
  abc.update("abc", 3);
  EXPECT_EQ(abc.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  runtime::Sha256 long_input;  // 1,000,000 'a' fed in uneven pieces
  const std::string piece(777, 'a');
  size_t fed = 0;
  while (fed < 1000000) {
    const size_t n = std::min<size_t>(piece.size(), 1000000 - fed);
    long_input.update(piece.data(), n);
    fed += n;
  }
  EXPECT_EQ(long_input.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Every tensor of SmolLM2, dequantized by GgufFile::read_rows, hashes to the same sha256 as gguf-py's
// dequantization (scripts/golden/gguf_dequant.py), and its first values of the first and last row agree.
TEST(GgufModelTensors, EveryTensorMatchesGgufPy) {
  const auto path = testing::default_model_path();
  TESSERA_REQUIRE_MODEL(path);
  const nlohmann::json golden = testing::read_json(testing::fixture("gguf/smollm2_tensors.json"));

  const auto file = GgufFile::open(path);
  ASSERT_EQ(golden["tensors"].size(), file->tensors().size());
  std::vector<float> values;
  for (const auto& expected : golden["tensors"]) {
    const std::string name = expected["name"];
    SCOPED_TRACE(name);
    const GgufTensorInfo* tensor = file->find_tensor(name);
    ASSERT_NE(tensor, nullptr);
    EXPECT_EQ(ggml_type_traits(tensor->type).name, expected["type"].get<std::string>());
    EXPECT_EQ(tensor->dims, expected["dims"].get<std::vector<int64_t>>());
    const int64_t rows = expected["rows"], columns = expected["columns"];
    ASSERT_EQ(tensor->rows(), rows);
    ASSERT_EQ(tensor->columns(), columns);
    values.assign(static_cast<size_t>(rows * columns), 0.0f);
    file->read_rows(*tensor, 0, rows, values.data());
    runtime::Sha256 hash;
    hash.update(values.data(), values.size() * sizeof(float));
    EXPECT_EQ(hash.hex_digest(), expected["sha256"].get<std::string>());
    const auto first = expected["first_row"]["bits"].get<std::vector<uint32_t>>();
    const auto last = expected["last_row"]["bits"].get<std::vector<uint32_t>>();
    for (size_t i = 0; i < first.size() && i < static_cast<size_t>(columns); ++i) {
      EXPECT_EQ(std::bit_cast<uint32_t>(values[i]), first[i]) << "first row, column " << i;
      EXPECT_EQ(std::bit_cast<uint32_t>(values[static_cast<size_t>((rows - 1) * columns) + i]), last[i])
          << "last row, column " << i;
    }
  }
}

}  // namespace
}  // namespace tessera::runtime
