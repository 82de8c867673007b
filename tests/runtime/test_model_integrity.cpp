// --verify-sha256 (runtime/model/model_integrity.h): sha256sum manifests parsed (good, malformed, empty, escaped
// names), names resolved relative to the manifest or by basename, and a model verified: a correct manifest passes,
// a wrong hash, an unlisted or missing file fail with one message naming the file and both hashes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include "kernels/base/error.h"
#include "runtime/model/model_integrity.h"
#include "runtime/model/sha256.h"
#include "tests/support/error_text.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

constexpr const char* kShard1 = "4e10450ee50a21f3c56cd5d8bc5f5f1cb5016bb7edffbe405ea6461bed8bf8b4";
constexpr const char* kShard2 = "d010a7099628f648a30deb673146076782dbfa4b75f004fb1666560596d505db";
constexpr const char* kConfig = "9e2b2696ac4ae158d5a4eee882046f8b6d55b0572f30d6c10c1b91d7db205d47";
const std::string kZeros(64, '0');

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// A scratch copy of the sharded tiny Llama (two shards + index + config), removed afterwards.
class ModelIntegrity : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("tessera_integrity_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    model_ = root_ / "model";
    fs::copy(testing::fixture("tiny-models/tiny-llama-gqa-sharded"), model_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string shard_lines() const {
    return std::string(kShard1) + "  model-00001-of-00002.safetensors\n" + kShard2 +
           "  model-00002-of-00002.safetensors\n";
  }

  fs::path root_;
  fs::path model_;
};

TEST(Sha256Manifest, ParsesWhatSha256sumWrites) {
  const std::string text = std::string("# made by sha256sum\n\n") + kShard1 + "  a.safetensors\n" + kShard2 +
                           " *bin/b.safetensors\r\n" + "\\" + kConfig + "  c\\\\d\\nname\n" +
                           "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789  e f\n";
  const Sha256Expectation m = parse_sha256_manifest(text, "/m/model.sha256", "/m");
  ASSERT_EQ(m.entries.size(), 4u);
  EXPECT_EQ(m.entries[0].sha256, kShard1);
  EXPECT_EQ(m.entries[0].name, "a.safetensors");
  EXPECT_EQ(m.entries[0].line, 3);
  EXPECT_EQ(m.entries[1].name, "bin/b.safetensors");
  EXPECT_EQ(m.entries[2].name, "c\\d\nname");
  EXPECT_EQ(m.entries[3].sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  EXPECT_EQ(m.entries[3].name, "e f");
  EXPECT_FALSE(m.single_sha256.has_value());
}

TEST(Sha256Manifest, RejectsMalformedLinesNamingThem) {
  const std::string good = std::string(kShard1) + "  a.safetensors\n";
  for (const std::string& bad : {std::string(kShard1) + " a.safetensors",               // one space
                                std::string(kShard1).substr(1) + "  a.safetensors",   // 63 digits
                                std::string(kShard1) + "x  a.safetensors",            // 65 characters
                                std::string("SHA256 (a.safetensors) = ") + kShard1,   // BSD --tag style
                                std::string(kShard1) + "  ",                          // no name
                                std::string(63, 'f') + "g  a.safetensors",            // not hex
                                "\\" + std::string(kShard1) + "  a\\q"}) {            // bad escape
    SCOPED_TRACE(bad);
    const std::string message = error_of([&] { parse_sha256_manifest(good + bad + "\n", "m.sha256", "/"); });
    EXPECT_NE(message.find("m.sha256:2:"), std::string::npos) << message;
  }
  EXPECT_NE(error_of([] { parse_sha256_manifest("# nothing\n\n", "m.sha256", "/"); }).find("no sha256sum lines"),
            std::string::npos);
}

TEST(Sha256Manifest, ArgumentIsAHashOrAFile) {
  const Sha256Expectation hash = load_sha256_expectation(std::string(kShard1));
  ASSERT_TRUE(hash.single_sha256.has_value());
  EXPECT_EQ(*hash.single_sha256, kShard1);
  EXPECT_TRUE(is_sha256_hex(kShard1));
  EXPECT_FALSE(is_sha256_hex(std::string(kShard1) + "0"));
  const std::string message = error_of([] { load_sha256_expectation("/nonexistent/model.sha256"); });
  EXPECT_NE(message.find("neither a 64-hex SHA-256 nor a manifest file"), std::string::npos) << message;
}

TEST_F(ModelIntegrity, NamesResolveRelativeToTheManifestThenByBasename) {
  write(root_ / "all.sha256", std::string(kShard1) + "  model/model-00001-of-00002.safetensors\n" + kZeros +
                                  "  elsewhere/model-00001-of-00002.safetensors\n" + kShard2 +
                                  "  /abs/model-00002-of-00002.safetensors\n");
  const Sha256Expectation m = load_sha256_expectation((root_ / "all.sha256").string());
  // The relative path wins over a same-named entry elsewhere; a unique basename matches anywhere.
  EXPECT_EQ(expected_sha256(m, model_ / "model-00001-of-00002.safetensors"), kShard1);
  EXPECT_EQ(expected_sha256(m, model_ / "model-00002-of-00002.safetensors"), kShard2);
  EXPECT_EQ(expected_sha256(m, model_ / "config.json"), std::nullopt);
  // Two different hashes for one basename, neither at the file's path: ambiguous.
  const std::string message = error_of([&] { expected_sha256(m, root_ / "x/model-00001-of-00002.safetensors"); });
  EXPECT_NE(message.find("twice with different hashes"), std::string::npos) << message;
}

TEST_F(ModelIntegrity, WeightFilesAreWhatTheModelMaps) {
  EXPECT_EQ(model_weight_files(model_), (std::vector<fs::path>{model_ / "model-00001-of-00002.safetensors",
                                                               model_ / "model-00002-of-00002.safetensors"}));
  const fs::path single = testing::fixture("tiny-models/tiny-llama-gqa");
  EXPECT_EQ(model_weight_files(single), std::vector<fs::path>{single / "model.safetensors"});
  write(root_ / "m.gguf", "not parsed here");
  EXPECT_EQ(model_weight_files(root_ / "m.gguf"), std::vector<fs::path>{root_ / "m.gguf"});
  EXPECT_TRUE(model_weight_files("dummy:tiny").empty());
  EXPECT_THROW(model_weight_files(root_ / "missing.gguf"), Error);
}

TEST_F(ModelIntegrity, CorrectManifestInTheModelDirectoryPasses) {
  write(model_ / "model.sha256", shard_lines() + kConfig + "  config.json\n");
  const Sha256Verification v = verify_model_sha256(model_, load_sha256_expectation((model_ / "model.sha256").string()), 2);
  EXPECT_EQ(v.files, 3u);  // both shards and the listed config.json
  EXPECT_EQ(v.threads, 2);
  EXPECT_GT(v.bytes, 0u);
  EXPECT_NE(v.summary().find("3 files"), std::string::npos) << v.summary();
}

TEST_F(ModelIntegrity, ManifestElsewhereMatchesByBasename) {
  write(root_ / "model.sha256", shard_lines());
  EXPECT_EQ(verify_model_sha256(model_, load_sha256_expectation((root_ / "model.sha256").string()), 1).files, 2u);
}

TEST_F(ModelIntegrity, WrongHashNamesTheFileAndBothHashes) {
  write(root_ / "model.sha256", std::string(kShard1) + "  model-00001-of-00002.safetensors\n" + kZeros +
                                    "  model-00002-of-00002.safetensors\n");
  const std::string message = error_of(
      [&] { verify_model_sha256(model_, load_sha256_expectation((root_ / "model.sha256").string()), 2); });
  EXPECT_NE(message.find("model integrity check failed"), std::string::npos) << message;
  EXPECT_NE(message.find("model-00002-of-00002.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("expected sha256 " + kZeros), std::string::npos) << message;
  EXPECT_NE(message.find(std::string("got ") + kShard2), std::string::npos) << message;
  EXPECT_EQ(message.find("model-00001"), std::string::npos) << "only the failing file: " << message;
}

TEST_F(ModelIntegrity, BackgroundVerificationGivesTheSameResultOrError) {
  write(root_ / "model.sha256", shard_lines());
  std::future<Sha256Verification> good =
      start_model_sha256_verification(model_, load_sha256_expectation((root_ / "model.sha256").string()), 2);
  const Sha256Verification v = good.get();
  EXPECT_EQ(v.files, 2u);
  EXPECT_GT(v.bytes, 0u);

  write(root_ / "wrong.sha256", std::string(kShard1) + "  model-00001-of-00002.safetensors\n" + kZeros +
                                    "  model-00002-of-00002.safetensors\n");
  std::future<Sha256Verification> bad =
      start_model_sha256_verification(model_, load_sha256_expectation((root_ / "wrong.sha256").string()), 1);
  const std::string message = error_of([&] { bad.get(); });
  EXPECT_NE(message.find("model-00002-of-00002.safetensors: expected sha256 " + kZeros), std::string::npos)
      << message;
  // Dropped without get(): the destructor waits for the thread, which reads only its own copies.
  { auto dropped = start_model_sha256_verification(model_, load_sha256_expectation(kShard1), 1); }
}

TEST_F(ModelIntegrity, ModifiedFileFails) {
  write(root_ / "model.sha256", shard_lines());
  {
    std::fstream f(model_ / "model-00001-of-00002.safetensors", std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(-1, std::ios::end);
    f.put('\x5a');
  }
  const std::string message = error_of(
      [&] { verify_model_sha256(model_, load_sha256_expectation((root_ / "model.sha256").string()), 2); });
  EXPECT_NE(message.find("model-00001-of-00002.safetensors: expected sha256 " + std::string(kShard1)),
            std::string::npos) << message;
}

TEST_F(ModelIntegrity, UnlistedOrMissingFileFails) {
  write(root_ / "one.sha256", std::string(kShard1) + "  model-00001-of-00002.safetensors\n");
  std::string message = error_of(
      [&] { verify_model_sha256(model_, load_sha256_expectation((root_ / "one.sha256").string()), 1); });
  EXPECT_NE(message.find("model-00002-of-00002.safetensors is not in " + (root_ / "one.sha256").string()),
            std::string::npos) << message;
  write(model_ / "model.sha256", shard_lines() + kConfig + "  tokenizer.json\n");
  fs::remove(model_ / "model-00002-of-00002.safetensors");
  message = error_of([&] { verify_model_sha256(model_, load_sha256_expectation((model_ / "model.sha256").string()), 1); });
  EXPECT_NE(message.find("model-00002-of-00002.safetensors is missing"), std::string::npos) << message;
}

TEST_F(ModelIntegrity, SingleHashIsForSingleFileModels) {
  std::string message = error_of([&] { verify_model_sha256(model_, load_sha256_expectation(kShard1), 1); });
  EXPECT_NE(message.find("a single hash checks a single-file model"), std::string::npos) << message;
  const fs::path file = model_ / "model-00001-of-00002.safetensors";
  const fs::path single = root_ / "single";
  fs::create_directories(single);
  fs::copy_file(file, single / "model.safetensors");
  EXPECT_EQ(verify_model_sha256(single, load_sha256_expectation(kShard1), 1).files, 1u);
  message = error_of([&] { verify_model_sha256(single, load_sha256_expectation(kZeros), 1); });
  EXPECT_NE(message.find("model.safetensors: expected sha256 " + kZeros + ", got " + kShard1 + " (--verify-sha256)"),
            std::string::npos) << message;
}

}  // namespace
}  // namespace tessera::runtime
