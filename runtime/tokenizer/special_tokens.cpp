#include "runtime/tokenizer/special_tokens.h"

#include <algorithm>

namespace tessera::runtime {

void SpecialTokenMatcher::add(std::string text, int32_t id) {
  if (text.empty()) return;
  auto& list = by_first_byte_[static_cast<uint8_t>(text[0])];
  if (std::any_of(list.begin(), list.end(), [&](const Entry& e) { return e.text == text; })) return;
  list.push_back(Entry{std::move(text), id});
  std::stable_sort(list.begin(), list.end(),
                   [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
  ++count_;
}

void SpecialTokenMatcher::split(std::string_view text, std::vector<Fragment>& fragments) const {
  size_t raw_begin = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const auto& list = by_first_byte_[static_cast<uint8_t>(text[pos])];
    const Entry* hit = nullptr;
    for (const Entry& entry : list) {
      if (text.size() - pos >= entry.text.size() && text.compare(pos, entry.text.size(), entry.text) == 0) {
        hit = &entry;
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    if (pos > raw_begin) fragments.push_back(Fragment{text.substr(raw_begin, pos - raw_begin), -1, raw_begin});
    fragments.push_back(Fragment{text.substr(pos, hit->text.size()), hit->id, pos});
    pos += hit->text.size();
    raw_begin = pos;
  }
  if (raw_begin < text.size()) fragments.push_back(Fragment{text.substr(raw_begin), -1, raw_begin});
}

}  // namespace tessera::runtime
