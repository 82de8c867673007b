#pragma once
// The API keys `tessera serve` accepts (--api-key-file): who may call the protected routes, under which name the
// audit log and the rate limiter know them, and each key's own rate limits.
//
// The file: one key per line, blank lines and comments allowed (from a field that starts with `#` to the end of
// the line):
//     [NAME] KEY [rpm=N] [tpm=N]
// fields separated by spaces or tabs. One field is the key alone (its name is then `line-<N>`); two are the name and
// the key. `rpm=N` / `tpm=N` (N >= 0; 0: no limit) override --rate-limit-rpm / --rate-limit-tpm for this key.
// A name is 1-64 of [A-Za-z0-9._-]; a key is 16-256 printable ASCII characters without spaces (a longer random key
// is better: e.g. `openssl rand -hex 32`), and cannot start with `#`, `rpm=` or `tpm=`. An empty file (no key), a
// repeated key or name, and a malformed line are errors naming the file and the line; a key never appears in a
// message.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::frontend {

struct ApiKey {
  std::string name;
  std::string key;
  std::optional<int64_t> requests_per_minute;  // absent: the server's default
  std::optional<int64_t> tokens_per_minute;
};

class ApiKeys {
 public:
  // Reads and checks the file; throws tessera::Error "FILE:LINE: PROBLEM" (or "FILE: ..." when unreadable/empty).
  static ApiKeys load(const std::string& file);
  // The same from text (`file` only names it in messages).
  static ApiKeys parse(std::string_view text, const std::string& file);

  // The entry whose key equals `presented`, or null. Compares against every key, each in constant time
  // (constant_time_equal), so the time taken says nothing about which key matched or how much of one did.
  const ApiKey* find(std::string_view presented) const;
  const std::vector<ApiKey>& keys() const { return keys_; }

 private:
  std::vector<ApiKey> keys_;
};

// a == b in a time that depends on a.size() only (a: what the client sent; b: the secret), never on b's contents or
// length, nor on where the two differ: no early exit, no branch on the bytes. So a client timing its attempts
// cannot find a key byte by byte. b must not be empty.
bool constant_time_equal(std::string_view a, std::string_view b);

// "Bearer KEY" of an Authorization header -> KEY (the scheme's case ignored, spaces around trimmed); nullopt when
// the header is another scheme or has no key.
std::optional<std::string_view> bearer_token(std::string_view authorization);

}  // namespace tessera::frontend
