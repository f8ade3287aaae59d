// A job's attachments against devin-sim: each file uploaded exactly once before the create,
// which carries every URL; a daemon killed after the uploads and restarted uploads nothing again
// and creates one session; an unreadable file is a clear error, at load or at upload time.
#include "daemon_fixture.hpp"

#include "devin_orch/core/job.hpp"

#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <set>
#include <thread>

namespace devin_orch::testing {
namespace {

namespace json = boost::json;

constexpr const char* kUploadRoute = "POST /v3/organizations/{org_id}/attachments";
constexpr const char* kCreateRoute = "POST /v3/organizations/{org_id}/sessions";

class Attachments : public DaemonFixture {
 protected:
  void write_files() {
    ::mkdir(dir_.file("files").c_str(), 0755);
    write_file(dir_.file("files/notes.txt"), "what the session should know\n");
    write_file(dir_.file("files/trace.bin"), std::string{"\x00\x01\xff\r\n--", 7});
  }

  std::int64_t uploads() { return sim_->stats().at("attachments_uploaded").as_int64(); }

  // Every answer the simulator gave on `route`, whatever its status.
  std::int64_t requests_on(const char* route) {
    const auto stats = sim_->stats();
    const auto* by_status = stats.at("requests").as_object().if_contains(route);
    std::int64_t total = 0;
    if (by_status != nullptr) {
      for (const auto& [status, count] : by_status->as_object()) total += count.as_int64();
    }
    return total;
  }

  // The simulator's sessions that carry the job's creation tag (generation 0).
  std::vector<json::object> sessions_of(const std::string& key) {
    const std::string tag = core::creation_tag(key, 0);
    std::vector<json::object> found;
    for (const auto& session : sim_->sessions()) {
      for (const auto& carried : session.at("tags").as_array()) {
        if (carried.as_string() == tag) {
          found.push_back(session.as_object());
          break;
        }
      }
    }
    return found;
  }

  static std::vector<std::string> urls_of(const json::object& session) {
    std::vector<std::string> urls;
    for (const auto& url : session.at("attachment_urls").as_array()) {
      urls.emplace_back(url.as_string());
    }
    return urls;
  }

  template <class Done>
  bool wait_until(Done done, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    return true;
  }
};

constexpr const char* kJobs = R"(
- key: with-files
  prompt: "read the attached files [sim:exit]"
  attachments:
    - files/notes.txt
    - files/trace.bin
- key: without-files
  prompt: "nothing attached [sim:exit]"
)";

TEST_F(Attachments, EachFileIsUploadedOnceAndTheCreateCarriesBothUrls) {
  start_sim({"--time-factor", "0.005", "--seed", "41"});
  write_config(DaemonSettings{});
  write_files();
  write_jobs(kJobs);
  const auto run = run_until_idle();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs["with-files"].at("state").as_string(), "finished")
      << json::serialize(jobs["with-files"]);
  EXPECT_EQ(jobs["without-files"].at("state").as_string(), "finished");
  EXPECT_EQ(uploads(), 2);
  EXPECT_EQ(sim_->stats().at("requests").at(kUploadRoute).at("200").as_int64(), 2);

  const auto with = sessions_of("with-files");
  ASSERT_EQ(with.size(), 1U);
  const auto urls = urls_of(with[0]);
  ASSERT_EQ(urls.size(), 2U);
  EXPECT_TRUE(urls[0].starts_with("https://app.devin.ai/attachments/") &&
              urls[0].ends_with("/notes.txt"))
      << urls[0];
  EXPECT_TRUE(urls[1].ends_with("/trace.bin")) << urls[1];
  const auto without = sessions_of("without-files");
  ASSERT_EQ(without.size(), 1U);
  EXPECT_TRUE(urls_of(without[0]).empty());

  // Running again finds nothing to do: no file is uploaded twice.
  const auto again = run_until_idle();
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(uploads(), 2);
  EXPECT_EQ(sim_->sessions().size(), 2U);
}

