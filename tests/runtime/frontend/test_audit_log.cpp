// The audit log: one JSON object per line with the fields documented in audit_log.h, no interleaving when many
// threads write at once, everything written by the time the log is closed, content only when given.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kernels/base/error.h"
#include "runtime/frontend/audit_log.h"

namespace tessera::frontend {
namespace {

using nlohmann::json;

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()) + ".jsonl");
}

std::vector<std::string> lines_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(AuditLog, Iso8601Utc) {
  const auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1714564800123));
  EXPECT_EQ(iso8601_utc(t), "2024-05-01T12:00:00.123Z");
}

TEST(AuditLog, FormatsEveryField) {
  AuditRecord r;
  r.time = std::chrono::system_clock::time_point(std::chrono::seconds(1714564800));
  r.request_id = "req-1";
  r.key_name = "alice";
  r.client = "127.0.0.1:5000";
  r.method = "POST";
  r.route = "/v1/chat/completions";
  r.status = 200;
  r.prompt_tokens = 12;
  r.completion_tokens = 8;
  r.queue_seconds = 0.25;
  r.first_token_seconds = 0.5;
  r.total_seconds = 1.5;
  r.finish_reasons = {"stop", "length"};
  const json j = json::parse(AuditLog::format(r));
  EXPECT_EQ(j["time"], "2024-05-01T12:00:00.000Z");
  EXPECT_EQ(j["request_id"], "req-1");
  EXPECT_EQ(j["key_name"], "alice");
  EXPECT_EQ(j["client"], "127.0.0.1:5000");
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["route"], "/v1/chat/completions");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["prompt_tokens"], 12);
  EXPECT_EQ(j["completion_tokens"], 8);
  EXPECT_EQ(j["queue_seconds"], 0.25);
  EXPECT_EQ(j["first_token_seconds"], 0.5);
  EXPECT_EQ(j["total_seconds"], 1.5);
  EXPECT_EQ(j["finish_reason"], "stop,length");
  EXPECT_FALSE(j.contains("prompts"));
  EXPECT_FALSE(j.contains("completions"));
  EXPECT_FALSE(j.contains("error_type"));
}

TEST(AuditLog, FormatsARefusalWithNullsAndContentWhenGiven) {
  AuditRecord r;
  r.status = 401;
  r.error_type = "invalid_request_error";
  r.route = "/v1/models\n\"x";  // a client's path is escaped, never breaks the line
  json j = json::parse(AuditLog::format(r));
  EXPECT_TRUE(j["key_name"].is_null());
  EXPECT_TRUE(j["prompt_tokens"].is_null());
  EXPECT_TRUE(j["first_token_seconds"].is_null());
  EXPECT_TRUE(j["finish_reason"].is_null());
  EXPECT_EQ(j["error_type"], "invalid_request_error");
  EXPECT_EQ(j["route"], "/v1/models\n\"x");
  EXPECT_EQ(AuditLog::format(r).find('\n'), std::string::npos);
  r.prompts = std::vector<std::string>{"Hello \xff"};  // invalid UTF-8 is replaced, not an exception
  r.completions = std::vector<std::string>{"Hi"};
  j = json::parse(AuditLog::format(r));
  EXPECT_EQ(j["completions"][0], "Hi");
  EXPECT_EQ(j["prompts"][0].get<std::string>().substr(0, 6), "Hello ");
}

TEST(AuditLog, ManyThreadsWholeLinesAllWrittenByClose) {
  const auto path = temp_file("tessera-audit");
  std::filesystem::remove(path);
  constexpr int kThreads = 8, kPerThread = 500;
  {
    AuditLog log(path.string(), false);
    EXPECT_FALSE(log.log_content());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < kPerThread; ++i) {
          AuditRecord r;
          r.request_id = std::to_string(t) + "-" + std::to_string(i);
          r.route = std::string(200, 'a' + static_cast<char>(t));  // long lines: a torn write would show
          r.status = 200;
          log.write(r);
        }
      });
    }
    for (auto& th : threads) th.join();
  }  // closing writes what is queued
  const std::vector<std::string> lines = lines_of(path);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<std::string> ids;
  for (const std::string& line : lines) {
    const json j = json::parse(line);  // throws (fails the test) on a torn line
    ids.insert(j["request_id"].get<std::string>());
    EXPECT_EQ(j["route"].get<std::string>().size(), 200u);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);  // 0600: may hold prompts
  std::filesystem::remove(path);
}

TEST(AuditLog, AppendsToAnExistingFile) {
  const auto path = temp_file("tessera-audit-append");
  { std::ofstream(path) << "{\"earlier\":true}\n"; }
  {
    AuditLog log(path.string(), true);
    EXPECT_TRUE(log.log_content());
    AuditRecord r;
    r.request_id = "later";
    log.write(r);
  }
  const std::vector<std::string> lines = lines_of(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[1])["request_id"], "later");
  std::filesystem::remove(path);
}

TEST(AuditLog, AFileThatCannotBeOpenedIsAnErrorNamingIt) {
  try {
    AuditLog log("/nonexistent-dir/audit.jsonl", false);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/audit.jsonl"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::frontend
