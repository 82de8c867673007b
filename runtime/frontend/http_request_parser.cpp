#include "runtime/frontend/http_request_parser.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace tessera::frontend {

void configure_request_parser(HttpRequestParser& parser, const HttpLimits& limits) {
  parser.header_limit(static_cast<uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
}

HttpRequest to_http_request(boost::beast::http::request<boost::beast::http::string_body>&& message,
                            std::string remote) {
  HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  request.path = request.target.substr(0, request.target.find('?'));
  for (const auto& field : message.base()) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    request.headers[name] = std::string(field.value());
  }
  request.body = std::move(message.body());
  request.remote = std::move(remote);
  return request;
}

}  // namespace tessera::frontend
