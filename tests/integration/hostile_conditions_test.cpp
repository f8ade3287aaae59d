// Conditions a production daemon must survive cleanly: a session that vanishes (lost), TLS to
// the API with a private CA (and refusal without it), and a job file reloaded on SIGHUP.
#include "daemon_fixture.hpp"

#include "support/http.hpp"

#include <algorithm>
#include <csignal>
#include <thread>

namespace devin_orch::testing {
namespace {

class Hostile : public DaemonFixture {
 protected:
  // Waits up to 20 s for the simulator to hold `count` sessions; returns how many it holds.
  std::size_t wait_for_sessions(std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
    while (sim_->sessions().size() < count && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    return sim_->sessions().size();
  }
};

// Only a full poll can tell a vanished session from an unchanged one: it is noticed within
// poll.full_every.
TEST_F(Hostile, ASessionThatVanishesEndsTheJobAsLostWithTheReason) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{.poll_full_every = "2s"});
  write_jobs(generate_jobs(1, {"[sim:hold]"}, "vanishing") + generate_jobs(1, {"[sim:exit]"}, "fine"));
  auto daemon = spawn_daemon();
  std::string vanishing_id;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (vanishing_id.empty() && std::chrono::steady_clock::now() < deadline) {
    for (const auto& [key, job] : jobs_by_key()) {
      if (key == "vanishing-0" && job.at("status").is_string() &&
          job.at("status").as_string() == "running") {
        vanishing_id = std::string{job.at("session_id").as_string()};
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  ASSERT_FALSE(vanishing_id.empty());
  ASSERT_EQ(http_call(sim_->port(), "DELETE", "/_sim/sessions/" + vanishing_id).status, 200);
  const auto status = daemon->wait_for(std::chrono::seconds{30});
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << read_file(dir_.file("daemon.log"));
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs["vanishing-0"].at("state").as_string(), "lost");
  EXPECT_NE(std::string{jobs["vanishing-0"].at("error").as_string()}.find("404"),
            std::string::npos);
  EXPECT_EQ(jobs["fine-0"].at("state").as_string(), "finished");
}

TEST_F(Hostile, SighupAddsNewJobsFromTheFileWithoutTouchingOldOnes) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(2, {"[sim:hold]"}, "first"));
  auto options = daemon_options({"run", "--config", dir_.file("config.yaml")});
  options.stderr_path = dir_.file("daemon.log");
  Process daemon{options};
  ASSERT_EQ(wait_for_sessions(2), 2U);
  // first-0 changed (reported, not applied), first-1 unchanged, three new jobs.
  write_jobs("- key: first-0\n  prompt: \"a changed prompt [sim:hold]\"\n" +
             generate_jobs(2, {"[sim:hold]"}, "first").substr(
                 generate_jobs(2, {"[sim:hold]"}, "first").find("- key: first-1")) +
             generate_jobs(3, {"[sim:exit]"}, "second"));
  daemon.signal(SIGHUP);
  EXPECT_EQ(wait_for_sessions(5), 5U);
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  EXPECT_EQ(sim_->sessions().size(), 5U) << "reload must not create a second session for a key";
  daemon.signal(SIGTERM);
  ASSERT_EQ(daemon.wait_for(std::chrono::seconds{15}), 0);
  const auto log = read_file(dir_.file("daemon.log"));
  EXPECT_NE(log.find("SIGHUP: reloading job files"), std::string::npos);
  // The new text has no tags and no create_as_user_id either, and the report says so.
  EXPECT_NE(log.find("job 'first-0' differs from its stored definition in prompt, tags, "
                     "create_as_user_id; the stored one is kept"),
            std::string::npos)
      << log;
  EXPECT_EQ(duplicate_creation_tags(sim_->sessions()), 0);
}

// A reload of a file with a syntax error changes nothing and the daemon keeps running; the
// corrected file is then read in full on the next SIGHUP.
TEST_F(Hostile, SighupWithASyntaxErrorStoresNothingFromTheFile) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(1, {"[sim:hold]"}, "first"));
  auto options = daemon_options({"run", "--config", dir_.file("config.yaml")});
  options.stderr_path = dir_.file("daemon.log");
  Process daemon{options};
  const auto wait_for_log = [&](const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
    while (read_file(dir_.file("daemon.log")).find(text) == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    return read_file(dir_.file("daemon.log")).find(text) != std::string::npos;
  };
  ASSERT_EQ(wait_for_sessions(1), 1U);

  const std::string kept = generate_jobs(1, {"[sim:hold]"}, "first");
  write_jobs(kept + "- key: m1\n  prompt: 'unterminated [sim:exit]\n- key: m2\n  prompt: second\n");
  daemon.signal(SIGHUP);
  ASSERT_TRUE(wait_for_log("reload: 1 job file(s) could not be read")) << read_file(dir_.file("daemon.log"));
  // The first error is named where the unterminated scalar starts: the line after `- key: m1`.
  const auto line = std::count(kept.begin(), kept.end(), '\n') + 2;
  EXPECT_TRUE(wait_for_log("jobs.yaml:" + std::to_string(line) + ":11: "))
      << read_file(dir_.file("daemon.log"));
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  EXPECT_EQ(jobs_by_key().size(), 1U) << "nothing from the malformed file is stored";
  EXPECT_EQ(sim_->sessions().size(), 1U);

  write_jobs(kept + "- key: m1\n  prompt: 'terminated [sim:exit]'\n- key: m2\n  prompt: \"second [sim:exit]\"\n");
  daemon.signal(SIGHUP);
  EXPECT_EQ(wait_for_sessions(3), 3U);
  daemon.signal(SIGTERM);
  ASSERT_EQ(daemon.wait_for(std::chrono::seconds{15}), 0);
  const auto jobs = jobs_by_key();
  EXPECT_EQ(jobs.size(), 3U);
  EXPECT_TRUE(jobs.contains("m1") && jobs.contains("m2"));
}

