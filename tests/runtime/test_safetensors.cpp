// SafetensorsFile: decoding checked against values torch wrote (tests/fixtures/tiny-models/dtypes.*, made by
// scripts/golden/tiny_models.py), and every kind of malformed header rejected with an Error naming the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/error.h"
#include "runtime/model/safetensors_file.h"
#include "tests/support/json_file.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

namespace fs = std::filesystem;

fs::path fixtures() { return testing::fixture("tiny-models"); }

std::vector<std::byte> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

// A file image: 8-byte little-endian length, the header text, then `data_bytes` bytes of data.
std::vector<std::byte> image(const std::string& header, size_t data_bytes, uint64_t claimed_length = ~0ull) {
  const uint64_t length = claimed_length == ~0ull ? header.size() : claimed_length;
  std::vector<std::byte> bytes(8 + header.size() + data_bytes, std::byte{0});
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::byte>((length >> (8 * i)) & 0xff);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  for (size_t i = 0; i < data_bytes; ++i) bytes[8 + header.size() + i] = static_cast<std::byte>(i * 7 + 1);
  return bytes;
}

// Expects parsing to throw an Error whose message contains every one of `parts`.
void expect_rejected(const std::vector<std::byte>& bytes, const std::vector<std::string>& parts) {
  try {
    SafetensorsFile::parse(bytes, "bad.safetensors");
    ADD_FAILURE() << "accepted, expected an error mentioning " << parts.front();
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("bad.safetensors"), std::string::npos) << message;
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  }
}

TEST(SafetensorsFile, DecodesEveryFloatDTypeAsTorchDoes) {
  const auto file = SafetensorsFile::open(fixtures() / "dtypes.safetensors");
  const auto expected = testing::read_json(fixtures() / "dtypes.json");
  ASSERT_EQ(expected.size(), 4u);
  for (const auto& [name, want] : expected.items()) {
    SCOPED_TRACE(name);
    const SafetensorsTensor& tensor = file->get(name);
    EXPECT_EQ(tensor.shape, want["shape"].get<std::vector<int64_t>>());
    std::vector<float> values(static_cast<size_t>(tensor.numel()));
    file->read_rows(tensor, 0, tensor.rows(), values.data());
    const auto want_values = want["values"].get<std::vector<double>>();
    ASSERT_EQ(values.size(), want_values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(values[i], static_cast<float>(want_values[i])) << "element " << i;
      EXPECT_EQ(std::signbit(values[i]), std::signbit(want_values[i])) << "element " << i;
    }
  }
}

TEST(SafetensorsFile, RecognisesIntegerDTypesButRefusesToReadThemAsWeights) {
  const auto file = SafetensorsFile::open(fixtures() / "dtypes.safetensors");
  const SafetensorsTensor& ints = file->get("i32");
  EXPECT_EQ(ints.dtype, SafetensorsDType::kI32);
  EXPECT_EQ(ints.shape, (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(file->get("bool").dtype, SafetensorsDType::kBool);
  EXPECT_EQ(file->get("i64").dtype, SafetensorsDType::kI64);
  std::vector<float> out(12);
  try {
    file->read_rows(ints, 0, 4, out.data());
    ADD_FAILURE() << "read I32 as f32";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("I32"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("'i32'"), std::string::npos) << error.what();
  }
  EXPECT_THROW(file->get("nope"), Error);
}

TEST(SafetensorsFile, F8E4M3DecodesTheSpecialValues) {
  EXPECT_EQ(f8_e4m3_to_float(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(f8_e4m3_to_float(0x80)));
  EXPECT_EQ(f8_e4m3_to_float(0x38), 1.0f);          // exponent 7 = bias
  EXPECT_EQ(f8_e4m3_to_float(0x7e), 448.0f);        // the largest finite value
  EXPECT_EQ(f8_e4m3_to_float(0x01), 0.001953125f);  // smallest subnormal 2^-9
  EXPECT_TRUE(std::isnan(f8_e4m3_to_float(0x7f)));
  EXPECT_TRUE(std::isnan(f8_e4m3_to_float(0xff)));
  EXPECT_EQ(f8_e5m2_to_float(0x3c), 1.0f);
  EXPECT_TRUE(std::isinf(f8_e5m2_to_float(0x7c)));
}

TEST(SafetensorsFile, RowAndColumnRangesEqualSlicesOfTheFullRead) {
  const auto file = SafetensorsFile::open(fixtures() / "dtypes.safetensors");
  for (const char* name : {"f32", "f16", "bf16", "f8_e4m3"}) {
    SCOPED_TRACE(name);
    const SafetensorsTensor& tensor = file->get(name);
    const int64_t rows = tensor.rows(), columns = tensor.columns();
    ASSERT_EQ(rows, 3);
    ASSERT_EQ(columns, 5);
    std::vector<float> full(15);
    file->read_rows(tensor, 0, rows, full.data());
    std::vector<float> part(5);
    file->read_rows(tensor, 1, 2, part.data());
    for (int64_t c = 0; c < columns; ++c) EXPECT_EQ(part[c], full[5 + c]);
    std::vector<float> cols(6);
    file->read_columns(tensor, 2, 4, cols.data());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < 2; ++c) EXPECT_EQ(cols[r * 2 + c], full[r * 5 + 2 + c]);
    }
    EXPECT_THROW(file->read_rows(tensor, 2, 4, part.data()), Error);
    EXPECT_THROW(file->read_rows(tensor, -1, 1, part.data()), Error);
    EXPECT_THROW(file->read_rows(tensor, 2, 1, part.data()), Error);
    EXPECT_THROW(file->read_columns(tensor, 4, 6, cols.data()), Error);
  }
}

TEST(SafetensorsFile, EveryTruncationOfAValidFileIsAnError) {
  const auto bytes = read_bytes(fixtures() / "dtypes.safetensors");
  ASSERT_GT(bytes.size(), 100u);
  EXPECT_NO_THROW(SafetensorsFile::parse(bytes, "whole"));
  for (size_t size = 0; size < bytes.size(); ++size) {
    const std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(size));
    EXPECT_THROW(SafetensorsFile::parse(prefix, "prefix"), Error) << "prefix of " << size << " bytes";
  }
}

