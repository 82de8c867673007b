#include "runtime/frontend/http_server.h"

#include "runtime/frontend/request_ids.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <type_traits>

#include "kernels/base/error.h"
#include "runtime/frontend/http_request_parser.h"

namespace tessera::frontend {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

std::string status_line(int status) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  return concat("HTTP/1.1 ", status, " ", std::string_view(reason.data(), reason.size()), "\r\n");
}

std::string error_json(const std::string& message, const std::string& type) {
  // Hand-written: this path must not depend on the API layer. message holds no quotes or backslashes.
  return "{\"error\":{\"message\":\"" + message + "\",\"type\":\"" + type + "\",\"param\":null,\"code\":null}}";
}

// --- TLS ------------------------------------------------------------------------------------------------------------

// What OpenSSL's error queue says, oldest first (and empties it).
std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? "no details from OpenSSL" : out;
}

void check_readable(const std::string& path, const char* what) {
  std::ifstream file(path);
  TESSERA_CHECK(file.good(), "cannot read the TLS ", what, " file '", path, "': ", std::strerror(errno));
}

// A server context for TLS 1.2 and 1.3 only, forward-secret AEAD ciphers for 1.2 (Mozilla's "intermediate"
// list, ECDHE only), OpenSSL's defaults for 1.3; no renegotiation, no compression.
std::unique_ptr<ssl::context> make_tls_context(const TlsFiles& files) {
  TESSERA_CHECK(!files.cert_file.empty() && !files.key_file.empty(),
                "TLS needs both a certificate file and a key file (got certificate '", files.cert_file, "', key '",
                files.key_file, "')");
  check_readable(files.cert_file, "certificate");
  check_readable(files.key_file, "key");
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  ERR_clear_error();
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression);
  TESSERA_CHECK(SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) == 1, "cannot require TLS 1.2: ",
                openssl_errors());
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  TESSERA_CHECK(SSL_CTX_set_cipher_list(native, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") == 1,
                "cannot set the TLS ciphers: ", openssl_errors());
  // An encrypted key would make OpenSSL prompt on the terminal for a passphrase: refuse it instead.
  SSL_CTX_set_default_passwd_cb(native, [](char*, int, int, void*) { return 0; });
  TESSERA_CHECK(SSL_CTX_use_certificate_chain_file(native, files.cert_file.c_str()) == 1, "the TLS certificate file '",
                files.cert_file, "' holds no usable PEM certificate (", openssl_errors(), ")");
  if (SSL_CTX_use_PrivateKey_file(native, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    TESSERA_CHECK(ERR_GET_REASON(ERR_peek_error()) != X509_R_KEY_VALUES_MISMATCH, "the TLS key file '",
                  files.key_file, "' does not match the certificate in '", files.cert_file, "' (", openssl_errors(),
                  ")");
    fail("the TLS key file '", files.key_file, "' holds no usable unencrypted PEM private key (", openssl_errors(),
         ")");
  }
  TESSERA_CHECK(SSL_CTX_check_private_key(native) == 1, "the TLS key file '", files.key_file,
                "' does not match the certificate in '", files.cert_file, "' (", openssl_errors(), ")");
  return context;
}

// --- connections ----------------------------------------------------------------------------------------------------

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close() = 0;  // from any thread
};

template <class Stream>
class Session;

// One request/response of a connection. Stale handles (their exchange ended, the connection moved on) do nothing.
template <class Stream>
class SessionExchange final : public Exchange {
 public:
  SessionExchange(std::shared_ptr<Session<Stream>> session, uint64_t generation)
      : session_(std::move(session)), generation_(generation) {}
  net::any_io_executor executor() override { return session_->executor(); }
  void respond(int status, std::string content_type, std::string body,
               std::vector<std::pair<std::string, std::string>> headers) override {
    session_->respond(generation_, status, content_type, body, headers);
  }
  void begin_stream(std::vector<std::pair<std::string, std::string>> headers) override {
    session_->begin_stream(generation_, headers);
  }
  void send(std::string data) override { session_->send(generation_, data); }
  void end_stream() override { session_->end_stream(generation_); }
  void on_disconnect(std::function<void()> callback) override {
    session_->set_disconnect(generation_, std::move(callback));
  }
  bool connected() const override { return session_->connected(generation_); }

