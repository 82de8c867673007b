#pragma once
// How the HTTP server reads one request: the Beast parser with the server's limits, and what a parsed message
// becomes for the handler. Shared by every connection (http_server.cpp) and by the fuzz target
// (tests/fuzz/fuzz_http_request.cpp), so that the fuzzer parses bytes exactly as the server configures it.
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>

#include "runtime/frontend/http_server.h"

namespace tessera::frontend {

using HttpRequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Header and body limits of `limits` (over them: http::error::header_limit / body_limit -> 431 / 413).
void configure_request_parser(HttpRequestParser& parser, const HttpLimits& limits);
// Method, target, path (the target without its query), lower-case header names, body, and `remote`.
HttpRequest to_http_request(boost::beast::http::request<boost::beast::http::string_body>&& message,
                            std::string remote);

}  // namespace tessera::frontend
