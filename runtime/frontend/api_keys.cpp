#include "runtime/frontend/api_keys.h"

#include <charconv>
#include <fstream>
#include <map>
#include <sstream>

#include "kernels/base/error.h"

namespace tessera::frontend {
namespace {

constexpr size_t kMinKeyLength = 16;  // shorter keys can be guessed
constexpr size_t kMaxKeyLength = 256;
constexpr size_t kMaxNameLength = 64;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    const size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_option(std::string_view field) { return field.starts_with("rpm=") || field.starts_with("tpm="); }

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (b.empty()) return false;  // no stored key is empty (parse refuses it); never match one
  // Every byte of a is compared with a byte of b (b repeated when a is longer), so the loop runs a.size() times
  // whatever b is; the differences are OR-ed, with the lengths' difference, and looked at only at the end.
  size_t diff = a.size() ^ b.size();
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<size_t>(static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i % b.size()]));
  }
  // The volatile read keeps the compiler from turning the loop into an early-exit comparison.
  volatile size_t result = diff;
  return result == 0;
}

std::optional<std::string_view> bearer_token(std::string_view header) {
  while (!header.empty() && is_space(header.front())) header.remove_prefix(1);
  while (!header.empty() && is_space(header.back())) header.remove_suffix(1);
  constexpr std::string_view scheme = "bearer";
  if (header.size() <= scheme.size() || !is_space(header[scheme.size()])) return std::nullopt;
  for (size_t i = 0; i < scheme.size(); ++i) {
    const char c = header[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != scheme[i]) return std::nullopt;
  }
  header.remove_prefix(scheme.size());
  while (!header.empty() && is_space(header.front())) header.remove_prefix(1);
  if (header.empty()) return std::nullopt;
  return header;
}

ApiKeys ApiKeys::load(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  TESSERA_CHECK(in.good(), "API key file ", file, ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), file);
}

ApiKeys ApiKeys::parse(std::string_view text, const std::string& file) {
  ApiKeys out;
  std::map<std::string, int, std::less<>> key_lines, name_lines;
  int line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    const auto where = [&] { return concat("API key file ", file, ":", line_number, ": "); };
    std::vector<std::string_view> fields = fields_of(line);
    // A field starting with # starts a comment, to the end of the line (so no key starts with #).
    for (size_t i = 0; i < fields.size(); ++i) {
      if (fields[i].starts_with("#")) {
        fields.resize(i);
        break;
      }
    }
    if (fields.empty()) continue;
    size_t positional = 0;
    while (positional < fields.size() && !is_option(fields[positional])) ++positional;
    TESSERA_CHECK(positional >= 1, where(), "no key before the options (expected: [NAME] KEY [rpm=N] [tpm=N])");
    TESSERA_CHECK(positional <= 2, where(), positional, " fields before the options, expected 1 (KEY) or 2 (NAME KEY)");
    ApiKey entry;
    entry.key = std::string(fields[positional - 1]);
    entry.name = positional == 2 ? std::string(fields[0]) : concat("line-", line_number);
    TESSERA_CHECK(valid_name(entry.name), where(), "the name '", entry.name, "' is not 1-", kMaxNameLength,
                  " characters of A-Z a-z 0-9 . _ -");
    // The key itself is never part of a message: the line number says which one.
    TESSERA_CHECK(entry.key.size() >= kMinKeyLength && entry.key.size() <= kMaxKeyLength, where(), "the key has ",
                  entry.key.size(), " characters; a key has ", kMinKeyLength, " to ", kMaxKeyLength);
    for (const char c : entry.key) {
      TESSERA_CHECK(c >= 0x21 && c <= 0x7e, where(), "the key holds a character that is not printable ASCII");
    }
    for (size_t i = positional; i < fields.size(); ++i) {
      const std::string_view option = fields[i];
      TESSERA_CHECK(is_option(option), where(), "'", option, "' after the options: expected rpm=N or tpm=N");
      const std::string_view digits = option.substr(4);
      int64_t value = -1;
      const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
      TESSERA_CHECK(ec == std::errc() && ptr == digits.data() + digits.size() && !digits.empty() && value >= 0, where(),
                    "'", option, "': the limit must be an integer >= 0 (0: no limit)");
      std::optional<int64_t>& slot = option.starts_with("rpm=") ? entry.requests_per_minute : entry.tokens_per_minute;
      TESSERA_CHECK(!slot, where(), "'", option.substr(0, 3), "' is given twice");
      slot = value;
    }
    if (const auto it = key_lines.find(entry.key); it != key_lines.end()) {
      fail(where(), "the same key as line ", it->second, " (each key once)");
    }
    if (const auto it = name_lines.find(entry.name); it != name_lines.end()) {
      fail(where(), "the name '", entry.name, "' is already used on line ", it->second, " (names are unique)");
    }
    key_lines.emplace(entry.key, line_number);
    name_lines.emplace(entry.name, line_number);
    out.keys_.push_back(std::move(entry));
  }
  TESSERA_CHECK(!out.keys_.empty(), "API key file ", file, ": holds no key (expected lines: [NAME] KEY [rpm=N] [tpm=N])");
  return out;
}

const ApiKey* ApiKeys::find(std::string_view presented) const {
  const ApiKey* found = nullptr;
  for (const ApiKey& k : keys_) {
    // Every key is compared, also after a match: the time is the same for any key or none.
    const bool equal = constant_time_equal(presented, k.key);
    if (equal) found = &k;
  }
  return found;
}

}  // namespace tessera::frontend