TEST(SafetensorsFile, AcceptsMetadataEmptyFilesAndScalars) {
  const auto file = SafetensorsFile::parse(
      image(R"({"__metadata__":{"format":"pt"},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
            R"("e":{"dtype":"BF16","shape":[0,3],"data_offsets":[4,4]}})", 4),
      "ok");
  EXPECT_EQ(file->tensors().size(), 2u);
  EXPECT_EQ(file->get("s").numel(), 1);
  EXPECT_EQ(file->get("e").numel(), 0);
  EXPECT_EQ(SafetensorsFile::parse(image("{}", 0), "empty")->tensors().size(), 0u);
  EXPECT_EQ(SafetensorsFile::parse(image("{}    ", 0), "padded")->tensors().size(), 0u);  // space padding
}

TEST(SafetensorsFile, RejectsLyingHeaders) {
  const std::string ok = R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  expect_rejected(image(ok, 16, ok.size() + 17), {"runs past the end"});
  expect_rejected(image(ok, 16, 200'000'000), {"absurd"});
  expect_rejected(image(ok, 16, ~0ull - 1), {"absurd"});
  expect_rejected(image("[1,2]", 0), {"not an object"});
  expect_rejected(image("{\"t\":", 0), {"not valid JSON"});
  expect_rejected(image(R"({"t":[1]})", 0), {"'t'", "not an object"});
  expect_rejected(image(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", 4), {"'t'", "dtype"});
  expect_rejected(image(R"({"t":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", 4), {"'t'", "Q4"});
  expect_rejected(image(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4), {"'t'", "data_offsets"});
  expect_rejected(image(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4), {"data_offsets"});
  expect_rejected(image(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4), {"'t'", "begin after"});
  expect_rejected(image(R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", 8), {"'t'", "past"});
  expect_rejected(image(R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 12), {"'t'", "needs 16"});
  expect_rejected(image(R"({"t":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]}})", 16), {"'t'", "negative"});
  expect_rejected(image(R"({"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,16]}})", 16), {"'t'", "integers"});
  expect_rejected(image(R"({"t":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,1]}})", 1),
                  {"'t'", "overflows"});
  expect_rejected(image(R"({"t":{"dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})", 0),
                  {"'t'", "overflows"});
  expect_rejected(image(R"({"t":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,1]}})", 1),
                  {"'t'", "overflows"});
  expect_rejected(image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                        R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 6),
                  {"'b'", "overlaps", "'a'"});
  expect_rejected(image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                        R"("b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 4),
                  {"overlaps"});
  expect_rejected(image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", 8), {"gap", "'a'"});
  expect_rejected(image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 6), {"holds 6"});
  expect_rejected(image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                        R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2),
                  {"'a'", "twice"});
  expect_rejected(image(R"({"__metadata__":3})", 0), {"__metadata__"});
  expect_rejected(image(std::string(40, '[') + std::string(40, ']'), 0), {"deeper"});
  expect_rejected(image("{\"t\":" + std::string(40, '[') + std::string(40, ']') + "}", 0), {"deeper"});
}

TEST(SafetensorsFile, OpenNamesAMissingFile) {
  try {
    SafetensorsFile::open("/nonexistent/dir/model.safetensors");
    ADD_FAILURE() << "opened a missing file";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/dir/model.safetensors"), std::string::npos);
  }
}

}  // namespace
}  // namespace tessera::runtime
