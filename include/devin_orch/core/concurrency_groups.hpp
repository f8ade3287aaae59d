// Concurrency groups, sans I/O: a job may name a concurrency_key, the configuration limits how
// many jobs of a key (or of each key a glob pattern matches) hold a session at once, and
// admission says which queued jobs may start and which wait because their group is full.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::core {

namespace concurrency_limits {
inline constexpr std::size_t max_key_bytes = 200;
}  // namespace concurrency_limits

// Why `key` is not a valid concurrency_key ("must not be empty", ...), or nullopt. Keys are
// one printable ASCII word: letters, digits and - _ . : / @ + = #, at most max_key_bytes.
std::optional<std::string> concurrency_key_problem(std::string_view key);
// The same for a pattern of the configuration, which may also hold `*` (any run of characters).
std::optional<std::string> concurrency_pattern_problem(std::string_view pattern);

// Whether `key` matches `pattern`: exact, or a glob whose `*` matches any run of characters.
bool concurrency_pattern_matches(std::string_view pattern, std::string_view key) noexcept;

// One line of the configuration's `concurrency:` list: each distinct key matching `pattern`
// may have `max_active` jobs holding a session (creating or running) at once.
struct ConcurrencyLimit {
  std::string pattern;
  int max_active = 1;

  bool operator==(const ConcurrencyLimit&) const = default;
};

// What admission says of one job.
struct GroupVerdict {
  bool allowed = true;
  // When the job's key has a limit (allowed or not): the key, the pattern that set the limit,
  // the jobs of the key active now, and the limit.
  std::optional<std::string> key;
  std::string pattern;
  int active = 0;
  int max_active = 0;
};

// "concurrency:repo:acme/backend 2/2": how `ls` and the logs name a full group.
std::string describe(const GroupVerdict& verdict);

// The limits with the jobs active per key: the store's count (jobs creating or running, read
// again at every dispatch, so it holds across restarts) plus the starts admitted since.
class ConcurrencyGroups {
 public:
  ConcurrencyGroups() = default;
  explicit ConcurrencyGroups(std::vector<ConcurrencyLimit> limits) : limits_{std::move(limits)} {}

  bool any() const noexcept { return !limits_.empty(); }
  const std::vector<ConcurrencyLimit>& limits() const noexcept { return limits_; }

  // The first limit whose pattern matches `key`; none: the key is not limited.
  const ConcurrencyLimit* limit_for(std::string_view key) const noexcept;

  // The active jobs per key, as the store counts them; replaces what was known.
  void reload(std::map<std::string, int, std::less<>> active_by_key);
  // Whether a job of `key` (none: a job without a key, never held) may start now.
  GroupVerdict admit(const std::optional<std::string>& key) const;
  // A job of `key` starts: it counts until the next reload.
  void started(const std::optional<std::string>& key);
  int active(std::string_view key) const noexcept;

 private:
  std::vector<ConcurrencyLimit> limits_;
  std::map<std::string, int, std::less<>> active_;
};

// One dispatch's candidates in dispatch order: which may start (each admitted one counts for
// the ones after it) and which wait because their group is full.
std::vector<GroupVerdict> admit_in_order(const ConcurrencyGroups& groups,
                                         const std::vector<std::optional<std::string>>& keys);

}  // namespace devin_orch::core
