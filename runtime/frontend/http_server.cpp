#include "runtime/frontend/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cctype>
#include <deque>
#include <mutex>
#include <optional>

#include "kernels/base/error.h"
#include "runtime/frontend/http_request_parser.h"

namespace tessera::frontend {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string status_line(int status) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  return concat("HTTP/1.1 ", status, " ", std::string_view(reason.data(), reason.size()), "\r\n");
}

std::string error_json(const std::string& message, const std::string& type) {
  // Hand-written: this path must not depend on the API layer. message holds no quotes or backslashes.
  return "{\"error\":{\"message\":\"" + message + "\",\"type\":\"" + type + "\",\"param\":null,\"code\":null}}";
}

class Session;

// One request/response of a connection. Stale handles (their exchange ended, the connection moved on) do nothing.
class SessionExchange final : public Exchange {
 public:
  SessionExchange(std::shared_ptr<Session> session, uint64_t generation)
      : session_(std::move(session)), generation_(generation) {}
  net::any_io_executor executor() override;
  void respond(int status, std::string content_type, std::string body,
               std::vector<std::pair<std::string, std::string>> headers) override;
  void begin_stream(std::vector<std::pair<std::string, std::string>> headers) override;
  void send(std::string data) override;
  void end_stream() override;
  void on_disconnect(std::function<void()> callback) override;
  bool connected() const override;

