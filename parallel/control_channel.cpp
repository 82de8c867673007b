#include "parallel/control_channel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "kernels/base/error.h"
#include "parallel/collective_failure.h"

namespace tessera::parallel {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kHelloMagic = 0x54434331;  // "TCC1"
constexpr size_t kTokenBytes = 16;
constexpr size_t kMaxFrame = 64 * 1024;
constexpr size_t kMaxPendingOutput = 256 * 1024;  // per peer; beyond it new messages are dropped
constexpr size_t kEndpointBytes = 4096;
constexpr size_t kHostBytes = 256;
constexpr uint8_t kAck = 'K';

std::string errno_text() { return std::strerror(errno); }

int milliseconds_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

// Reads exactly `bytes` from a non-blocking socket before `deadline`; false on timeout, close or error.
bool read_exactly(int fd, void* data, size_t bytes, Clock::time_point deadline) {
  auto* p = static_cast<uint8_t*>(data);
  size_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::recv(fd, p + done, bytes - done, MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return false;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, milliseconds_left(deadline)) <= 0) return false;
  }
  return true;
}

bool write_exactly(int fd, const void* data, size_t bytes, Clock::time_point deadline) {
  const auto* p = static_cast<const uint8_t*>(data);
  size_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::send(fd, p + done, bytes - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    pollfd pfd{fd, POLLOUT, 0};
    if (::poll(&pfd, 1, milliseconds_left(deadline)) <= 0) return false;
  }
  return true;
}

// The leader's IPv4 addresses, most useful first: every interface that is up and not loopback, then loopback.
std::vector<std::string> local_addresses(bool loopback_only) {
  std::vector<std::string> out;
  if (!loopback_only) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) == 0) {
      for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
        if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
        char text[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof(text));
        out.emplace_back(text);
      }
      ::freeifaddrs(list);
    }
  }
  out.emplace_back("127.0.0.1");
  return out;
}

// Connects to address:port before `deadline`; -1 when it cannot.
int connect_to(const std::string& address, uint16_t port, Clock::time_point deadline) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &to.sin_addr) != 1) return -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  set_nonblocking(fd);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  pollfd pfd{fd, POLLOUT, 0};
  int error = 0;
  socklen_t length = sizeof(error);
  if (::poll(&pfd, 1, milliseconds_left(deadline)) != 1 ||
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof(v)); }
void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof(v)); }

std::string encode(const ControlMessage& m) {
  std::string payload;
  payload.push_back(static_cast<char>(m.kind));
  payload.push_back(static_cast<char>(m.activity.activity));
  put_u64(payload, m.activity.step);
  put_u32(payload, static_cast<uint32_t>(std::min<int64_t>(m.activity.in_it.count(), UINT32_MAX)));
  payload += m.text.substr(0, kMaxFrame - 64);
  std::string frame;
  put_u32(frame, static_cast<uint32_t>(payload.size()));
  return frame + payload;
}

std::optional<ControlMessage> decode(const uint8_t* p, size_t n) {
  if (n < 14) return std::nullopt;
  ControlMessage m;
  if (p[0] < 1 || p[0] > 4 || p[1] > 5) return std::nullopt;
  m.kind = static_cast<ControlMessage::Kind>(p[0]);
  m.activity.activity = static_cast<Activity>(p[1]);
  std::memcpy(&m.activity.step, p + 2, 8);
  uint32_t ms = 0;
  std::memcpy(&ms, p + 10, 4);
  m.activity.in_it = std::chrono::milliseconds(ms);
  m.text.assign(reinterpret_cast<const char*>(p + 14), n - 14);
  return m;
}

}  // namespace

struct ControlChannel::Peer {
  int fd = -1;
  bool closed = false;
  std::vector<uint8_t> input;
  std::mutex output_mutex;
  std::string output;  // bytes accepted by send() that the socket has not taken yet

  ~Peer() {
    if (fd >= 0) ::close(fd);
  }
  // Under output_mutex.
  void flush_locked() {
    while (!output.empty()) {
      const ssize_t n = ::send(fd, output.data(), output.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n <= 0) return;
      output.erase(0, static_cast<size_t>(n));
    }
  }
};

ControlChannel::ControlChannel(int rank, int size)
    : rank_(rank), size_(size), hosts_(static_cast<size_t>(size)), peers_(static_cast<size_t>(size)) {}

ControlChannel::~ControlChannel() = default;

ControlChannel::Peer* ControlChannel::peer(int rank) {
  if (rank < 0 || rank >= size_) return nullptr;
  return peers_[static_cast<size_t>(rank)].get();
}

