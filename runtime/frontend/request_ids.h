#pragma once
// Ids for the X-Request-Id header that every response carries: a random prefix per source (the API, the HTTP
// layer's own error replies, the loading gate), so that ids from two sources or two server runs never collide in
// one audit log, and a counter. Any thread.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>

namespace tessera::frontend {

class RequestIds {
 public:
  RequestIds() {
    std::random_device device;
    char text[17];
    std::snprintf(text, sizeof text, "%08x%08x", device(), device());
    prefix_ = text;
  }
  std::string next() { return prefix_ + "-" + std::to_string(next_.fetch_add(1)); }

 private:
  std::string prefix_;
  std::atomic<uint64_t> next_{1};
};

}  // namespace tessera::frontend
