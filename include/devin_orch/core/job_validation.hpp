// The one definition of a valid job: every limit on a job's fields and the check every entry
// point (job files, `enqueue`, rows other tools insert) runs once it has built a JobDefinition.
#pragma once

#include "devin_orch/core/api_version.hpp"
#include "devin_orch/core/job.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::core {

// Each limit is stated here only; docs/queue.md describes them in the same terms.
namespace job_limits {
// Characters are Unicode code points of the UTF-8 text: SQLite's length(), which the jobs
// table's CHECK on `key` uses, counts the same way.
inline constexpr std::size_t max_key_characters = 512;
inline constexpr std::size_t max_prompt_bytes = 64U << 10U;
// The API's own limits on structured_output_schema (as JSON text) and a session secret's key.
inline constexpr std::size_t max_schema_bytes = 64U << 10U;
inline constexpr std::size_t max_secret_key_characters = 256;
// The reference states no limit on attachments; these keep one job's uploads bounded (the
// size of each file is the config's attachments.max_bytes, checked where files are read).
inline constexpr std::size_t max_attachments = 20;
inline constexpr std::size_t max_attachment_path_bytes = 4096;
inline constexpr std::int64_t default_max_attachment_bytes = 10LL << 20;  // attachments.max_bytes
inline constexpr std::int64_t min_attempts = 1;
inline constexpr std::int64_t max_attempts = 1000;
}  // namespace job_limits

// The first rule a job breaks. `field` is the path inside the job, in the names of the YAML and
// JSON forms ("prompt", "tags[1]", "session_secrets[0].key"); `reason` reads on after it
// ("must not be empty"). Entry points add only where the job came from.
struct FieldError {
  std::string field;
  std::string reason;

  // "field: reason", the part every entry point's message has in common.
  std::string text() const { return field + ": " + reason; }

  bool operator==(const FieldError&) const = default;
};

// The whole definition: the key, the organisation, the spec, then the controls, then whether
// the API the job will be created through has every field it uses (v1 lacks several of v3's:
// docs/api-v1.md).
std::optional<FieldError> validate(const JobDefinition& definition,
                                   ApiVersion api_version = ApiVersion::v3);
// The parts, for readers that hold only one of them (the stored-spec decoder).
std::optional<FieldError> validate_key(std::string_view key);
std::optional<FieldError> validate(const JobSpec& spec);
std::optional<FieldError> validate(const JobControls& controls);
// One notification target; `field` names it in the error ("notify[0]", "notify.webhooks[1]").
std::optional<FieldError> validate(const NotifyTarget& target, const std::string& field);

// Unicode code points in `text`, or nullopt if it is not valid UTF-8 (overlong forms,
// surrogates and values past U+10FFFF included).
std::optional<std::size_t> utf8_characters(std::string_view text) noexcept;

}  // namespace devin_orch::core
