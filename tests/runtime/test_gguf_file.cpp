#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>

#include "kernels/base/error.h"
#include "kernels/base/half.h"
#include "runtime/model/gguf_file.h"
#include "tests/runtime/gguf_image_builder.h"
#include "tests/support/error_text.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

using testing::error_of;
using testing::GgufImageBuilder;

std::shared_ptr<const GgufFile> parse(const std::vector<std::byte>& image, std::string name = "test.gguf") {
  return GgufFile::parse(image, std::move(name));
}

// A small image with every metadata type, nested arrays, and two tensors (F32 and F16).
GgufImageBuilder small_builder(uint32_t version = 3, uint32_t alignment = 32) {
  GgufImageBuilder b(version, alignment);
  b.add_string("general.architecture", "llama");
  b.add_u8("t.u8", 200);
  b.add_i8("t.i8", -5);
  b.add_u16("t.u16", 60000);
  b.add_i16("t.i16", -30000);
  b.add_u32("t.u32", 4000000000u);
  b.add_i32("t.i32", -2000000000);
  b.add_f32("t.f32", 0.25f);
  b.add_bool("t.bool", true);
  b.add_u64("t.u64", std::numeric_limits<uint64_t>::max());
  b.add_i64("t.i64", std::numeric_limits<int64_t>::min());
  b.add_f64("t.f64", 1e300);
  b.add_string("t.empty", "");
  b.add_string_array("t.strings", {"a", "", "ccc"});
  b.add_array<float>("t.floats", 6, {1.5f, -2.0f});
  b.add_array<int32_t>("t.ints", 5, {7, -8, 9});
  // array of arrays of uint16: [[1, 2], []]
  std::vector<std::byte> nested;
  GgufImageBuilder::put(nested, uint32_t{9});
  GgufImageBuilder::put(nested, uint64_t{2});
  GgufImageBuilder::put(nested, uint32_t{2});
  GgufImageBuilder::put(nested, uint64_t{2});
  GgufImageBuilder::put(nested, uint16_t{1});
  GgufImageBuilder::put(nested, uint16_t{2});
  GgufImageBuilder::put(nested, uint32_t{2});
  GgufImageBuilder::put(nested, uint64_t{0});
  b.add_raw("t.nested", 9, nested);
  std::vector<float> matrix(3 * 4);
  for (size_t i = 0; i < matrix.size(); ++i) matrix[i] = static_cast<float>(i) * 0.5f - 1.0f;
  b.add_tensor("matrix", {4, 3}, 0, testing::as_bytes_vector(matrix));
  // 16 halves = 32 bytes: the image ends exactly at the end of the last tensor, so every shorter prefix is
  // truncated data.
  std::vector<uint16_t> halves(16, float_to_fp16(0.0f).bits);
  halves[0] = float_to_fp16(1.0f).bits;
  halves[1] = float_to_fp16(-0.5f).bits;
  halves[2] = float_to_fp16(65504.0f).bits;
  b.add_tensor("vector", {16}, 1, testing::as_bytes_vector(halves));
  return b;
}

