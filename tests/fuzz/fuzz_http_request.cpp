// Fuzzes the HTTP request parsing of the server: Beast's request_parser set up exactly as every connection sets it
// up (configure_request_parser with the server's HttpLimits), fed through http::read from a stream that hands out
// the bytes in segments of a fuzzed size (as TCP may), requests after requests as on a keep-alive connection, each
// turned into the handler's HttpRequest (to_http_request). Defined behaviour: an error code (the server's 400, 413,
// 431), never an exception or a crash; what parses respects the limits (body, header bytes) and has a path that is
// a prefix of its target. Input: byte 0 picks the segment size (1..256 bytes); the rest is the connection's bytes.
// Seeds: tests/fuzz/corpus/fuzz_http_request/.
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "runtime/frontend/http_request_parser.h"
#include "runtime/frontend/http_server.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using namespace tessera::frontend;

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static boost::asio::io_context context;
  if (size == 0) return 0;
  // The server's limits (HttpServer is built with HttpLimits{}): 16 KiB of headers is within -max_len; the 8 MiB
  // body limit is reached through Content-Length / chunk sizes alone.
  const HttpLimits limits;
  const size_t segment = static_cast<size_t>(data[0]) + 1;
  beast::test::stream stream(context);
  stream.append(beast::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  stream.read_size(segment);
  stream.close_remote();  // the client sent everything and closed: end of stream after the bytes
  beast::flat_buffer buffer;
  for (int requests = 0; requests < 64; ++requests) {
    std::optional<HttpRequestParser> parser;
    parser.emplace();
    configure_request_parser(*parser, limits);
    beast::error_code ec;
    http::read(stream, buffer, *parser, ec);
    if (ec) return 0;  // 400 / 413 / 431, or the end of the connection
    check(parser->is_done());
    http::request<http::string_body> message = parser->release();
    const bool keep_alive = message.keep_alive();
    const HttpRequest request = to_http_request(std::move(message), "fuzz");
    check(request.body.size() <= limits.max_body_bytes);
    check(request.target.compare(0, request.path.size(), request.path) == 0);
    for (const auto& [name, value] : request.headers) {
      for (const char c : name) check(!(c >= 'A' && c <= 'Z'));
    }
    if (!keep_alive) return 0;
  }
  return 0;
}
