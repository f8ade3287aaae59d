// Internal to the store: how a row of the spending guard's read (`jobs` since an intent)
// becomes a SpendingRow, the same for every backend. A backend's row type offers int64_at,
// text_at, optional_text_at and optional_double_at by column index.
#pragma once

#include "devin_orch/core/job.hpp"
#include "devin_orch/store/spec_codec.hpp"
#include "devin_orch/store/types.hpp"

#include <optional>

namespace devin_orch::store {

// The columns read_spending_row() expects, in its order.
#define DEVIN_ORCH_SPENDING_COLUMNS \
  "id, org_id, state, intent_at, acus_consumed, children_acus, spec"

// None for a row whose state this build does not know. The limit comes from the decoded spec:
// a JSON function in SQL would fail the whole query on one malformed row.
template <class Row>
std::optional<SpendingRow> read_spending_row(const Row& row) {
  const auto state = core::parse_job_state(row.text_at(2));
  if (!state) return std::nullopt;
  const auto spec = decode_spec(row.text_at(6));
  return SpendingRow{.job_id = row.int64_at(0),
                     .org_id = row.optional_text_at(1),
                     .state = *state,
                     .intent_at_ms = row.int64_at(3),
                     .acus_consumed = row.optional_double_at(4),
                     .children_acus = row.optional_double_at(5).value_or(0.0),
                     .max_acu_limit = spec ? spec->max_acu_limit : std::nullopt,
                     .concurrency_key = spec ? spec->concurrency_key : std::nullopt};
}

}  // namespace devin_orch::store
