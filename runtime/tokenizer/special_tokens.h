#pragma once
// Added tokens (control tokens such as "<|im_start|>", user-defined ones such as "<think>") are found in the raw
// text before any model runs, longest match first at the leftmost position, and become one id each. The text
// between them goes to the BPE model.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::runtime {

class SpecialTokenMatcher {
 public:
  struct Fragment {
    std::string_view text;  // raw text when id < 0
    int32_t id = -1;        // the token when this fragment is an added token
    size_t offset = 0;      // byte offset in the input
  };

  void add(std::string text, int32_t id);  // empty texts are ignored; a later duplicate text is ignored
  bool empty() const { return count_ == 0; }

  // Cuts `text` into raw and added-token fragments, in order.
  void split(std::string_view text, std::vector<Fragment>& fragments) const;

 private:
  struct Entry {
    std::string text;
    int32_t id;
  };
  std::array<std::vector<Entry>, 256> by_first_byte_;  // each list sorted longest first
  size_t count_ = 0;
};

}  // namespace tessera::runtime