 private:
  std::shared_ptr<Session> session_;
  uint64_t generation_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpHandler& handler, const HttpLimits& limits, std::shared_ptr<std::atomic<int>> active)
      : stream_(std::move(socket)), handler_(handler), limits_(limits), active_(std::move(active)) {
    beast::error_code ec;
    const auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
  }
  void close() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->shutdown(); });
  }
  net::any_io_executor executor() { return stream_.get_executor(); }

  // Exchange operations, on the strand, for the current generation only.
  bool current(uint64_t generation) const { return in_exchange_ && generation == generation_ && !closed_; }
  void respond(uint64_t generation, int status, const std::string& content_type, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& headers) {
    if (!current(generation) || streaming_) return;
    std::string out = status_line(status);
    out += "Content-Type: " + content_type + "\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
    if (!keep_alive_) out += "Connection: close\r\n";
    out += "\r\n";
    out += body;
    finish_exchange(std::move(out));
  }
  void begin_stream(uint64_t generation, const std::vector<std::pair<std::string, std::string>>& headers) {
    if (!current(generation) || streaming_) return;
    streaming_ = true;
    std::string out = status_line(200);
    out += "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
    for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
    if (!keep_alive_) out += "Connection: close\r\n";
    out += "\r\n";
    queue_write(std::move(out));
  }
  void send(uint64_t generation, const std::string& data) {
    if (!current(generation) || !streaming_ || data.empty()) return;
    char size[20];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    queue_write(std::string(size) + data + "\r\n");
    if (pending_bytes_ > limits_.max_stream_backlog) {
      // The client does not read: cut it off rather than buffer without bound.
      disconnected();
    }
  }
  void end_stream(uint64_t generation) {
    if (!current(generation) || !streaming_) return;
    finish_exchange("0\r\n\r\n");
  }
  void set_disconnect(uint64_t generation, std::function<void()> callback) {
    if (generation != generation_) return;
    if (closed_) {
      if (callback) callback();
      return;
    }
    on_disconnect_ = std::move(callback);
  }
  bool connected(uint64_t generation) const { return generation == generation_ && !closed_; }

 private:
  void read_request() {
    if (closed_) return;
    parser_.emplace();
    configure_request_parser(*parser_, limits_);
    stream_.expires_after(buffer_.size() > 0 ? limits_.read_timeout : limits_.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return reply_and_close(413, error_json("the request body exceeds the limit of " +
                                                 std::to_string(limits_.max_body_bytes) + " bytes",
                                             "invalid_request_error"));
    }
    if (ec == http::error::header_limit) {
      return reply_and_close(431, error_json("the request headers are too large", "invalid_request_error"));
    }
    if (ec == beast::error::timeout && parser_ && parser_->got_some()) {
      return reply_and_close(408, error_json("the request did not arrive in time", "invalid_request_error"));
    }
    if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset || closed_) {
      return shutdown();
    }
    if (ec) return reply_and_close(400, error_json("malformed HTTP request", "invalid_request_error"));
    stream_.expires_never();  // generation may take long; slow readers are bounded by the backlog limit
    http::request<http::string_body> message = parser_->release();
    keep_alive_ = message.keep_alive();
    HttpRequest request = to_http_request(std::move(message), remote_);
    in_exchange_ = true;
    streaming_ = false;
    ++generation_;
    active_->fetch_add(1);
    watch_for_disconnect();
    auto exchange = std::make_shared<SessionExchange>(shared_from_this(), generation_);
    try {
      handler_.handle(std::move(request), exchange);
    } catch (const std::exception&) {
      respond(generation_, 500, "application/json", error_json("internal error", "internal_error"), {});
    }
  }

  // While a request is handled nothing should arrive; the socket turning readable may mean the peer closed. A
  // readiness report can be stale (edge-triggered epoll reports bytes that a read already took), so the socket is
  // asked directly: a zero-byte peek is end of stream; no data yet means keep watching; bytes (a pipelined request)
  // wait for read_request.
  void watch_for_disconnect() {
    stream_.socket().async_wait(tcp::socket::wait_read,
                                [self = shared_from_this(), generation = generation_](beast::error_code ec) {
                                  if (ec || generation != self->generation_ || !self->in_exchange_) return;
                                  char byte;
                                  const ssize_t n = ::recv(self->stream_.socket().native_handle(), &byte, 1,
                                                           MSG_PEEK | MSG_DONTWAIT);
                                  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                                    self->disconnected();
                                  } else if (n < 0) {
                                    self->watch_for_disconnect();
                                  }
                                });
  }

  void disconnected() {
    if (closed_) return;
    if (in_exchange_) {
      in_exchange_ = false;
      active_->fetch_sub(1);
    }
    auto callback = std::move(on_disconnect_);
    on_disconnect_ = nullptr;
    shutdown();
    if (callback) callback();
  }

  void reply_and_close(int status, const std::string& body) {
    keep_alive_ = false;
    discard_input_ = true;  // the client may still be sending (a body over the limit): let it, then close
    in_exchange_ = true;
    ++generation_;
    active_->fetch_add(1);
    respond(generation_, status, "application/json", body, {});
  }

  void finish_exchange(std::string bytes) {
    in_exchange_ = false;
    active_->fetch_sub(1);
    streaming_ = false;
    on_disconnect_ = nullptr;
    close_after_write_ = !keep_alive_;
    read_after_write_ = keep_alive_;
    queue_write(std::move(bytes));
  }

  void queue_write(std::string bytes) {
    pending_bytes_ += bytes.size();
    out_.push_back(std::move(bytes));
    if (!writing_) write_next();
  }

  void write_next() {
    if (closed_) return;
    if (out_.empty()) {
      writing_ = false;
      if (close_after_write_) return discard_input_ ? discard_then_close() : shutdown();
      if (read_after_write_ && !in_exchange_) {
        read_after_write_ = false;
        read_request();
      }
      return;
    }
    writing_ = true;
    net::async_write(stream_, net::buffer(out_.front()),
                     [self = shared_from_this()](beast::error_code ec, size_t n) {
                       self->pending_bytes_ -= n;
                       self->out_.pop_front();
                       if (ec) return self->disconnected();
                       self->write_next();
                     });
  }

  // After an error reply: stop sending, read and drop what the client still sends (bounded in time), then close,
  // so that a client still writing its request gets to read the reply instead of a reset.
  void discard_then_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(5));
    discard_.resize(64 * 1024);
    stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code read_ec, size_t) {
      if (read_ec) return self->shutdown();
      self->discard_then_close();
    });
  }

  void shutdown() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<HttpRequestParser> parser_;
  HttpHandler& handler_;
  const HttpLimits limits_;
  std::string remote_;
  uint64_t generation_ = 0;
  bool keep_alive_ = true;
  bool in_exchange_ = false;
  bool streaming_ = false;
  bool closed_ = false;
  bool writing_ = false;
  bool close_after_write_ = false;
  bool read_after_write_ = false;
  bool discard_input_ = false;
  std::vector<char> discard_;
  std::deque<std::string> out_;
  size_t pending_bytes_ = 0;
  std::function<void()> on_disconnect_;
  std::shared_ptr<std::atomic<int>> active_;  // exchanges in progress on the whole server
};

