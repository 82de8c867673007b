// RoPE against Hugging Face's own LlamaRotaryEmbedding + apply_rotary_pos_emb (fixture written by
// scripts/golden/rope_hf.py): inv_freq, the cos/sin tables and rotated q/k for default, linear and llama3 scaling.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/cpu/rope.h"
#include "tests/support/json_file.h"
#include "tests/support/test_paths.h"

namespace tessera::kernels::cpu {
namespace {

nlohmann::json load_fixture() { return testing::read_json(testing::fixture("rope/hf_rope.json")); }

std::vector<float> floats(const nlohmann::json& bit_patterns) {
  std::vector<float> out;
  for (const auto& b : bit_patterns) out.push_back(std::bit_cast<float>(b.get<uint32_t>()));
  return out;
}

RopeConfig config_of(const nlohmann::json& c) {
  RopeConfig config;
  config.head_dim = c["head_dim"].get<int64_t>();
  config.theta = c["theta"].get<float>();
  const std::string type = c["rope_type"];
  config.scaling = type == "llama3"   ? RopeScalingKind::kLlama3
                   : type == "linear" ? RopeScalingKind::kLinear
                                      : RopeScalingKind::kNone;
  config.factor = c["factor"].get<float>();
  config.low_freq_factor = c["low_freq_factor"].get<float>();
  config.high_freq_factor = c["high_freq_factor"].get<float>();
  config.original_max_position_embeddings = c["original_max_position_embeddings"].get<int64_t>();
  return config;
}

// Distance in units in the last place between two finite floats of the same sign region.
int64_t ulps(float a, float b) {
  const auto ordered = [](float f) {
    const auto i = std::bit_cast<int32_t>(f);
    return i < 0 ? int64_t{INT32_MIN} - i : int64_t{i};
  };
  return std::llabs(ordered(a) - ordered(b));
}

TEST(RopeHuggingFace, InverseFrequenciesAndTablesMatch) {
  const auto fixture = load_fixture();
  ASSERT_TRUE(fixture.contains("cases"));
  for (const auto& c : fixture["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const RopeConfig config = config_of(c);
    RopeTable table(config);
    const auto want_inv_freq = floats(c["inv_freq"]);
    ASSERT_EQ(table.inv_freq().size(), want_inv_freq.size());
    for (size_t i = 0; i < want_inv_freq.size(); ++i) {
      EXPECT_LE(ulps(table.inv_freq()[i], want_inv_freq[i]), 1) << "inv_freq " << i;
    }
    const auto positions = c["positions"].get<std::vector<int64_t>>();
    table.reserve(positions.back() + 1);
    const auto want_cos = floats(c["cos"]);
    const auto want_sin = floats(c["sin"]);
    const int64_t half = config.head_dim / 2;
    for (size_t p = 0; p < positions.size(); ++p) {
      for (int64_t i = 0; i < half; ++i) {
        // HF's angle is f32(position) * inv_freq; one ulp of inv_freq moves a large angle by up to position ulps
        // of inv_freq, so compare against the angle's own precision rather than the value's.
        const float angle_ulp = std::nextafter(std::fabs(static_cast<float>(positions[p]) * want_inv_freq[i]), 1e30f) -
                                std::fabs(static_cast<float>(positions[p]) * want_inv_freq[i]);
        const double tolerance = 2e-7 + 2.0 * static_cast<double>(angle_ulp);
        const size_t idx = p * static_cast<size_t>(half) + static_cast<size_t>(i);
        EXPECT_NEAR(table.cos(positions[p])[i], want_cos[idx], tolerance) << "position " << positions[p] << " i " << i;
        EXPECT_NEAR(table.sin(positions[p])[i], want_sin[idx], tolerance) << "position " << positions[p] << " i " << i;
      }
    }
  }
}

TEST(RopeHuggingFace, RotatedQueriesAndKeysMatch) {
  const auto fixture = load_fixture();
  ASSERT_TRUE(fixture.contains("cases"));
  for (const auto& c : fixture["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const RopeConfig config = config_of(c);
    const int64_t heads = c["heads"], kv_heads = c["kv_heads"], dim = config.head_dim;
    const auto positions64 = c["positions"].get<std::vector<int64_t>>();
    const std::vector<int32_t> positions(positions64.begin(), positions64.end());
    auto q = floats(c["q"]);
    auto k = floats(c["k"]);
    RopeTable table(config);
    apply_rope(q.data(), heads, heads * dim, k.data(), kv_heads, kv_heads * dim, positions.data(),
               static_cast<int64_t>(positions.size()), table, RopeLayout::kNeox);
    const auto want_q = floats(c["q_rotated"]);
    const auto want_k = floats(c["k_rotated"]);
    double worst = 0.0;
    for (size_t i = 0; i < q.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(q[i] - want_q[i])));
    for (size_t i = 0; i < k.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(k[i] - want_k[i])));
    // Inputs are in [-1, 1]; at position 32767 one ulp of an angle is ~2e-3 ... but HF and we share the f32 angle,
    // so what is left is cos/sin rounding and the rotation's two products.
    EXPECT_LT(worst, 1e-5) << "largest |tessera - HF| over q and k";
  }
}

}  // namespace
}  // namespace tessera::kernels::cpu
