#include "runtime/model/forward_batch.h"

namespace tessera::runtime {

std::vector<int64_t> ForwardBatch::sampled_rows() const {
  std::vector<int64_t> rows;
  for (const BatchSequence& s : sequences) {
    if (s.sample && s.token_count > 0) rows.push_back(s.token_begin + s.token_count - 1);
  }
  return rows;
}

}  // namespace tessera::runtime
