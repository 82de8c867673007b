#pragma once
// The tokens one engine step runs through the model, flattened across sequences: GEMMs see all of them at once,
// attention walks them sequence by sequence through each one's KV block table.
#include <cstdint>
#include <vector>

#include "parallel/block_table.h"

namespace tessera::runtime {

struct BatchSequence {
  int64_t token_begin = 0;  // first row of this sequence in the flattened batch
  int64_t token_count = 0;
  int32_t start_position = 0;      // position of its first new token
  parallel::BlockTable block_table;  // the plan's, shared
  bool sample = true;              // its last row's logits are needed
};

struct ForwardBatch {
  std::vector<int32_t> tokens;     // [T]
  std::vector<int32_t> positions;  // [T]
  std::vector<BatchSequence> sequences;

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  // Rows whose logits are needed, one per sampling sequence, in sequence order.
  std::vector<int64_t> sampled_rows() const;
};

}  // namespace tessera::runtime
