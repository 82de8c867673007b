#pragma once
// The layout report every multi-rank command prints from rank 0: the model, then one line per rank (its stage,
// tensor-parallel rank, layers, weight and KV-cache megabytes), so that a newcomer sees the layout at work.
#include "runtime/engine/replica.h"

namespace tessera::launcher {

// Collective over the replica's world (every rank sends its numbers; rank 0 prints).
void print_layout(runtime::Replica& replica);

}  // namespace tessera::launcher
