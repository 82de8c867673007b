#pragma once
// The message of the tessera::Error a piece of code throws, for tests that check what an error says.
#include <functional>
#include <string>

#include "kernels/base/error.h"

namespace tessera::testing {

// What `body` throws as tessera::Error; empty when it returns normally (any other exception propagates).
inline std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

}  // namespace tessera::testing