// A throwaway CA and a server certificate for 127.0.0.1, made with the openssl command.
struct Certificates {
  std::string ca;
  std::string cert;
  std::string key;
};

Certificates make_certificates(const TempDir& dir) {
  const auto run = [](std::vector<std::string> args) {
    const auto result = run_command(ProcessOptions{.args = std::move(args)});
    if (result.exit_code != 0) throw std::runtime_error("openssl failed: " + result.err);
  };
  const std::string openssl = "/usr/bin/openssl";
  run({openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-days", "2", "-subj", "/CN=devin-orch test CA", "-keyout", dir.file("ca.key"), "-out",
       dir.file("ca.pem")});
  run({openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
       "/CN=localhost", "-keyout", dir.file("server.key"), "-out", dir.file("server.csr")});
  write_file(dir.file("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  run({openssl, "x509", "-req", "-in", dir.file("server.csr"), "-CA", dir.file("ca.pem"), "-CAkey",
       dir.file("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", dir.file("san.ext"),
       "-out", dir.file("server.pem")});
  return {dir.file("ca.pem"), dir.file("server.pem"), dir.file("server.key")};
}

TEST_F(Hostile, TlsWithAPrivateCaWorksAndWithoutItIsRefused) {
  const auto certs = make_certificates(dir_);
  start_sim({"--time-factor", "0.005", "--tls-cert", certs.cert, "--tls-key", certs.key});
  const std::string https = "https://127.0.0.1:" + std::to_string(sim_->port());

  // Without the CA: the system store does not know it, so nothing may be sent.
  DaemonSettings settings;
  write_config(settings);
  write_jobs(generate_jobs(2, {"[sim:exit]"}));
  auto config = read_file(dir_.file("config.yaml"));
  config.replace(config.find(sim_->base_url()), sim_->base_url().size(), https);
  write_file(dir_.file("config.yaml"), config);
  {
    auto daemon = spawn_daemon("untrusted.log");
    // Until it has tried (a loaded machine starts a sanitizer build slowly), then a while more
    // in which nothing may be created.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
    while (read_file(dir_.file("untrusted.log")).find("certificate verify failed") ==
               std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
    std::this_thread::sleep_for(std::chrono::seconds{2});
    daemon->signal(SIGTERM);
    ASSERT_TRUE(daemon->wait_for(std::chrono::seconds{15}).has_value());
  }
  const auto refused = read_file(dir_.file("untrusted.log"));
  EXPECT_NE(refused.find("certificate verify failed"), std::string::npos) << refused;
  EXPECT_EQ(refused.find("created session"), std::string::npos) << refused;
  for (const auto& [key, job] : jobs_by_key()) {
    EXPECT_FALSE(job.at("session_id").is_string()) << key;
  }

  // With api.ca_file: the chain verifies, the work is done.
  config.replace(config.find("  org_id:"), 0, "  ca_file: " + certs.ca + "\n");
  write_file(dir_.file("config.yaml"), config);
  const auto run = run_until_idle();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const auto jobs = jobs_by_key();
  ASSERT_EQ(jobs.size(), 2U);
  for (const auto& [key, job] : jobs) {
    EXPECT_EQ(job.at("state").as_string(), "finished") << key;
    EXPECT_TRUE(job.at("session_id").is_string()) << key;
  }
}

}  // namespace
}  // namespace devin_orch::testing
