#include "parallel/communicator.h"

namespace tessera::parallel {

// A backend without non-blocking operations of its own completes them at the call; its handles are done at once.
// Correct (every member still calls in the same order), but a pipeline over it does not overlap.
PendingOperation Communicator::start_send(const void* data, size_t bytes, int peer, MessageTag tag) {
  send(data, bytes, peer, tag);
  return {};
}

PendingOperation Communicator::start_recv(void* data, size_t bytes, int peer, MessageTag tag) {
  recv(data, bytes, peer, tag);
  return {};
}

PendingOperation Communicator::start_broadcast(void* data, size_t bytes, int root) {
  broadcast(data, bytes, root);
  return {};
}

}  // namespace tessera::parallel