 private:
  std::shared_ptr<Session<Stream>> session_;
  uint64_t generation_;
};

// One connection, over plain TCP (beast::tcp_stream) or TLS (beast::ssl_stream over it). Everything runs on the
// connection's strand. The TLS differences: the handshake before the first request, close_notify on a clean close;
// time limits, disconnect detection and the discarding close work on the TCP layer underneath, for both.
template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  template <class... StreamArgs>
  Session(HttpHandler& handler, const HttpLimits& limits, std::shared_ptr<std::atomic<int>> active,
          std::shared_ptr<RequestIds> ids, StreamArgs&&... stream_args)
      : stream_(std::forward<StreamArgs>(stream_args)...), deadline_(stream_.get_executor()), handler_(handler),
        limits_(limits), active_(std::move(active)), ids_(std::move(ids)) {
    beast::error_code ec;
    const auto endpoint = tcp_layer().socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }

  void start() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->begin(); });
  }
  void close() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->shutdown(); });
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
  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(stream_); }

  void begin() {
    if constexpr (kTls) {
      // A TLS client starts with a handshake record; anything else (plain HTTP on the HTTPS port) gets a plain
      // 400 instead of a silent close. The detection and the handshake share the read timeout.
      tcp_layer().expires_after(limits_.read_timeout);
      beast::async_detect_ssl(tcp_layer(), buffer_,
                              [self = this->shared_from_this()](beast::error_code ec, bool is_tls) {
                                if (ec) return self->shutdown();
                                if (!is_tls) return self->refuse_plain_http();
                                self->stream_.async_handshake(
                                    ssl::stream_base::server, self->buffer_.data(),
                                    [self](beast::error_code handshake_ec, size_t used) {
                                      // A failed handshake (an old protocol, no shared cipher): just close.
                                      if (handshake_ec) return self->shutdown();
                                      self->buffer_.consume(used);
                                      self->tcp_layer().expires_never();
                                      self->read_request();
                                    });
                              });
    } else {
      read_request();
    }
  }

  void refuse_plain_http() {
    const std::string body = error_json("this port speaks HTTPS; use an https:// URL", "invalid_request_error");
    auto text = std::make_shared<std::string>(status_line(400) + "Content-Type: application/json\r\nContent-Length: " +
                                              std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    buffer_.clear();
    net::async_write(tcp_layer(), net::buffer(*text),
                     [self = this->shared_from_this(), text](beast::error_code ec, size_t) {
                       if (ec) return self->shutdown();
                       self->discard_then_close();
                     });
  }

  // The request deadlines run on their own timer (not the stream's, which closes the socket when it fires), so
  // that a late request can still be answered 408. Expiry cancels the socket's operations.
  enum class Deadline { kNone, kIdle, kRequest, kWrite };
  void arm(Deadline what, std::chrono::seconds after) {
    armed_ = what;
    expired_ = Deadline::kNone;
    deadline_.expires_after(after);
    deadline_.async_wait([self = this->shared_from_this(), id = ++deadline_id_](beast::error_code ec) {
      if (ec || id != self->deadline_id_ || self->closed_) return;
      self->expired_ = self->armed_;
      beast::error_code cancel_ec;
      self->tcp_layer().socket().cancel(cancel_ec);
    });
  }
  void disarm() {
    ++deadline_id_;
    armed_ = Deadline::kNone;
    deadline_.cancel();
  }

  // A new or kept-alive connection waits up to the idle timeout for the first byte of a request, then has the read
  // timeout for the whole request: a client that sends its headers a byte at a time is cut off after the latter.
  void read_request() {
    if (closed_) return;
    if (buffer_.size() > 0) return parse_request();
    arm(Deadline::kIdle, limits_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](beast::error_code ec, size_t n) {
      self->disarm();
      self->buffer_.commit(n);
      if (ec || n == 0) return self->shutdown();  // idle timeout, the client closed, a TLS error
      self->parse_request();
    });
  }

  void parse_request() {
    parser_.emplace();
    configure_request_parser(*parser_, limits_);
    arm(Deadline::kRequest, limits_.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    const bool late = expired_ == Deadline::kRequest;
    disarm();
    if (closed_) return;
    if (late) {
      return reply_and_close(408, error_json("the request did not arrive in time", "invalid_request_error"));
    }
    if (ec == http::error::body_limit) {
      return reply_and_close(413, error_json("the request body exceeds the limit of " +
                                                 std::to_string(limits_.max_body_bytes) + " bytes",
                                             "invalid_request_error"));
    }
    if (ec == http::error::header_limit) {
      return reply_and_close(431, error_json("the request headers are too large", "invalid_request_error"));
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == ssl::error::stream_truncated) {
      return shutdown();
    }
    if (ec) return reply_and_close(400, error_json("malformed HTTP request", "invalid_request_error"));
    http::request<http::string_body> message = parser_->release();
    keep_alive_ = message.keep_alive();
    HttpRequest request = to_http_request(std::move(message), remote_);
    in_exchange_ = true;
    streaming_ = false;
    ++generation_;
    active_->fetch_add(1);
    watch_for_disconnect();
    auto exchange = std::make_shared<SessionExchange<Stream>>(this->shared_from_this(), generation_);
    try {
      handler_.handle(std::move(request), exchange);
    } catch (const std::exception&) {
      respond(generation_, 500, "application/json", error_json("internal error", "internal_error"),
              {{"X-Request-Id", ids_->next()}});
    }
  }

  // While a request is handled nothing should arrive; the socket turning readable may mean the peer closed. A
  // readiness report can be stale (edge-triggered epoll reports bytes that a read already took), so the TCP socket
  // is asked directly whether the peer has closed its side (POLLRDHUP: a FIN, even behind unread bytes) or reset
  // it. Peeking for a zero-byte read would miss a TLS client's close: its close_notify alert sits in front of the
  // FIN. Bytes without a close (a pipelined request) wait for read_request; the watch goes on.
  void watch_for_disconnect() {
    tcp_layer().socket().async_wait(tcp::socket::wait_read,
                                    [self = this->shared_from_this(), generation = generation_](beast::error_code ec) {
                                      if (ec || generation != self->generation_ || !self->in_exchange_) return;
                                      if (self->peer_closed()) return self->disconnected();
                                      self->watch_for_disconnect();
                                    });
  }

  bool peer_closed() {
    pollfd p{tcp_layer().socket().native_handle(), static_cast<short>(POLLIN | POLLRDHUP), 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
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
    // Errors of the HTTP layer itself (408, 413, 431, 400) never reach the API; they carry an id all the same, and
    // the handler hears of them (the audit log).
    RefusedRequest refused{std::chrono::system_clock::now(), ids_->next(), remote_, "", "", status};
    if (parser_ && parser_->is_header_done()) {
      refused.method = std::string(parser_->get().method_string());
      refused.target = std::string(parser_->get().target());
    }
    handler_.refused(refused);
    respond(generation_, status, "application/json", body, {{"X-Request-Id", refused.request_id}});
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

  // A write that makes no progress for the idle timeout (the client reads nothing) ends the connection.
  void write_next() {
    if (closed_) return;
    if (out_.empty()) {
      writing_ = false;
      if (close_after_write_) return discard_input_ ? discard_then_close() : close_cleanly();
      if (read_after_write_ && !in_exchange_) {
        read_after_write_ = false;
        read_request();
      }
      return;
    }
    writing_ = true;
    arm(Deadline::kWrite, limits_.idle_timeout);
    net::async_write(stream_, net::buffer(out_.front()),
                     [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                       self->disarm();
                       self->pending_bytes_ -= n;
                       self->out_.pop_front();
                       if (ec) return self->disconnected();
                       self->write_next();
                     });
  }

  // After an error reply: stop sending, read and drop what the client still sends (5 s at most in all), then close,
  // so that a client still writing its request gets to read the reply instead of a reset. On the TCP layer for TLS
  // too: the reply is complete, the rest of the client's records need no decrypting.
  void discard_then_close() {
    beast::error_code ec;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ec);
    tcp_layer().expires_after(std::chrono::seconds(5));
    discard_.resize(64 * 1024);
    discard_more();
  }
  void discard_more() {
    tcp_layer().async_read_some(net::buffer(discard_), [self = this->shared_from_this()](beast::error_code ec,
                                                                                         size_t) {
      if (ec) return self->shutdown();
      self->discard_more();
    });
  }

  // The end of a connection that asked for it (Connection: close): TLS says close_notify first (2 s at most).
  void close_cleanly() {
    if constexpr (kTls) {
      tcp_layer().expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->shutdown(); });
    } else {
      shutdown();
    }
  }

  void shutdown() {
    if (closed_) return;
    closed_ = true;
    disarm();
    beast::error_code ec;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp_layer().socket().close(ec);
  }

  Stream stream_;
  net::steady_timer deadline_;
  beast::flat_buffer buffer_;
  std::optional<HttpRequestParser> parser_;
  HttpHandler& handler_;
  const HttpLimits limits_;
  std::string remote_;
  uint64_t generation_ = 0;
  uint64_t deadline_id_ = 0;
  Deadline armed_ = Deadline::kNone;
  Deadline expired_ = Deadline::kNone;
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
  std::shared_ptr<RequestIds> ids_;
};

}  // namespace