// The create's answer never comes (the simulator creates the session and drops the
// connection), and the daemon is killed once the create arrived: the URLs were stored before the
// create intent, so the next daemon uploads nothing, finds the session by its tag and adopts it.
TEST_F(Attachments, ADaemonKilledAroundTheCreateUploadsNothingAgainAndMakesOneSession) {
  start_sim({"--time-factor", "0.005", "--seed", "42", "--fault-drop-after-create", "1.0"});
  write_config(DaemonSettings{});
  write_files();
  write_jobs(kJobs);
  auto daemon = spawn_daemon("first.log");
  // This job's own create (the other job's may come first, while an upload is still under way:
  // an upload whose answer the kill cuts off is rightly done again).
  EXPECT_TRUE(wait_until([&] { return !sessions_of("with-files").empty(); },
                         std::chrono::seconds{60}))
      << read_file(dir_.file("first.log"));
  daemon->signal(SIGKILL);
  ASSERT_TRUE(daemon->wait_for(std::chrono::seconds{10}).has_value());
  const auto uploaded_before = uploads();

  sim_->configure(R"({"fault_drop_after_create": 0})");
  const auto run = run_until_idle();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(jobs_by_key()["with-files"].at("state").as_string(), "finished");
  EXPECT_EQ(uploaded_before, 2);
  EXPECT_EQ(uploads(), 2) << "the restarted daemon uploaded a stored file again";
  const auto sessions = sessions_of("with-files");
  ASSERT_EQ(sessions.size(), 1U);
  EXPECT_EQ(urls_of(sessions[0]).size(), 2U);
  EXPECT_EQ(duplicate_creation_tags(sim_->sessions()), 0);
}

// The create is refused for a while (the rate limit's bucket holds the start-up check and the
// two uploads only): the daemon is killed while it waits, after both uploads and before any
// session exists. The next daemon uses the stored URLs.
TEST_F(Attachments, ADaemonKilledBetweenTheUploadsAndTheCreateUsesTheStoredUrls) {
  start_sim({"--time-factor", "0.005", "--seed", "43", "--rate-limit-rpm", "6",
             "--rate-limit-burst", "3"});
  write_config(DaemonSettings{});
  write_files();
  write_jobs(R"(
- key: with-files
  prompt: "read the attached files [sim:exit]"
  attachments: [files/notes.txt, files/trace.bin]
)");
  auto daemon = spawn_daemon("first.log");
  // Once both files are uploaded their URLs are stored (the create comes only after that); the
  // kill lands while the create waits out the 429, or (on a slow start) a little later.
  EXPECT_TRUE(wait_until([&] { return uploads() >= 2; }, std::chrono::seconds{60}))
      << read_file(dir_.file("first.log"));
  wait_until([&] { return sim_->stats().at("rate_limited_total").as_int64() >= 1; },
             std::chrono::seconds{20});
  daemon->signal(SIGKILL);
  ASSERT_TRUE(daemon->wait_for(std::chrono::seconds{10}).has_value());

  sim_->configure(R"({"rate_limit_rpm": 0})");
  const auto run = run_until_idle();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(jobs_by_key()["with-files"].at("state").as_string(), "finished");
  EXPECT_EQ(uploads(), 2);
  const auto sessions = sessions_of("with-files");
  ASSERT_EQ(sessions.size(), 1U);
  EXPECT_EQ(urls_of(sessions[0]).size(), 2U);
}

TEST_F(Attachments, AMissingFileIsAnInvalidJobNamedByFileLineAndField) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(R"(- key: missing-file
  prompt: "p [sim:exit]"
  attachments: [gone.txt]
)");
  const auto run = run_until_idle();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs["missing-file"].at("state").as_string(), "invalid");
  const std::string error = json::serialize(jobs["missing-file"].at("error"));
  EXPECT_NE(error.find("jobs.yaml:3:17: jobs[0].attachments[0]: " + dir_.file("gone.txt") +
                       ": no such file"),
            std::string::npos)
      << error;
  EXPECT_EQ(uploads(), 0);
  EXPECT_TRUE(sim_->sessions().empty());
}

// The file was there when the job was queued and is gone when its turn comes: the job ends
// `dead` saying which file and why, with nothing uploaded and no session, and the daemon goes on.
TEST_F(Attachments, AFileUnreadableAtUploadTimeEndsTheJobDeadWithTheReason) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs("");
  write_files();
  write_file(dir_.file("queued.yaml"), R"(
- key: file-vanishes
  prompt: "p [sim:exit]"
  attachments: [files/notes.txt]
- key: plain
  prompt: "p [sim:exit]"
)");
  const auto enqueued = run_command(
      daemon_options({"enqueue", "--config", dir_.file("config.yaml"), "--file",
                      dir_.file("queued.yaml")}),
      std::chrono::seconds{30});
  ASSERT_EQ(enqueued.exit_code, 0) << enqueued.err;
  ASSERT_EQ(std::remove(dir_.file("files/notes.txt").c_str()), 0);
  ::mkdir(dir_.file("files/notes.txt").c_str(), 0755);  // now a directory

  const auto run = run_until_idle();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs["file-vanishes"].at("state").as_string(), "dead");
  EXPECT_EQ(json::serialize(jobs["file-vanishes"].at("error")),
            json::serialize(json::value("attachment " + dir_.file("files/notes.txt") +
                                        ": is a directory, not a file")));
  EXPECT_EQ(jobs["plain"].at("state").as_string(), "finished");
  EXPECT_EQ(uploads(), 0);
  EXPECT_EQ(sim_->sessions().size(), 1U);
}

