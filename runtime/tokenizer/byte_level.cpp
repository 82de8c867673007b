#include "runtime/tokenizer/byte_level.h"

#include <array>

#include "runtime/tokenizer/utf8.h"

namespace tessera::runtime {

namespace {

struct ByteTables {
  std::array<char32_t, 256> to_unicode{};
  std::array<int16_t, 324> to_byte{};  // every mapped code point is < 0x100 + 68

  ByteTables() {
    to_byte.fill(-1);
    // Bytes that are printable in Latin-1 keep their code point; the others take U+0100 + n in byte order.
    const auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++);
      to_unicode[static_cast<size_t>(b)] = cp;
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& tables() {
  static const ByteTables instance;
  return instance;
}

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return tables().to_unicode[b]; }

std::optional<uint8_t> unicode_to_byte(char32_t cp) {
  if (cp >= tables().to_byte.size()) return std::nullopt;
  const int16_t b = tables().to_byte[cp];
  if (b < 0) return std::nullopt;
  return static_cast<uint8_t>(b);
}

std::string byte_level_decode(std::string_view spelled) {
  std::string out;
  out.reserve(spelled.size());
  size_t pos = 0;
  while (pos < spelled.size()) {
    const Utf8Step step = utf8_step(spelled.substr(pos));
    const std::optional<uint8_t> b =
        step.kind == Utf8Step::Kind::kValid ? unicode_to_byte(step.code_point) : std::nullopt;
    if (b) {
      out.push_back(static_cast<char>(*b));
    } else {
      out.append(spelled.substr(pos, step.length));
    }
    pos += step.length;
  }
  return out;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) utf8_append(out, byte_to_unicode(static_cast<uint8_t>(c)));
  return out;
}

}  // namespace tessera::runtime
