#pragma once
// The one exception type of Tessera. Messages carry their context (file, tensor, rank, op, peer) so that
// they can be shown to a user as they are; libraries throw, only the launcher decides to exit.
#include <sstream>
#include <stdexcept>
#include <string>

namespace tessera {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(concat(parts...));
}

}  // namespace tessera

// TESSERA_CHECK(condition, "message parts", value, ...): throws tessera::Error with the parts joined.
#define TESSERA_CHECK(condition, ...)      \
  do {                                     \
    if (!(condition)) {                    \
      ::tessera::fail(__VA_ARGS__);        \
    }                                      \
  } while (false)
