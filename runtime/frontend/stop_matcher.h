#pragma once
// Stop strings matched in the generated text across token boundaries: text that could still be the start of a
// stop string is held back until the next token decides, and a match cuts the output just before the stop
// string (which is never emitted), as the OpenAI API does.
#include <string>
#include <string_view>
#include <vector>

namespace tessera::frontend {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // Takes newly decoded text; returns what may be emitted now. After a match it returns the text before the stop
  // string and stopped() is true; later calls return nothing.
  std::string push(std::string_view text);
  // The end of generation: everything still held back.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace tessera::frontend