std::unique_ptr<ControlChannel> ControlChannel::open(HostCommunicator& world, const std::string& host_name,
                                                     std::chrono::milliseconds connect_timeout) {
  const int rank = world.rank();
  const int size = world.size();
  std::unique_ptr<ControlChannel> channel(new ControlChannel(rank, size));
  channel->hosts_[static_cast<size_t>(rank)] = host_name;
  if (size == 1) return channel;

  // Where is everyone? Loopback is enough when every rank shares the leader's host.
  std::array<char, kHostBytes> leader_host{};
  if (rank == 0) std::strncpy(leader_host.data(), host_name.c_str(), kHostBytes - 1);
  world.broadcast(host_span(leader_host), 0);
  channel->hosts_[0] = leader_host.data();
  const float here = host_name == leader_host.data() ? 1.0f : 0.0f;
  std::vector<float> same_host(static_cast<size_t>(size));
  world.all_gather(host_span(&here, 1), host_span(same_host));
  bool single_host = true;
  for (const float s : same_host) single_host = single_host && s != 0.0f;

  // The leader listens; its endpoint (token, port, addresses) goes to everyone.
  std::optional<std::string> error;
  int listener = -1;
  std::array<uint8_t, kEndpointBytes> endpoint{};
  if (rank == 0) {
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(single_host ? INADDR_LOOPBACK : INADDR_ANY);
    at.sin_port = 0;
    socklen_t length = sizeof(at);
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0 ||
        ::listen(listener, 1024) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&at), &length) != 0) {
      error = "the leader cannot listen for its control connections: " + errno_text();
    } else {
      set_nonblocking(listener);
      std::random_device random;
      for (size_t i = 0; i < kTokenBytes; i += 4) {
        const uint32_t r = random();
        std::memcpy(endpoint.data() + i, &r, 4);
      }
      const uint16_t port = ntohs(at.sin_port);
      std::memcpy(endpoint.data() + kTokenBytes, &port, 2);
      std::string addresses;
      for (const auto& a : local_addresses(single_host)) {
        if (addresses.size() + a.size() + 2 >= kEndpointBytes - kTokenBytes - 2) break;
        addresses += (addresses.empty() ? "" : ",") + a;
      }
      std::memcpy(endpoint.data() + kTokenBytes + 2, addresses.data(), addresses.size());
    }
  }
  try {
    agree_on_failure(world, error);
  } catch (...) {
    if (listener >= 0) ::close(listener);
    throw;
  }
  world.broadcast(host_span(endpoint), 0);
  const uint8_t* token = endpoint.data();
  uint16_t port = 0;
  std::memcpy(&port, endpoint.data() + kTokenBytes, 2);
  const std::string address_list(reinterpret_cast<const char*>(endpoint.data() + kTokenBytes + 2));

  const auto deadline = Clock::now() + connect_timeout;
  if (rank == 0) {
    // Accept until every follower has proved the token and named itself, or the deadline passes.
    int missing = size - 1;
    while (missing > 0 && Clock::now() < deadline) {
      pollfd pfd{listener, POLLIN, 0};
      if (::poll(&pfd, 1, milliseconds_left(deadline)) <= 0) continue;
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) continue;
      const auto hello_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(2));
      uint32_t magic = 0;
      std::array<uint8_t, kTokenBytes> proof{};
      int32_t from = -1;
      uint16_t host_length = 0;
      std::string host(kHostBytes, '\0');
      const bool ok = read_exactly(fd, &magic, 4, hello_deadline) && magic == kHelloMagic &&
                      read_exactly(fd, proof.data(), kTokenBytes, hello_deadline) &&
                      std::memcmp(proof.data(), token, kTokenBytes) == 0 &&
                      read_exactly(fd, &from, 4, hello_deadline) && from > 0 && from < size &&
                      !channel->peers_[static_cast<size_t>(from)] &&
                      read_exactly(fd, &host_length, 2, hello_deadline) && host_length < kHostBytes &&
                      read_exactly(fd, host.data(), host_length, hello_deadline) &&
                      write_exactly(fd, &kAck, 1, hello_deadline);
      if (!ok) {
        ::close(fd);  // not one of ours, or a broken hello
        continue;
      }
      host.resize(host_length);
      auto p = std::make_unique<Peer>();
      p->fd = fd;
      channel->peers_[static_cast<size_t>(from)] = std::move(p);
      channel->hosts_[static_cast<size_t>(from)] = host;
      --missing;
    }
    ::close(listener);
    if (missing > 0) {
      std::ostringstream absent;
      for (int r = 1; r < size; ++r) {
        if (!channel->peers_[static_cast<size_t>(r)]) absent << (absent.tellp() > 0 ? ", " : "") << r;
      }
      error = concat("rank(s) ", absent.str(), " did not open their control connection to the leader within ",
                     connect_timeout.count(), " ms");
    }
  } else {
    std::string tried;
    std::istringstream addresses(address_list);
    for (std::string address; std::getline(addresses, address, ',') && !channel->peers_[0];) {
      const auto try_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(2));
      const int fd = connect_to(address, port, try_deadline);
      tried += (tried.empty() ? "" : ", ") + address;
      if (fd < 0) continue;
      std::string hello;
      put_u32(hello, kHelloMagic);
      hello.append(reinterpret_cast<const char*>(token), kTokenBytes);
      hello.append(reinterpret_cast<const char*>(&rank), 4);
      const std::string host = host_name.substr(0, kHostBytes - 1);
      const auto host_length = static_cast<uint16_t>(host.size());
      hello.append(reinterpret_cast<const char*>(&host_length), 2);
      hello += host;
      uint8_t ack = 0;
      if (write_exactly(fd, hello.data(), hello.size(), try_deadline) && read_exactly(fd, &ack, 1, try_deadline) &&
          ack == kAck) {
        auto p = std::make_unique<Peer>();
        p->fd = fd;
        channel->peers_[0] = std::move(p);
      } else {
        ::close(fd);
      }
    }
    if (!channel->peers_[0]) {
      error = concat("cannot open the control connection to the leader (port ", port, " at ", tried, ")");
    }
  }
  agree_on_failure(world, error);
  for (auto& p : channel->peers_) {
    if (!p) continue;
    const int one = 1;
    ::setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  return channel;
}

