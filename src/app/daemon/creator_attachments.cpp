// The creation flow's first step for a job with attachments: each file uploaded once, its URL
// stored before the job's create intent, so that neither a retry nor a restart uploads it again
// and the exactly-once create path is unchanged.
#include "creator.hpp"

#include "devin_orch/app/jobs/attachment_files.hpp"
#include "devin_orch/app/logging.hpp"
#include "devin_orch/core/backoff.hpp"
#include "devin_orch/core/error.hpp"
#include "devin_orch/core/job_validation.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>

namespace devin_orch::app::detail {
namespace {

// A fresh multipart boundary per upload; a file that happens to contain it is caught by the
// client, and the next attempt draws another.
std::string random_boundary(core::Random& random) {
  char text[64];
  std::snprintf(text, sizeof text, "devin-orch-%016llx%016llx",
                static_cast<unsigned long long>(random.next()),
                static_cast<unsigned long long>(random.next()));
  return text;
}

// Answers no retry can change: the file, the key or the organisation is refused.
bool final_refusal(core::CallClass cls) {
  return cls == core::CallClass::rejected || cls == core::CallClass::forbidden ||
         cls == core::CallClass::unauthorized || cls == core::CallClass::not_found;
}

}  // namespace

awaitable<bool> Creator::attachments_step(Org& org, Flow& flow) {
  const auto& paths = flow.job.definition.spec.attachments;
  if (paths.empty()) co_return true;
  // A job this API cannot take ends in send_create_step, before anything is sent: nothing is
  // uploaded for it either.
  if (core::validate(flow.job.definition, services_.config.api.version)) co_return true;
  const std::string& key = flow.job.definition.key;
  auto end_dead = [&](const std::string& reason) {
    writer_.finish_job(flow.job, core::JobState::dead, reason);
    services_.metrics.job_ended(core::JobState::dead);
    log_event(spdlog::level::err,
              {.event = "job_ended", .key = key, .org_id = org.org_id, .state = "dead"},
              "job '{}': dead: {}", key, reason);
  };

  auto stored = services_.store.attachment_urls(flow.job.id);
  while (!stored && storage_may_recover(stored.error())) {
    writer_.failed("the attachment URLs of job '" + key + "'", stored.error());
    if (!co_await services_.runtime.sleep_for(std::chrono::seconds{1})) co_return false;
    stored = services_.store.attachment_urls(flow.job.id);
  }
  if (!stored) {
    writer_.failed("the attachment URLs of job '" + key + "'", stored.error());
    co_return false;
  }
  flow.attachment_urls.clear();
  for (const std::string& path : paths) {
    if (const auto found = stored->find(path); found != stored->end()) {
      flow.attachment_urls.push_back(found->second);
      continue;
    }
    std::string reason;
    auto file = read_attachment(path, services_.config.attachments.max_bytes, &reason);
    if (!file) {
      // Nothing was created for the job: ending it here loses no session. Retrying would
      // find the same file (an operator's `retry` reads it again once it is fixed).
      end_dead("attachment " + reason);
      co_return false;
    }
    for (int failures = 0;;) {
      auto gated = co_await gates_.call(org, core::RequestKind::other,
                                        ApiOperation::upload_attachment, [&] {
                                          return services_.client_for(org.org_id).upload_attachment(
                                              org.org_id, file->name, file->bytes,
                                              random_boundary(services_.random),
                                              services_.config.attachments.upload_timeout);
                                        });
      if (!gated) co_return false;  // stopping: the job stays queued
      auto& answer = *gated;
      if (answer.value) {
        const std::string url = answer.value->url;
        auto recorded = services_.store.record_attachment_url(flow.job.id, path, url,
                                                              core::wall_now());
        while (!recorded && storage_may_recover(recorded.error())) {
          writer_.failed("the attachment URL of job '" + key + "'", recorded.error());
          if (!co_await services_.runtime.sleep_for(std::chrono::seconds{1})) co_return false;
          recorded = services_.store.record_attachment_url(flow.job.id, path, url,
                                                           core::wall_now());
        }
        if (!recorded) {
          // The job moved on meanwhile (cancelled, deleted): no create follows.
          writer_.failed("the attachment URL of job '" + key + "'", recorded.error());
          co_return false;
        }
        writer_.succeeded();
        log_event(spdlog::level::info,
                  {.event = "attachment_uploaded", .key = key, .org_id = org.org_id},
                  "job '{}': uploaded {} ({} bytes)", key, path, file->bytes.size());
        flow.attachment_urls.push_back(url);
        break;
      }
      const std::string why = "uploading attachment " + path + " failed (" +
                              std::string{core::to_string(answer.outcome.cls)} +
                              (answer.outcome.http_status != 0
                                   ? ", HTTP " + std::to_string(answer.outcome.http_status)
                                   : std::string{}) +
                              "): " + answer.outcome.detail;
      const auto max_attempts =
          flow.job.definition.controls.max_attempts.value_or(policy_.max_attempts);
      if (final_refusal(answer.outcome.cls) || ++failures >= max_attempts) {
        end_dead(why);
        co_return false;
      }
      log_event(spdlog::level::warn,
                {.event = "attachment_upload_failed", .key = key, .org_id = org.org_id},
                "job '{}': {}; trying again", key, why);
      if (!co_await services_.runtime.sleep_for(
              core::full_jitter_delay(policy_.retry, failures, services_.random))) {
        co_return false;
      }
    }
  }
  co_return true;
}

}  // namespace devin_orch::app::detail