// enqueue takes attachments as the daemon does: --attach resolves against the directory it runs
// in, and every way in (flags, a file, JSON lines) checks each file against the configuration's
// attachments.max_bytes before anything is stored; the daemon then uploads what was queued.
TEST_F(Attachments, EnqueueChecksFilesAgainstTheConfiguredLimitAndTheDaemonUploadsThem) {
  start_sim({"--time-factor", "0.005"});
  DaemonSettings settings;
  settings.extra = "attachments:\n  max_bytes: 64\n";
  write_config(settings);
  write_jobs("");
  write_files();
  write_file(dir_.file("files/big.log"), std::string(65, 'x'));
  const auto enqueue_in_files = [&](const std::string& arguments) {
    auto shell = daemon_options({});
    shell.args = {"/bin/sh", "-c",
                  "cd '" + dir_.file("files") + "' && '" + std::string{DEVIN_ORCH_BIN} +
                      "' enqueue --config '" + dir_.file("config.yaml") + "' " + arguments};
    return run_command(shell, std::chrono::seconds{30});
  };

  const auto added = enqueue_in_files("--key by-flags --prompt 'p [sim:exit]' --attach notes.txt");
  ASSERT_EQ(added.exit_code, 0) << added.err;
  const auto too_big = enqueue_in_files("--key too-big --prompt 'p [sim:exit]' --attach big.log");
  EXPECT_EQ(too_big.exit_code, 2);
  EXPECT_NE(too_big.err.find("--attach: "), std::string::npos) << too_big.err;
  EXPECT_NE(too_big.err.find(dir_.file("files/big.log")), std::string::npos) << too_big.err;
  EXPECT_NE(too_big.err.find("64"), std::string::npos) << too_big.err;
  const auto missing = enqueue_in_files("--key missing --prompt 'p [sim:exit]' --attach gone.txt");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find(dir_.file("files/gone.txt")), std::string::npos) << missing.err;

  write_file(dir_.file("lines.jsonl"),
             R"({"key": "by-stdin", "prompt": "p [sim:exit]", "attachments": [")" +
                 dir_.file("files/trace.bin") + "\"]}\n" +
                 R"({"key": "stdin-too-big", "prompt": "p", "attachments": [")" +
                 dir_.file("files/big.log") + "\"]}\n");
  const auto lines = enqueue_in_files("--stdin < '" + dir_.file("lines.jsonl") + "'");
  EXPECT_EQ(lines.exit_code, 2);
  EXPECT_NE(lines.err.find("stdin:2: "), std::string::npos) << lines.err;
  EXPECT_NE(lines.err.find(dir_.file("files/big.log")), std::string::npos) << lines.err;

  write_file(dir_.file("files/more.yaml"), "- key: by-file\n  prompt: \"p [sim:exit]\"\n"
                                           "  attachments: [big.log]\n");
  const auto file = enqueue_in_files("--file more.yaml");
  EXPECT_EQ(file.exit_code, 2);
  EXPECT_NE(file.err.find("more.yaml:3:"), std::string::npos) << file.err;

  const auto run = run_until_idle();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs.size(), 2U);  // by-flags and by-stdin: nothing refused was stored
  EXPECT_EQ(jobs["by-flags"].at("state").as_string(), "finished");
  EXPECT_EQ(jobs["by-stdin"].at("state").as_string(), "finished");
  EXPECT_EQ(jobs.count("too-big"), 0U);
  EXPECT_EQ(jobs.count("missing"), 0U);
  EXPECT_EQ(jobs.count("by-file"), 0U);
  EXPECT_EQ(uploads(), 2);
  const auto by_flags = sessions_of("by-flags");
  ASSERT_EQ(by_flags.size(), 1U);
  EXPECT_EQ(urls_of(by_flags[0]).size(), 1U);
}

}  // namespace
}  // namespace devin_orch::testing
