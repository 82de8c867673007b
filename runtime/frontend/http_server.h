#pragma once
// The HTTP/1.1 server of the frontend (Boost.Beast over Asio): accepts on rank 0, reads requests with size and time
// limits, keeps connections alive, and hands each request to an HttpHandler. Runs on its own I/O threads: nothing
// here touches MPI or the engine. Optionally HTTPS (TLS 1.2 and 1.3 over OpenSSL): the same connection logic runs
// over either stream; a plain-HTTP client on a TLS port gets a 400 in plain text and is closed.
//
// An Exchange is one request and its response. Its methods must be called on the exchange's executor (the
// connection's strand): from the handler itself, or from work posted there (what the engine produced arrives
// through a ResultStream whose notifier posts to executor()). A response is either whole (respond) or a stream
// of server-sent events (begin_stream, send, end_stream). A client that goes away before the exchange ends is
// reported once through the on_disconnect callback, so its request can be cancelled.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tessera::frontend {

struct HttpRequest {
  std::string method;
  std::string target;  // path and query
  std::string path;    // without the query
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string remote;  // client address
};

struct HttpLimits {
  size_t max_header_bytes = 16 * 1024;   // beyond it: 431 and close
  size_t max_body_bytes = 8 * 1024 * 1024;  // beyond it: 413 and close
  // To receive a whole request once its first byte came (headers and body; a slow sender gets 408 and is closed),
  // and to finish a TLS handshake.
  std::chrono::seconds read_timeout{30};
  // A connection without a request (new or kept alive) is closed after it; so is one whose client has read none of
  // a response for that long.
  std::chrono::seconds idle_timeout{120};
  size_t max_stream_backlog = 4 * 1024 * 1024;  // bytes a slow reader may leave unread before it is cut off
};

// HTTPS: PEM files (the certificate may be followed by its chain; the key must not be encrypted). Both empty:
// plain HTTP.
struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual boost::asio::any_io_executor executor() = 0;
  virtual void respond(int status, std::string content_type, std::string body,
                       std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  virtual void begin_stream(std::vector<std::pair<std::string, std::string>> headers = {}) = 0;  // 200, SSE
  virtual void send(std::string data) = 0;
  virtual void end_stream() = 0;
  virtual void on_disconnect(std::function<void()> callback) = 0;
  virtual bool connected() const = 0;
};

// A request the HTTP layer answered itself, before any handler saw it: a read timeout (408), a body or headers
// over the limit (413, 431), malformed HTTP (400). Method and target are empty when the headers never arrived whole.
struct RefusedRequest {
  std::chrono::system_clock::time_point time;
  std::string request_id;  // the X-Request-Id of the reply
  std::string remote;
  std::string method;
  std::string target;
  int status = 0;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // On the exchange's executor. Must eventually respond or end the stream (unless the client went away).
  virtual void handle(HttpRequest request, std::shared_ptr<Exchange> exchange) = 0;
  // Told of every request the HTTP layer refused itself (for the audit log). On an I/O thread; must not block.
  virtual void refused(const RefusedRequest& request) { (void)request; }
};

class HttpServer {
 public:
  // Binds host:port (throws tessera::Error naming them when it cannot). port 0 picks a free port. With TLS files,
  // loads them first (throws tessera::Error naming the file that is missing, unreadable or invalid).
  HttpServer(const std::string& host, int port, HttpHandler& handler, HttpLimits limits, int io_threads,
             const TlsFiles& tls = {});
  ~HttpServer();
  int port() const { return port_; }
  bool tls() const { return tls_; }
  const char* scheme() const { return tls_ ? "https" : "http"; }
  // Starts accepting on the I/O threads; on_thread_start runs first on each of them (metrics record their ids).
  void start(const std::function<void()>& on_thread_start = {});
  // Stops accepting, lets exchanges in progress finish for up to `grace`, closes every connection and joins the
  // threads.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));
  boost::asio::io_context& io_context() { return io_; }

 private:
  struct Acceptor;
  boost::asio::io_context io_;
  std::unique_ptr<Acceptor> acceptor_;
  std::vector<std::thread> threads_;
  int threads_wanted_;
  int port_ = 0;
  bool tls_ = false;
};

}  // namespace tessera::frontend