void ControlChannel::send(int to, const ControlMessage& message) {
  Peer* p = peer(to);
  if (!p) return;
  const std::string frame = encode(message);
  std::lock_guard lock(p->output_mutex);
  if (p->output.size() + frame.size() <= kMaxPendingOutput) p->output += frame;
  p->flush_locked();
}

void ControlChannel::flush(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (auto& p : peers_) {
    if (!p) continue;
    std::lock_guard lock(p->output_mutex);
    while (!p->output.empty() && Clock::now() < deadline) {
      p->flush_locked();
      if (p->output.empty()) break;
      pollfd pfd{p->fd, POLLOUT, 0};
      if (::poll(&pfd, 1, std::min(milliseconds_left(deadline), 50)) < 0) break;
      if (pfd.revents & (POLLERR | POLLHUP)) break;
    }
  }
}

void ControlChannel::poll(std::chrono::milliseconds timeout,
                          const std::function<void(int peer, const ControlMessage&)>& on_message,
                          const std::function<void(int peer)>& on_closed) {
  std::vector<pollfd> fds;
  std::vector<int> ranks;
  for (int r = 0; r < size_; ++r) {
    Peer* p = peer(r);
    if (!p || p->closed) continue;
    fds.push_back({p->fd, POLLIN, 0});
    ranks.push_back(r);
  }
  if (fds.empty()) {
    std::this_thread::sleep_for(timeout);
    return;
  }
  if (::poll(fds.data(), fds.size(), static_cast<int>(timeout.count())) <= 0) return;
  for (size_t i = 0; i < fds.size(); ++i) {
    if (!fds[i].revents) continue;
    Peer& p = *peer(ranks[i]);
    bool closed = false;
    uint8_t buffer[4096];
    for (;;) {
      const ssize_t n = ::recv(p.fd, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n > 0) {
        p.input.insert(p.input.end(), buffer, buffer + n);
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed = true;
      break;
    }
    size_t at = 0;
    while (p.input.size() - at >= 4) {
      uint32_t length = 0;
      std::memcpy(&length, p.input.data() + at, 4);
      if (length > kMaxFrame) {
        closed = true;
        break;
      }
      if (p.input.size() - at - 4 < length) break;
      const auto message = decode(p.input.data() + at + 4, length);
      at += 4 + length;
      if (!message) {
        closed = true;
        break;
      }
      on_message(ranks[i], *message);
    }
    p.input.erase(p.input.begin(), p.input.begin() + static_cast<std::ptrdiff_t>(at));
    if (closed) {
      p.closed = true;
      on_closed(ranks[i]);
    }
  }
}

}  // namespace tessera::parallel
