#pragma once
// An error the HTTP API reports in OpenAI's shape, {"error": {"message", "type", "param", "code"}}, with its
// HTTP status. Thrown by request parsing and validation; the server turns it into the response.
#include <cstdint>
#include <optional>
#include <string>

#include "kernels/base/error.h"

namespace tessera::frontend {

class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string type = "invalid_request_error",
           std::optional<std::string> param = std::nullopt, std::optional<std::string> code = std::nullopt)
      : Error(message), status_(status), type_(std::move(type)), param_(std::move(param)), code_(std::move(code)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::optional<std::string>& param() const { return param_; }
  const std::optional<std::string>& code() const { return code_; }
  // 405: the methods the route allows (the Allow header).
  const std::string& allow() const { return allow_; }
  ApiError& with_allow(std::string methods) {
    allow_ = std::move(methods);
    return *this;
  }
  // 429 and 503: the Retry-After seconds when this error knows them (a rate limit does; else the server's default).
  const std::optional<int64_t>& retry_after() const { return retry_after_; }
  ApiError& with_retry_after(int64_t seconds) {
    retry_after_ = seconds;
    return *this;
  }
  // The JSON body.
  std::string body() const;

 private:
  int status_;
  std::string type_;
  std::optional<std::string> param_;
  std::optional<std::string> code_;
  std::string allow_;
  std::optional<int64_t> retry_after_;
};

// 400 naming the field.
[[noreturn]] void bad_field(const std::string& field, const std::string& message);

}  // namespace tessera::frontend