struct HttpServer::Acceptor {
  Acceptor(net::io_context& context, HttpHandler& request_handler, HttpLimits request_limits,
           std::unique_ptr<ssl::context> tls_context)
      : io(context), acceptor(net::make_strand(context)), retry(acceptor.get_executor()), handler(request_handler),
        limits(request_limits), tls(std::move(tls_context)) {}

  void accept() {
    acceptor.async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
        // E.g. out of file descriptors for a moment: keep serving the others, try again shortly (not in a spin).
        retry.expires_after(std::chrono::milliseconds(50));
        retry.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec && acceptor.is_open()) accept();
        });
        return;
      }
      std::shared_ptr<SessionBase> session;
      if (tls) {
        auto s = std::make_shared<Session<TlsStream>>(handler, limits, active, ids, std::move(socket), *tls);
        s->start();
        session = std::move(s);
      } else {
        auto s = std::make_shared<Session<PlainStream>>(handler, limits, active, ids, std::move(socket));
        s->start();
        session = std::move(s);
      }
      {
        std::lock_guard lock(mutex);
        std::erase_if(sessions, [](const std::weak_ptr<SessionBase>& w) { return w.expired(); });
        sessions.push_back(session);
      }
      accept();
    });
  }

  void close_all() {
    net::post(acceptor.get_executor(), [this] {
      beast::error_code ec;
      acceptor.close(ec);
      retry.cancel();
    });
    std::lock_guard lock(mutex);
    for (auto& w : sessions) {
      if (auto s = w.lock()) s->close();
    }
  }

  net::io_context& io;
  tcp::acceptor acceptor;
  net::steady_timer retry;
  HttpHandler& handler;
  HttpLimits limits;
  std::shared_ptr<RequestIds> ids = std::make_shared<RequestIds>();
  std::unique_ptr<ssl::context> tls;  // null: plain HTTP
  std::mutex mutex;
  std::vector<std::weak_ptr<SessionBase>> sessions;
  std::shared_ptr<std::atomic<int>> active = std::make_shared<std::atomic<int>>(0);
};

HttpServer::HttpServer(const std::string& host, int port, HttpHandler& handler, HttpLimits limits, int io_threads,
                       const TlsFiles& tls)
    : acceptor_(std::make_unique<Acceptor>(io_, handler, limits, tls.enabled() ? make_tls_context(tls) : nullptr)),
      threads_wanted_(std::max(1, io_threads)),
      tls_(tls.enabled()) {
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
