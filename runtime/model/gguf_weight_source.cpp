#include "runtime/model/gguf_weight_source.h"

#include <algorithm>
#include <vector>

#include "kernels/base/error.h"
#include "runtime/model/weight_layout.h"

namespace tessera::runtime {
namespace {

std::vector<int64_t> torch_shape(const GgufTensorInfo& tensor) {
  return std::vector<int64_t>(tensor.dims.rbegin(), tensor.dims.rend());
}

}  // namespace

std::string gguf_tensor_name(const WeightId& id) {
  const std::string block = "blk." + std::to_string(id.layer) + ".";
  switch (id.kind) {
    case WeightKind::kTokenEmbedding: return "token_embd.weight";
    case WeightKind::kAttnNorm: return block + "attn_norm.weight";
    case WeightKind::kAttnQ: return block + "attn_q.weight";
    case WeightKind::kAttnK: return block + "attn_k.weight";
    case WeightKind::kAttnV: return block + "attn_v.weight";
    case WeightKind::kAttnQBias: return block + "attn_q.bias";
    case WeightKind::kAttnKBias: return block + "attn_k.bias";
    case WeightKind::kAttnVBias: return block + "attn_v.bias";
    case WeightKind::kAttnOutput: return block + "attn_output.weight";
    case WeightKind::kFfnNorm: return block + "ffn_norm.weight";
    case WeightKind::kFfnGate: return block + "ffn_gate.weight";
    case WeightKind::kFfnUp: return block + "ffn_up.weight";
    case WeightKind::kFfnDown: return block + "ffn_down.weight";
    case WeightKind::kOutputNorm: return "output_norm.weight";
    case WeightKind::kLmHead: return "output.weight";
  }
  fail("unknown weight kind ", static_cast<int>(id.kind));
}

int64_t gguf_permuted_row(int64_t hf_row, int64_t head_dim) {
  // HF row h*head_dim + j*(head_dim/2) + i (j: which half, i: pair index) is GGUF row h*head_dim + 2*i + j.
  const int64_t half = head_dim / 2;
  const int64_t head = hf_row / head_dim, within = hf_row % head_dim;
  return head * head_dim + 2 * (within % half) + within / half;
}

GgufWeightSource::GgufWeightSource(std::shared_ptr<const GgufFile> file, const ModelConfig& config)
    : file_(std::move(file)), config_(config) {
  TESSERA_CHECK(file_ != nullptr, "GgufWeightSource: no file");
  const std::string arch = file_->get_string("general.architecture").value_or("");
  llama_permutation_ = arch == "llama";
  // Every weight the config implies must be there, shaped as the config says, in a type we can decode.
  for (const WeightId& id : model_weight_ids(config_)) {
    const GgufTensorInfo& t = tensor(id);
    check_weight_shape(config_, id, torch_shape(t), file_->description(), t.name);
    const GgmlTypeTraits traits = ggml_type_traits(t.type);
    TESSERA_CHECK(traits.dequantizable, file_->description(), ": tensor '", t.name, "' is stored as ", traits.name,
                  ", which Tessera cannot dequantize");
  }
}

std::unique_ptr<GgufWeightSource> GgufWeightSource::open(const std::filesystem::path& path, const ModelConfig& config) {
  return std::make_unique<GgufWeightSource>(GgufFile::open(path), config);
}

bool GgufWeightSource::has(const WeightId& id) const {
  return config_implies_weight(config_, id) && file_->find_tensor(gguf_tensor_name(id)) != nullptr;
}

const GgufTensorInfo& GgufWeightSource::tensor(const WeightId& id) const {
  TESSERA_CHECK(is_layer_weight(id.kind) == (id.layer >= 0) && id.layer < config_.num_layers, file_->description(),
                ": no weight ", to_string(id), " in a model of ", config_.num_layers, " layers");
  const std::string name = gguf_tensor_name(id);
  const GgufTensorInfo* t = file_->find_tensor(name);
  TESSERA_CHECK(t != nullptr, file_->description(), ": missing tensor '", name, "' (", to_string(id), ")");
  return *t;
}

bool GgufWeightSource::permuted(const WeightId& id) const {
  if (!llama_permutation_) return false;
  switch (id.kind) {
    case WeightKind::kAttnQ:
    case WeightKind::kAttnK:
    case WeightKind::kAttnQBias:
    case WeightKind::kAttnKBias: return true;
    default: return false;
  }
}

WeightInfo GgufWeightSource::info(const WeightId& id) const {
  const GgufTensorInfo& t = tensor(id);
  WeightInfo out;
  out.shape = torch_shape(t);
  out.storage_type = std::string(ggml_type_traits(t.type).name);
  out.stored_bytes = t.nbytes;
  return out;
}

void GgufWeightSource::read_rows(const WeightId& id, int64_t row_begin, int64_t row_end, float* out) const {
  const GgufTensorInfo& t = tensor(id);
  const bool vector = t.dims.size() == 1;
  // A vector's "rows" are its elements: GGUF stores it as one row of dims[0] columns.
  const int64_t rows = vector ? t.columns() : t.rows();
  TESSERA_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= rows, file_->description(), ": ",
                to_string(id), " ('", t.name, "'): row range [", row_begin, ", ", row_end, ") outside its ", rows,
                " rows");
  auto read = [&](int64_t begin, int64_t end, float* dst) {
    if (vector) {
      file_->read_columns(t, begin, end, dst);
    } else {
      file_->read_rows(t, begin, end, dst);
    }
  };
  if (!permuted(id)) return read(row_begin, row_end, out);
  const int64_t head_dim = config_.head_dim;
  const int64_t width = vector ? 1 : t.columns();
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t g = gguf_permuted_row(r, head_dim);
    read(g, g + 1, out + (r - row_begin) * width);
  }
}