net::any_io_executor SessionExchange::executor() { return session_->executor(); }
void SessionExchange::respond(int status, std::string content_type, std::string body,
                              std::vector<std::pair<std::string, std::string>> headers) {
  session_->respond(generation_, status, content_type, body, headers);
}
void SessionExchange::begin_stream(std::vector<std::pair<std::string, std::string>> headers) {
  session_->begin_stream(generation_, headers);
}
void SessionExchange::send(std::string data) { session_->send(generation_, data); }
void SessionExchange::end_stream() { session_->end_stream(generation_); }
void SessionExchange::on_disconnect(std::function<void()> callback) {
  session_->set_disconnect(generation_, std::move(callback));
}
bool SessionExchange::connected() const { return session_->connected(generation_); }

}  // namespace

struct HttpServer::Acceptor {
  Acceptor(net::io_context& context, HttpHandler& request_handler, HttpLimits request_limits)
      : io(context), acceptor(net::make_strand(context)), handler(request_handler), limits(request_limits) {}

  void accept() {
    acceptor.async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
        return accept();  // e.g. out of file descriptors for a moment: keep serving the others
      }
      auto session = std::make_shared<Session>(std::move(socket), handler, limits, active);
      {
        std::lock_guard lock(mutex);
        std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
        sessions.push_back(session);
      }
      session->start();
      accept();
    });
  }

  void close_all() {
    net::post(acceptor.get_executor(), [this] {
      beast::error_code ec;
      acceptor.close(ec);
    });
    std::lock_guard lock(mutex);
    for (auto& w : sessions) {
      if (auto s = w.lock()) s->close();
    }
  }

  net::io_context& io;
  tcp::acceptor acceptor;
  HttpHandler& handler;
  HttpLimits limits;
  std::mutex mutex;
  std::vector<std::weak_ptr<Session>> sessions;
  std::shared_ptr<std::atomic<int>> active = std::make_shared<std::atomic<int>>(0);
};

HttpServer::HttpServer(const std::string& host, int port, HttpHandler& handler, HttpLimits limits, int io_threads)
    : acceptor_(std::make_unique<Acceptor>(io_, handler, limits)), threads_wanted_(std::max(1, io_threads)) {
  beast::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  TESSERA_CHECK(!ec, "cannot listen on '", host, "': not an IP address (", ec.message(), ")");
  TESSERA_CHECK(port >= 0 && port <= 65535, "port must be in [0, 65535], got ", port);
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  auto& a = acceptor_->acceptor;
  a.open(endpoint.protocol(), ec);
  TESSERA_CHECK(!ec, "cannot open a socket for ", host, ":", port, ": ", ec.message());
  a.set_option(net::socket_base::reuse_address(true), ec);
  a.bind(endpoint, ec);
  TESSERA_CHECK(!ec, "cannot listen on ", host, ":", port, ": ", ec.message());
  a.listen(net::socket_base::max_listen_connections, ec);
  TESSERA_CHECK(!ec, "cannot listen on ", host, ":", port, ": ", ec.message());
  port_ = a.local_endpoint().port();
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start(const std::function<void()>& on_thread_start) {
  acceptor_->accept();
  for (int i = 0; i < threads_wanted_; ++i) {
    threads_.emplace_back([this, on_thread_start] {
      if (on_thread_start) on_thread_start();
      io_.run();
    });
  }
}

void HttpServer::stop(std::chrono::milliseconds grace) {
  if (threads_.empty()) return;
  net::post(acceptor_->acceptor.get_executor(), [this] {
    beast::error_code ec;
    acceptor_->acceptor.close(ec);
  });
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (acceptor_->active->load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the last responses leave the socket buffers
  acceptor_->close_all();
  // Let the closes and their last writes run, then end the loop.
  net::post(io_, [this] { io_.stop(); });
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace tessera::frontend
