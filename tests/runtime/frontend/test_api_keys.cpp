// The API key file: its line format, each kind of bad line named by file and line (never showing the key), the
// constant-time comparison and the Bearer header.
#include <gtest/gtest.h>

#include <string>

#include "kernels/base/error.h"
#include "runtime/frontend/api_keys.h"

namespace tessera::frontend {
namespace {

const std::string kKeyA = "sk-aaaaaaaaaaaaaaaaaaaaaaaa";
const std::string kKeyB = "sk-bbbbbbbbbbbbbbbbbbbbbbbb";
const std::string kKeyC = "0123456789abcdef";  // exactly the minimum length

// The message parse throws for `text` (empty when it does not throw).
std::string error_of(const std::string& text) {
  try {
    ApiKeys::parse(text, "keys.txt");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ApiKeys, ParsesNamesKeysOptionsCommentsAndBlankLines) {
  const ApiKeys keys = ApiKeys::parse("# team keys\n"
                                      "\n"
                                      "alice " + kKeyA + "\n"
                                      "   \t\n"
                                      "bob\t" + kKeyB + "  rpm=10 tpm=2000 # batch jobs\r\n"
                                      + kKeyC + " tpm=0\n",
                                      "keys.txt");
  ASSERT_EQ(keys.keys().size(), 3u);
  EXPECT_EQ(keys.keys()[0].name, "alice");
  EXPECT_EQ(keys.keys()[0].key, kKeyA);
  EXPECT_FALSE(keys.keys()[0].requests_per_minute);
  EXPECT_FALSE(keys.keys()[0].tokens_per_minute);
  EXPECT_EQ(keys.keys()[1].name, "bob");
  EXPECT_EQ(keys.keys()[1].key, kKeyB);  // the \r of a Windows line end is not part of it
  EXPECT_EQ(keys.keys()[1].requests_per_minute, 10);
  EXPECT_EQ(keys.keys()[1].tokens_per_minute, 2000);
  EXPECT_EQ(keys.keys()[2].name, "line-6");  // a key alone is named after its line
  EXPECT_EQ(keys.keys()[2].key, kKeyC);
  EXPECT_EQ(keys.keys()[2].tokens_per_minute, 0);  // 0: this key has no token limit
}

TEST(ApiKeys, FindsTheMatchingKeyOnly) {
  const ApiKeys keys = ApiKeys::parse("alice " + kKeyA + "\nbob " + kKeyB + "\n", "keys.txt");
  ASSERT_NE(keys.find(kKeyB), nullptr);
  EXPECT_EQ(keys.find(kKeyB)->name, "bob");
  EXPECT_EQ(keys.find(kKeyA)->name, "alice");
  EXPECT_EQ(keys.find(kKeyA.substr(0, kKeyA.size() - 1)), nullptr);  // a prefix
  EXPECT_EQ(keys.find(kKeyA + "a"), nullptr);                         // longer
  EXPECT_EQ(keys.find(""), nullptr);
  EXPECT_EQ(keys.find("alice"), nullptr);  // a name is not a key
}

TEST(ApiKeys, EmptyFileIsAnError) {
  EXPECT_NE(error_of("").find("keys.txt: holds no key"), std::string::npos) << error_of("");
  EXPECT_NE(error_of("# only a comment\n\n").find("holds no key"), std::string::npos);
}

TEST(ApiKeys, DuplicateKeyNamesBothLinesButNotTheKey) {
  const std::string e = error_of("alice " + kKeyA + "\n# c\nbob " + kKeyA + "\n");
  EXPECT_NE(e.find("keys.txt:3: the same key as line 1"), std::string::npos) << e;
  EXPECT_EQ(e.find(kKeyA), std::string::npos) << "the key leaked into the message: " << e;
}

TEST(ApiKeys, DuplicateNameIsAnError) {
  const std::string e = error_of("alice " + kKeyA + "\nalice " + kKeyB + "\n");
  EXPECT_NE(e.find("keys.txt:2: the name 'alice' is already used on line 1"), std::string::npos) << e;
}

TEST(ApiKeys, BadLinesNameFileAndLine) {
  const struct {
    std::string text;
    std::string expected;
  } cases[] = {
      {"alice bob " + kKeyA + "\n", "keys.txt:1: 3 fields before the options"},
      {"alice short\n", "keys.txt:1: the key has 5 characters"},
      {"alice " + std::string(300, 'k') + "\n", "keys.txt:1: the key has 300 characters"},
      {"al/ice " + kKeyA + "\n", "keys.txt:1: the name 'al/ice' is not"},
      {"\nalice " + kKeyA + " rpm=ten\n", "keys.txt:2: 'rpm=ten': the limit must be an integer >= 0"},
      {"alice " + kKeyA + " rpm=-1\n", "keys.txt:1: 'rpm=-1'"},
      {"alice " + kKeyA + " rpm=\n", "keys.txt:1: 'rpm='"},
      {"alice " + kKeyA + " rpm=1 rpm=2\n", "keys.txt:1: 'rpm' is given twice"},
      {"alice " + kKeyA + " tpm=5 extra\n", "keys.txt:1: 'extra' after the options"},
      {"rpm=5\n", "keys.txt:1: no key before the options"},
      {"alice sk-\x01xxxxxxxxxxxxxxxxxxx\n", "keys.txt:1: the key holds a character that is not printable ASCII"},
  };
  for (const auto& c : cases) {
    const std::string e = error_of(c.text);
    EXPECT_NE(e.find(c.expected), std::string::npos) << "for " << c.text << " got: " << e;
  }
  // A key that is too short is not shown either.
  EXPECT_EQ(error_of("alice short\n").find("short"), std::string::npos);
}

TEST(ApiKeys, LoadNamesAFileThatCannotBeRead) {
  try {
    ApiKeys::load("/nonexistent/keys.txt");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/keys.txt: cannot be read"), std::string::npos) << e.what();
  }
}

TEST(ConstantTimeEqual, IsEqualityForEveryLengthAndPosition) {
  EXPECT_TRUE(constant_time_equal("abcdef", "abcdef"));
  EXPECT_FALSE(constant_time_equal("abcdeX", "abcdef"));  // last byte
  EXPECT_FALSE(constant_time_equal("Xbcdef", "abcdef"));  // first byte
  EXPECT_FALSE(constant_time_equal("abc", "abcdef"));     // a prefix of the secret
  EXPECT_FALSE(constant_time_equal("abcdefabc", "abcdef"));  // the secret repeated (the loop wraps around b)
  EXPECT_FALSE(constant_time_equal("abcdefabcdef", "abcdef"));
  EXPECT_FALSE(constant_time_equal("", "abcdef"));
  EXPECT_FALSE(constant_time_equal("", ""));  // no stored key is empty: never a match
  EXPECT_FALSE(constant_time_equal("a", ""));
  std::string a(64, 'x'), b(64, 'x');
  EXPECT_TRUE(constant_time_equal(a, b));
  for (size_t i = 0; i < a.size(); ++i) {
    std::string changed = a;
    changed[i] = static_cast<char>(changed[i] ^ 0x01);
    EXPECT_FALSE(constant_time_equal(changed, b)) << "byte " << i;
  }
  const std::string with_nul("ab\0cd", 5);
  EXPECT_TRUE(constant_time_equal(with_nul, with_nul));
  EXPECT_FALSE(constant_time_equal(std::string("ab\0ce", 5), with_nul));
}

TEST(BearerToken, TakesTheKeyOfABearerHeaderOnly) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer   abc  "), "abc");
  EXPECT_EQ(bearer_token("BEARER\tabc"), "abc");
  EXPECT_FALSE(bearer_token("Basic YWxhZGRpbjpvcGVuc2VzYW1l"));
  EXPECT_FALSE(bearer_token("Bearer"));
  EXPECT_FALSE(bearer_token("Bearer   "));
  EXPECT_FALSE(bearer_token("Bearerabc"));
  EXPECT_FALSE(bearer_token(""));
}

}  // namespace
}  // namespace tessera::frontend
