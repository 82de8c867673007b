// SHA-256: the FIPS 180-4 / NIST example vectors on both compression functions (the portable one, and SHA-NI where
// this CPU has it: skipped with a note elsewhere), every length around the block and padding boundaries fed in
// every split, and sha256_file on a file against Python's hashlib digest.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "runtime/model/sha256.h"

namespace tessera::runtime {
namespace {

std::vector<Sha256Backend> backends() {
  std::vector<Sha256Backend> out = {Sha256Backend::kPortable};
  if (sha256_sha_ni_supported()) out.push_back(Sha256Backend::kShaNi);
  return out;
}

std::string digest(Sha256Backend backend, const std::string& text) {
  Sha256 hash(backend);
  hash.update(text.data(), text.size());
  return hash.hex_digest();
}

TEST(Sha256, NistVectorsOnEveryBackend) {
  const std::string million(1000000, 'a');
  for (const Sha256Backend backend : backends()) {
    SCOPED_TRACE(sha256_backend_name(backend));
    EXPECT_EQ(digest(backend, ""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(digest(backend, "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(digest(backend, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(digest(backend, "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
                              "lmnopqrsmnopqrstnopqrstu"),
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    EXPECT_EQ(digest(backend, million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
}

TEST(Sha256, ReportsWhichBackendItUses) {
  std::printf("SHA-NI on this CPU: %s; default backend: %s\n", sha256_sha_ni_supported() ? "yes" : "no",
              sha256_backend_name(sha256_best_backend()));
  EXPECT_EQ(Sha256().backend(), sha256_best_backend());
  if (!sha256_sha_ni_supported()) {
    EXPECT_THROW(Sha256{Sha256Backend::kShaNi}, Error);
    GTEST_SKIP() << "no SHA extensions on this CPU: only the portable path is tested";
  }
}

// Every length 0..300 (the padding takes one or two blocks around 55/56/64 bytes), fed whole and split at every
// point: the backends agree with each other, and whole == split.
TEST(Sha256, BackendsAgreeOnEveryLengthAndSplit) {
  std::string data(300, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131 + 7) & 0xff);
  for (size_t length = 0; length <= data.size(); ++length) {
    const std::string text = data.substr(0, length);
    const std::string reference = digest(Sha256Backend::kPortable, text);
    for (const Sha256Backend backend : backends()) {
      ASSERT_EQ(digest(backend, text), reference) << sha256_backend_name(backend) << " length " << length;
      for (size_t split = 0; split <= length; split += (length > 80 ? 17 : 1)) {
        Sha256 hash(backend);
        hash.update(text.data(), split);
        hash.update(text.data() + split, length - split);
        ASSERT_EQ(hash.hex_digest(), reference) << sha256_backend_name(backend) << " length " << length
                                                << " split " << split;
      }
    }
  }
}

TEST(Sha256, FileMatchesHashlib) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / "tessera_sha256_test.bin";
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 1000; ++i) out.put(static_cast<char>(i & 255));
  }
  // python3 -c "import hashlib; print(hashlib.sha256(bytes(i & 255 for i in range(1000))).hexdigest())"
  EXPECT_EQ(sha256_file(path), "a8af099bf2e878609558dbf69d8f88f4a31040a8cf84b549a0cfa912f12ffc3f");
  std::filesystem::remove(path);
  EXPECT_THROW(sha256_file(path), Error);
}

}  // namespace
}  // namespace tessera::runtime
