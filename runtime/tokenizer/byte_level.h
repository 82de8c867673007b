#pragma once
// GPT-2's reversible byte <-> unicode mapping: byte-level BPE vocabularies spell every byte as a printable
// character (printable Latin-1 bytes as themselves, the rest shifted to U+0100..), so a token's text in the
// vocabulary is the mapped form of its bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tessera::runtime {

// The character byte `b` is spelled as.
char32_t byte_to_unicode(uint8_t b);
// The byte a character stands for, or nullopt when it is not part of the mapping.
std::optional<uint8_t> unicode_to_byte(char32_t code_point);

// Spelled form -> bytes. A character outside the mapping is kept as its own UTF-8 (tokens such as
// "<|im_start|>" are plain ASCII and map to themselves either way).
std::string byte_level_decode(std::string_view spelled);
// Bytes -> spelled form (what the vocabulary stores).
std::string byte_level_encode(std::string_view bytes);

}  // namespace tessera::runtime
