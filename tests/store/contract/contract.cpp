// The contract suite's registry, fixture and helpers (contract.hpp).
#include "contract.hpp"

#include <span>
#include <utility>

namespace devin_orch::store::contract {
namespace {

std::vector<Backend>& registry() {
  static std::vector<Backend> registered;
  return registered;
}

}  // namespace

std::vector<Backend> backends() { return registry(); }

Registrar::Registrar(Backend backend) { registry().push_back(std::move(backend)); }

void StoreContract::SetUp() {
  database_ = GetParam().make_database();
  ASSERT_TRUE(database_);
  store_ = connect();
  ASSERT_TRUE(store_);
}

void StoreContract::TearDown() {
  store_.reset();
  database_.reset();
}

std::unique_ptr<Store> StoreContract::connect() {
  auto opened = database_->connect();
  EXPECT_TRUE(opened) << (opened ? "" : opened.error().message());
  return opened ? std::move(*opened) : nullptr;
}

std::int64_t StoreContract::id_of(const std::string& key) {
  auto found = queue().find(key);
  EXPECT_TRUE(found && found->has_value()) << key;
  return found && *found ? (*found)->id : -1;
}

core::JobRecord StoreContract::record(const std::string& key) {
  auto found = queue().find(key);
  EXPECT_TRUE(found && found->has_value()) << key;
  return found && *found ? **found : core::JobRecord{};
}

std::int64_t StoreContract::running_job(const std::string& key, const std::string& status) {
  EXPECT_EQ(intake().add_job(job(key), "test", at(1)).value(), AddResult::inserted);
  const std::int64_t id = id_of(key);
  EXPECT_TRUE(commit_intent(queue(), id, 1, core::creation_tag(key, 0), 2, at(2)));
  EXPECT_TRUE(commit_session(queue(), id, session("s-" + key, status), false, at(3)));
  return id;
}

core::JobDefinition job(std::string key, std::int64_t priority) {
  return core::JobDefinition{
      .key = std::move(key),
      .priority = priority,
      .spec = core::JobSpec{.prompt = "do the thing"},
  };
}

core::Session session(std::string id, std::string status, std::optional<std::string> detail) {
  return core::Session{
      .session_id = id,
      .url = "https://app.devin.ai/sessions/" + id,
      .status = std::move(status),
      .status_detail = std::move(detail),
  };
}

StoreResult<void> commit_intent(QueueStore& store, std::int64_t job_id, std::int64_t attempt,
                                std::string_view tag, std::int64_t intent_at_ms,
                                core::TimePoint now) {
  const IntentWrite intent{.job_id = job_id,
                           .attempt = attempt,
                           .claim = attempt == 1,
                           .tag = std::string(tag),
                           .intent_at_ms = intent_at_ms};
  auto outcomes = store.commit_intents(std::span{&intent, 1}, now);
  if (!outcomes) return outcomes.error();
  return outcomes->front();
}

StoreResult<void> commit_session(QueueStore& store, std::int64_t job_id,
                                 const core::Session& session, bool adopted, core::TimePoint now) {
  const SessionWrite write{.job_id = job_id, .session = session, .adopted = adopted};
  auto outcomes = store.commit_sessions(std::span{&write, 1}, now);
  if (!outcomes) return outcomes.error();
  return outcomes->front();
}

std::vector<std::string> events(OperatorStore& store, std::int64_t job_id) {
  auto entries = store.history(job_id);
  EXPECT_TRUE(entries);
  std::vector<std::string> names;
  if (entries) {
    for (const auto& entry : *entries) names.push_back(entry.event);
  }
  return names;
}

std::vector<std::string> keys(const std::vector<core::JobRecord>& jobs) {
  std::vector<std::string> out;
  for (const auto& j : jobs) out.push_back(j.definition.key);
  return out;
}

}  // namespace devin_orch::store::contract
