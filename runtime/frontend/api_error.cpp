#include "runtime/frontend/api_error.h"

#include <nlohmann/json.hpp>

namespace tessera::frontend {

std::string ApiError::body() const {
  nlohmann::json error = {{"message", what()}, {"type", type_}, {"param", nullptr}, {"code", nullptr}};
  if (param_) error["param"] = *param_;
  if (code_) error["code"] = *code_;
  return nlohmann::json{{"error", error}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void bad_field(const std::string& field, const std::string& message) {
  throw ApiError(400, "'" + field + "': " + message, "invalid_request_error", field);
}

}  // namespace tessera::frontend
