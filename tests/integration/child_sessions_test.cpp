// Parent and child sessions against devin-sim (reference §12): a job created with
// child_playbook_id records its children, shows them, counts their ACUs with its own, and a
// cancel or a deadline terminates the children with the parent.
#include "daemon_fixture.hpp"

#include <chrono>
#include <ctime>
#include <thread>

namespace devin_orch::testing {
namespace {

using ChildSessions = DaemonFixture;
namespace json = boost::json;

// The simulator's sessions by parent: the parent (no parent_session_id) and its children.
struct Family {
  json::object parent;
  std::vector<json::object> children;
};

Family family_in(const json::array& sessions) {
  Family out;
  for (const auto& value : sessions) {
    const auto& session = value.as_object();
    if (session.at("parent_session_id").is_string()) {
      out.children.push_back(session);
    } else {
      out.parent = session;
    }
  }
  return out;
}

double number(const json::value& value) {
  return value.is_double() ? value.as_double() : static_cast<double>(value.to_number<double>());
}


TEST_F(ChildSessions, AJobWithAChildPlaybookRecordsShowsAndCountsItsChildren) {
  start_sim({"--time-factor", "0.005", "--child-sessions", "2"});
  write_config(DaemonSettings{});
  write_jobs("- key: family\n  prompt: \"with helpers [sim:exit]\"\n"
             "  child_playbook_id: playbook-helpers\n");
  const auto run = run_until_idle(std::chrono::seconds{60});
  ASSERT_EQ(run.exit_code, 0) << run.err;

  const Family sim = family_in(sim_->sessions());
  ASSERT_EQ(sim.children.size(), 2U);
  std::vector<std::string> sim_children;
  double sim_children_acus = 0;
  for (const auto& child : sim.children) {
    sim_children.emplace_back(child.at("session_id").as_string());
    EXPECT_EQ(child.at("parent_session_id").as_string(), sim.parent.at("session_id").as_string());
    sim_children_acus += number(child.at("acus_consumed"));
  }

  const auto show = run_command(daemon_options(
      {"show", "family", "--json", "--config", dir_.file("config.yaml")}));
  ASSERT_EQ(show.exit_code, 0) << show.err;
  const auto shown = json::parse(show.out).as_object();
  EXPECT_EQ(shown.at("definition").at("child_playbook_id").as_string(), "playbook-helpers");
  const auto& outcome = shown.at("outcome").as_object();
  EXPECT_EQ(outcome.at("state").as_string(), "finished");
  std::vector<std::string> recorded;
  for (const auto& id : outcome.at("child_session_ids").as_array()) {
    recorded.emplace_back(id.as_string());
  }
  EXPECT_EQ(recorded, sim_children);
  // The simulator reports each session's own ACUs: the job's are the parent's plus its children's.
  const double own = number(outcome.at("session_acus"));
  const double children = number(outcome.at("children_acus"));
  EXPECT_GT(children, 0.0);
  EXPECT_LE(children, sim_children_acus + 1e-9);
  EXPECT_DOUBLE_EQ(number(outcome.at("acus_consumed")), own + children);
  EXPECT_GT(number(outcome.at("acus_consumed")), own);

  const auto text = run_command(daemon_options({"show", "family", "--config", dir_.file("config.yaml")}));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const auto& id : sim_children) {
    EXPECT_NE(text.out.find(id), std::string::npos) << text.out;
  }
  EXPECT_NE(text.out.find("children"), std::string::npos) << text.out;
}

TEST_F(ChildSessions, ACancelTerminatesTheChildrenWithTheParent) {
  start_sim({"--time-factor", "0.005", "--child-sessions", "2"});
  write_config(DaemonSettings{});
  write_jobs("- key: doomed\n  prompt: \"forever [sim:hold]\"\n"
             "  child_playbook_id: playbook-helpers\n");
  auto daemon = spawn_daemon();
  // Running, and its children recorded by a poll, before the cancel.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  bool recorded = false;
  while (std::chrono::steady_clock::now() < deadline && !recorded) {
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
    const auto show = run_command(daemon_options(
        {"show", "doomed", "--json", "--config", dir_.file("config.yaml")}));
    if (show.exit_code != 0) continue;
    recorded = json::parse(show.out).at("outcome").at("child_session_ids").as_array().size() == 2;
  }
  ASSERT_TRUE(recorded);
  ASSERT_EQ(sim_->sessions().size(), 3U);
  const auto cancel =
      run_command(daemon_options({"cancel", "doomed", "--config", dir_.file("config.yaml")}));
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  const auto status = daemon->wait_for(std::chrono::seconds{20});
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << read_file(dir_.file("daemon.log"));
  EXPECT_EQ(jobs_by_key()["doomed"].at("state").as_string(), "cancelled");
  for (const auto& session : sim_->sessions()) {
    EXPECT_EQ(session.at("status").as_string(), "exit")
        << session.at("session_id").as_string() << " was left running";
  }
}

TEST_F(ChildSessions, ADeadlineTerminatesTheChildrenWithTheParent) {
  start_sim({"--time-factor", "0.005", "--child-sessions", "3"});
  write_config(DaemonSettings{});
  // Room for a sanitizer build's start on a loaded machine: the session and its children must
  // exist before the deadline passes, or there is nothing to terminate.
  const auto at = std::chrono::system_clock::now() + std::chrono::seconds{10};
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char deadline[32];
  std::strftime(deadline, sizeof deadline, "%Y-%m-%dT%H:%M:%SZ", &utc);
  write_jobs("- key: overdue\n  prompt: \"forever [sim:hold]\"\n"
             "  child_playbook_id: playbook-helpers\n  deadline: " + std::string{deadline} + "\n");
  const auto run = run_until_idle(std::chrono::seconds{60});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(jobs_by_key()["overdue"].at("state").as_string(), "timed_out");
  const auto sessions = sim_->sessions();
  ASSERT_EQ(sessions.size(), 4U);
  for (const auto& session : sessions) {
    EXPECT_EQ(session.at("status").as_string(), "exit")
        << session.at("session_id").as_string() << " was left running";
  }
}

}  // namespace
}  // namespace devin_orch::testing