// The scalar values of small_builder, which scripts/golden/gguf_fuzz_corpus.py writes too (one key per type).
void expect_scalar_metadata(const GgufFile& file) {
  EXPECT_EQ(file.get_string("general.architecture"), "llama");
  EXPECT_EQ(file.get_int("t.u8"), 200);
  EXPECT_EQ(file.get_int("t.i8"), -5);
  EXPECT_EQ(file.get_int("t.u16"), 60000);
  EXPECT_EQ(file.get_int("t.i16"), -30000);
  EXPECT_EQ(file.get_int("t.u32"), 4000000000LL);
  EXPECT_EQ(file.get_int("t.i32"), -2000000000);
  EXPECT_EQ(file.get_float("t.f32"), 0.25);
  EXPECT_EQ(file.get_bool("t.bool"), true);
  EXPECT_EQ(file.get_int("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(file.get_float("t.f64"), 1e300);
}

TEST(GgufFile, ParsesEveryValueTypeAndTensors) {
  for (uint32_t version : {2u, 3u}) {
    for (uint32_t alignment : {32u, 64u, 8u}) {
      const auto image = small_builder(version, alignment).build();
      const auto file = parse(image);
      EXPECT_EQ(file->version(), version);
      EXPECT_EQ(file->alignment(), alignment);
      expect_scalar_metadata(*file);
      EXPECT_EQ(file->get_float("t.u32"), 4e9);  // integers read as numbers too
      EXPECT_EQ(file->get_string("t.empty"), "");
      EXPECT_EQ(file->get_string_array("t.strings"), (std::vector<std::string>{"a", "", "ccc"}));
      EXPECT_EQ(file->get_float_array("t.floats"), (std::vector<double>{1.5, -2.0}));
      EXPECT_EQ(file->get_int_array("t.ints"), (std::vector<int64_t>{7, -8, 9}));
      // uint64 max does not fit int64: the typed getter refuses instead of wrapping.
      EXPECT_FALSE(file->find("t.u64")->as_int().has_value());
      EXPECT_THROW(file->get_int("t.u64"), Error);
      const GgufArray* nested = file->find("t.nested")->as_array();
      ASSERT_NE(nested, nullptr);
      ASSERT_EQ(nested->size(), 2u);
      EXPECT_EQ(file->find("t.nested")->element_type, GgufValue::Type::kArray);
      ASSERT_NE((*nested)[0].as_array(), nullptr);
      EXPECT_EQ((*nested)[0].as_array()->size(), 2u);
      EXPECT_EQ((*(*nested)[0].as_array())[1].as_int(), 2);
      EXPECT_TRUE((*nested)[1].as_array()->empty());

      ASSERT_EQ(file->tensors().size(), 2u);
      const GgufTensorInfo* matrix = file->find_tensor("matrix");
      ASSERT_NE(matrix, nullptr);
      EXPECT_EQ(matrix->rows(), 3);
      EXPECT_EQ(matrix->columns(), 4);
      EXPECT_EQ(matrix->nbytes, 48u);
      std::vector<float> rows(8);
      file->read_rows(*matrix, 1, 3, rows.data());
      for (int i = 0; i < 8; ++i) EXPECT_EQ(rows[i], static_cast<float>(i + 4) * 0.5f - 1.0f);
      std::vector<float> cols(6);
      file->read_columns(*matrix, 1, 3, cols.data());
      for (int r = 0; r < 3; ++r) {
        for (int c = 0; c < 2; ++c) EXPECT_EQ(cols[r * 2 + c], static_cast<float>(r * 4 + c + 1) * 0.5f - 1.0f);
      }
      const GgufTensorInfo* vector = file->find_tensor("vector");
      ASSERT_NE(vector, nullptr);
      EXPECT_EQ(vector->rows(), 1);
      std::vector<float> v(16);
      file->read_rows(*vector, 0, 1, v.data());
      EXPECT_EQ(v[0], 1.0f);
      EXPECT_EQ(v[1], -0.5f);
      EXPECT_EQ(v[2], 65504.0f);
      EXPECT_EQ(v[15], 0.0f);
      EXPECT_EQ(file->find_tensor("absent"), nullptr);
      EXPECT_THROW(file->read_rows(*matrix, 2, 4, rows.data()), Error);
      EXPECT_THROW(file->read_columns(*matrix, 3, 5, rows.data()), Error);
    }
  }
}

TEST(GgufFile, TypedGettersRejectWrongTypes) {
  const auto image = small_builder().build();
  const auto file = parse(image);
  EXPECT_EQ(file->get_string("absent"), std::nullopt);
  EXPECT_EQ(file->get_int("absent"), std::nullopt);
  EXPECT_TRUE(file->get_string_array("absent").empty());
  const std::string message = error_of([&] { (void)file->get_int("general.architecture"); });
  EXPECT_NE(message.find("test.gguf"), std::string::npos) << message;
  EXPECT_NE(message.find("general.architecture"), std::string::npos) << message;
  EXPECT_THROW(file->get_string("t.u32"), Error);
  EXPECT_THROW(file->get_bool("t.u8"), Error);
  EXPECT_THROW(file->get_int("t.f32"), Error);
  EXPECT_THROW(file->get_float("t.strings"), Error);
  EXPECT_THROW(file->get_string_array("t.ints"), Error);
  EXPECT_THROW(file->get_int_array("t.strings"), Error);
  EXPECT_THROW(file->get_float_array("general.architecture"), Error);
}

// Every proper prefix of a valid image is a truncated file: each must be an Error, never a crash or a read
// past the end (ASan builds and the fuzzer check the latter).
TEST(GgufFile, EveryTruncationIsAnError) {
  const auto image = small_builder().build();
  ASSERT_NO_THROW(parse(image));
  const auto file = parse(image);
  const GgufTensorInfo& last = file->tensors().back();
  ASSERT_EQ(file->tensor_bytes(last).data() + last.nbytes, image.data() + image.size());
  for (size_t length = 0; length < image.size(); ++length) {
    // A heap copy of exactly `length` bytes, so that an overread would leave the allocation.
    std::vector<std::byte> prefix(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(length));
    EXPECT_THROW(parse(prefix), Error) << "prefix of " << length << " bytes";
  }
}

TEST(GgufFile, RejectsBadHeaders) {
  auto image = small_builder().build();
  auto corrupt = [&](size_t offset, auto value) {
    auto copy = image;
    std::memcpy(copy.data() + offset, &value, sizeof value);
    return error_of([&] { parse(copy, "bad.gguf"); });
  };
  EXPECT_NE(corrupt(0, uint32_t{0x46554746}).find("not a GGUF file"), std::string::npos);
  EXPECT_NE(corrupt(4, uint32_t{1}).find("version 1"), std::string::npos);
  EXPECT_NE(corrupt(4, uint32_t{4}).find("unsupported GGUF version 4"), std::string::npos);
  EXPECT_NE(corrupt(4, uint32_t{0x03000000}).find("big-endian"), std::string::npos);
  EXPECT_NE(corrupt(8, uint64_t{1} << 60).find("tensor count"), std::string::npos);
  EXPECT_NE(corrupt(16, uint64_t{1} << 60).find("metadata count"), std::string::npos);
  EXPECT_NE(corrupt(16, std::numeric_limits<uint64_t>::max()).find("bad.gguf"), std::string::npos);
  // First key's length: absurd.
  EXPECT_NE(corrupt(24, uint64_t{1} << 62).find("truncated"), std::string::npos);
}

TEST(GgufFile, RejectsBadMetadata) {
  auto bad = [](auto add) {
    GgufImageBuilder b;
    add(b);
    const auto image = b.build();
    return error_of([&] { parse(image, "meta.gguf"); });
  };
  EXPECT_NE(bad([](GgufImageBuilder& b) { b.add_raw("k", 13, {}); }).find("unknown value type 13"), std::string::npos);
  EXPECT_NE(bad([](GgufImageBuilder& b) { b.add_u8("k", 1); b.add_u8("k", 2); }).find("duplicate"), std::string::npos);
  EXPECT_NE(bad([](GgufImageBuilder& b) { b.add_raw("k", 7, {std::byte{2}}); }).find("bool"), std::string::npos);
  EXPECT_NE(bad([](GgufImageBuilder& b) { b.add_u64("general.alignment", 32); }).find("general.alignment"),
            std::string::npos);
  EXPECT_NE(bad([](GgufImageBuilder& b) { b.add_u32("general.alignment", 48); }).find("power of two"),
            std::string::npos);
  EXPECT_NE(bad([](GgufImageBuilder& b) { b.add_u32("general.alignment", 0); }).find("power of two"),
            std::string::npos);
  // An array claiming 2^40 uint32 elements in a tiny file: refused before allocating.
  EXPECT_NE(bad([](GgufImageBuilder& b) {
              std::vector<std::byte> p;
              GgufImageBuilder::put(p, uint32_t{4});
              GgufImageBuilder::put(p, uint64_t{1} << 40);
              b.add_raw("huge", 9, p);
            }).find("'huge' claims"),
            std::string::npos);
  // Arrays nested 100 deep.
  EXPECT_NE(bad([](GgufImageBuilder& b) {
              std::vector<std::byte> p;
              for (int i = 0; i < 100; ++i) {
                GgufImageBuilder::put(p, uint32_t{9});
                GgufImageBuilder::put(p, uint64_t{1});
              }
              b.add_raw("deep", 9, p);
            }).find("nests arrays"),
            std::string::npos);
}

TEST(GgufFile, RejectsBadTensorInfos) {
  const std::vector<std::byte> sixteen_floats(64, std::byte{0});
  auto bad = [&](auto add) {
    GgufImageBuilder b;
    b.add_tensor("ok", {16}, 0, sixteen_floats);
    add(b);
    const auto image = b.build();
    return error_of([&] { parse(image, "tensors.gguf"); });
  };
  auto has = [](const std::string& message, const char* part) {
    return message.find(part) != std::string::npos && message.find("tensors.gguf") != std::string::npos;
  };
  std::string m = bad([&](GgufImageBuilder& b) { b.add_tensor("five", {1, 1, 1, 1, 16}, 0, sixteen_floats); });
  EXPECT_TRUE(has(m, "'five'") && has(m, "5 dimensions")) << m;
  m = bad([&](GgufImageBuilder& b) { b.add_tensor("zero", {16, 0}, 0, {}); });
  EXPECT_TRUE(has(m, "'zero'") && has(m, "dimension 1 = 0")) << m;
  m = bad([&](GgufImageBuilder& b) { b.add_tensor("huge", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, {}); });
  EXPECT_TRUE(has(m, "'huge'") && has(m, "overflow") ) << m;
  m = bad([&](GgufImageBuilder& b) { b.add_tensor("bytes", {uint64_t{1} << 62}, 0, {}); });
  EXPECT_TRUE(has(m, "'bytes'") && has(m, "overflows")) << m;
  m = bad([&](GgufImageBuilder& b) { b.add_tensor("weird", {16}, 99, sixteen_floats); });
  EXPECT_TRUE(has(m, "'weird'") && has(m, "unknown ggml type id 99")) << m;
  m = bad([&](GgufImageBuilder& b) { b.add_tensor("partial", {33}, 2, std::vector<std::byte>(40)); });
  EXPECT_TRUE(has(m, "'partial'") && has(m, "block size 32")) << m;
  m = bad([&](GgufImageBuilder& b) { b.add_tensor("misaligned", {16}, 0, sixteen_floats, 72); });
  EXPECT_TRUE(has(m, "'misaligned'") && has(m, "not aligned")) << m;
  m = bad([&](GgufImageBuilder& b) { b.add_tensor("overlap", {16}, 0, sixteen_floats, 32); });
  EXPECT_TRUE(has(m, "'overlap'") && has(m, "overlaps tensor 'ok'")) << m;
  m = bad([&](GgufImageBuilder& b) { b.add_tensor("ok", {16}, 0, sixteen_floats); });
  EXPECT_TRUE(has(m, "'ok'") && has(m, "listed twice")) << m;
  m = bad([&](GgufImageBuilder& b) { b.add_tensor("far", {16}, 0, {}, 1 << 20); });
  EXPECT_TRUE(has(m, "'far'") && has(m, "past the end")) << m;
}

TEST(GgufFile, ReadsSmolLm2Metadata) {
  const auto path = testing::default_model_path();
  TESSERA_REQUIRE_MODEL(path);
  const auto file = GgufFile::open(path);
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->alignment(), 32u);
  EXPECT_EQ(file->get_string("general.architecture"), "llama");
  EXPECT_EQ(file->get_int("llama.block_count"), 30);
  EXPECT_EQ(file->get_int("llama.embedding_length"), 576);
  EXPECT_EQ(file->get_int("llama.attention.head_count"), 9);
  EXPECT_EQ(file->get_int("llama.attention.head_count_kv"), 3);
  EXPECT_EQ(file->get_int("llama.feed_forward_length"), 1536);
  EXPECT_EQ(file->get_float("llama.rope.freq_base"), 100000.0);
  EXPECT_EQ(file->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(file->get_string_array("tokenizer.ggml.tokens").size(), 49152u);
  EXPECT_EQ(file->get_string_array("tokenizer.ggml.merges").size(), 48900u);
  EXPECT_EQ(file->tensors().size(), 272u);
  const GgufTensorInfo* embedding = file->find_tensor("token_embd.weight");
  ASSERT_NE(embedding, nullptr);
  EXPECT_EQ(embedding->type, GgmlType::kQ8_0);
  EXPECT_EQ(embedding->dims, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(embedding->nbytes, 49152u * 576 / 32 * 34);
  const GgufTensorInfo* q = file->find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, GgmlType::kQ4_1);
  EXPECT_EQ(file->find_tensor("output.weight"), nullptr);  // tied embeddings

  // Columns read block-wise agree with the same columns of whole rows, across block boundaries.
  const GgufTensorInfo* down = file->find_tensor("blk.3.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  const int64_t rows = down->rows(), cols = down->columns();
  std::vector<float> all(static_cast<size_t>(rows * cols));
  file->read_rows(*down, 0, rows, all.data());
  const int64_t c0 = 45, c1 = 301;
  std::vector<float> part(static_cast<size_t>(rows * (c1 - c0)));
  file->read_columns(*down, c0, c1, part.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = c0; c < c1; ++c) ASSERT_EQ(part[r * (c1 - c0) + c - c0], all[r * cols + c]);
  }
  std::vector<float> some(static_cast<size_t>(5 * cols));
  file->read_rows(*down, 100, 105, some.data());
  for (size_t i = 0; i < some.size(); ++i) ASSERT_EQ(some[i], all[100 * cols + i]);
}

// Images written by gguf-py's GGUFWriter (scripts/golden/gguf_fuzz_corpus.py, also the fuzzer's seeds): an
// independent writer agrees with our reader on every value type, alignment and version.
TEST(GgufFile, ReadsImagesWrittenByGgufPy) {
  const std::filesystem::path corpus = testing::source_dir() / "tests/fuzz/corpus/fuzz_gguf";
  for (const char* name : {"metadata_v3.gguf", "metadata_v2.gguf"}) {
    SCOPED_TRACE(name);
    const auto file = GgufFile::open(corpus / name);
    const bool v2 = std::string(name) == "metadata_v2.gguf";
    EXPECT_EQ(file->version(), v2 ? 2u : 3u);
    EXPECT_EQ(file->alignment(), v2 ? 64u : 32u);
    expect_scalar_metadata(*file);
    EXPECT_EQ(std::get<uint64_t>(file->find("t.u64")->value), std::numeric_limits<uint64_t>::max());
    EXPECT_EQ(file->get_string("t.str"), "h\xC3\xA9llo");
    EXPECT_EQ(file->get_string_array("t.strs"), (std::vector<std::string>{"a", "", "ccc"}));
    EXPECT_EQ(file->get_float_array("t.floats"), (std::vector<double>{1.5, -2.0}));
    const GgufArray* nested = file->find("t.nested")->as_array();
    ASSERT_NE(nested, nullptr);
    ASSERT_EQ(nested->size(), 2u);
    ASSERT_NE((*nested)[1].as_array(), nullptr);
    EXPECT_EQ((*(*nested)[1].as_array())[0].as_int(), 3);
    const GgufTensorInfo* f32 = file->find_tensor("f32");
    ASSERT_NE(f32, nullptr);
    EXPECT_EQ(f32->dims, (std::vector<int64_t>{4, 2}));
    std::vector<float> values(8);
    file->read_rows(*f32, 0, 2, values.data());
    EXPECT_EQ(values, (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
    ASSERT_EQ(file->find_tensor("bf16")->dims, (std::vector<int64_t>{4}));
    std::vector<float> halves(4), bf16s(4);
    file->read_rows(*file->find_tensor("f16"), 0, 1, halves.data());
    EXPECT_EQ(halves, (std::vector<float>{1.0f, -0.5f, 65504.0f, 0.0f}));
    file->read_rows(*file->find_tensor("bf16"), 0, 1, bf16s.data());
    EXPECT_EQ(bf16s, (std::vector<float>{1.0f, -2.0f, 3.5f, 0.0f}));
  }
  const auto quants = GgufFile::open(corpus / "quant_types.gguf");
  EXPECT_EQ(quants->tensors().size(), 10u);
  for (const GgufTensorInfo& t : quants->tensors()) {
    std::vector<float> row(static_cast<size_t>(t.columns()));
    EXPECT_NO_THROW(quants->read_rows(t, 0, 1, row.data())) << t.name;
  }
}

TEST(GgufFile, OpenReportsMissingFile) {
  const std::string message = error_of([] { GgufFile::open("/nonexistent/dir/model.gguf"); });
  EXPECT_NE(message.find("/nonexistent/dir/model.gguf"), std::string::npos) << message;
}

}  // namespace
}  // namespace tessera::runtime