void GgufWeightSource::read_columns(const WeightId& id, int64_t col_begin, int64_t col_end, float* out) const {
  const GgufTensorInfo& t = tensor(id);
  TESSERA_CHECK(t.dims.size() == 2, file_->description(), ": ", to_string(id), " ('", t.name,
                "') is not a matrix; read its elements with read_rows");
  if (!permuted(id)) return file_->read_columns(t, col_begin, col_end, out);
  const int64_t rows = t.rows(), width = col_end - col_begin;
  std::vector<float> stored(static_cast<size_t>(std::max<int64_t>(rows * width, 0)));
  file_->read_columns(t, col_begin, col_end, stored.data());  // validates the range
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t g = gguf_permuted_row(r, config_.head_dim);
    std::copy_n(stored.data() + g * width, width, out + r * width);
  }
}

std::optional<kernels::cpu::QuantizedRows> GgufWeightSource::read_rows_raw(const WeightId& id, int64_t row_begin,
                                                                           int64_t row_end) const {
  const GgufTensorInfo& t = tensor(id);
  if (t.dims.size() != 2) return std::nullopt;
  if (!permuted(id)) return file_->read_rows_raw(t, row_begin, row_end);
  TESSERA_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= t.rows(), file_->description(), ": ",
                to_string(id), " ('", t.name, "'): row range [", row_begin, ", ", row_end, ") outside its ", t.rows(),
                " rows");
  // Whole rows are what gets permuted, so the Hugging Face rows are gathered one stored row at a time.
  kernels::cpu::QuantizedRows out = file_->read_rows_raw(t, 0, 0);
  out.rows = row_end - row_begin;
  out.bytes.reserve(static_cast<size_t>(out.rows * out.row_bytes()));
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t g = gguf_permuted_row(r, config_.head_dim);
    const kernels::cpu::QuantizedRows row = file_->read_rows_raw(t, g, g + 1);
    out.bytes.insert(out.bytes.end(), row.bytes.begin(), row.bytes.end());
  }
  return out;
}

std::optional<kernels::cpu::QuantizedRows> GgufWeightSource::read_columns_raw(const WeightId& id, int64_t col_begin,
                                                                              int64_t col_end) const {
  const GgufTensorInfo& t = tensor(id);
  if (t.dims.size() != 2) return std::nullopt;
  std::optional<kernels::cpu::QuantizedRows> stored = file_->read_columns_raw(t, col_begin, col_end);
  if (!stored || !permuted(id)) return stored;
  kernels::cpu::QuantizedRows out = *stored;
  const int64_t width = stored->row_bytes();
  for (int64_t r = 0; r < t.rows(); ++r) {
    const int64_t g = gguf_permuted_row(r, config_.head_dim);
    std::copy_n(stored->bytes.data() + g * width, width, out.bytes.data() + r * width);
  }
  return out;
}

}  // namespace tessera::runtime
