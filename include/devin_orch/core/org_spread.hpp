// How several daemons on one database share the organisations, as a sans-I/O machine: given the
// live daemons, the organisations with work and who holds each organisation's lease, which
// leases this daemon takes and which it hands over so that every daemon works its fair share.
//
// Each organisation has its own lease ("org:<org_id>", one LeaseMachine per held org drives its
// renewal); each daemon renews a registry row ("daemon:<owner>") so the others can count it. A
// daemon takes free or lapsed organisation leases up to ceil(organisations / live daemons), and
// hands over what it holds beyond that, so a daemon that joins gets work and one that dies
// leaves its organisations free within the lapse. An organisation it cannot let go right now
// (a create in flight) is drained instead: no new work starts for it until it can go.
// An organisation left free for `orphan_grace` is taken even beyond the share: a count of live
// daemons that lags (one just died, one cannot reach the database) must never leave work undone.
// A daemon below its share also asks for organisations others hold (`probe`): the store grants
// one only if its holder provably died (SQLite on one machine), so a kill is noticed at once
// there instead of after the lapse; elsewhere the answer is a refusal.
#pragma once

#include "devin_orch/core/lease.hpp"

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::core {

// The lease of one organisation's work, and the registry row of one daemon.
inline constexpr std::string_view kOrgLeasePrefix = "org:";
inline constexpr std::string_view kDaemonRegistryPrefix = "daemon:";

inline std::string org_lease_name(std::string_view org_id) {
  return std::string(kOrgLeasePrefix) + std::string(org_id);
}
inline std::string daemon_registry_name(std::string_view owner) {
  return std::string(kDaemonRegistryPrefix) + std::string(owner);
}

struct SpreadPolicy {
  Duration look_every{1'000};    // how often the registry and the leases are read
  Duration orphan_grace{5'000};  // a free org is taken beyond the share after this long
};

// One reading of the database, and what this daemon knows of itself.
struct SpreadLook {
  MonotonicTime now;
  std::int64_t store_now_ms = 0;  // the store's wall clock: expiries are judged against it
  // Owners whose registry row has not expired (this daemon is counted whether or not it is here).
  std::vector<std::string> live_daemons;
  // Organisations with queued, creating or running jobs, and the default one.
  std::vector<std::string> orgs;
  // Lease rows by organisation, as read (an org without a row is free).
  std::map<std::string, LeaseHolder> leases;
  // Organisations this daemon holds and can prove now (its lease machines say so).
  std::set<std::string> held;
  // Held organisations this daemon cannot hand over at the moment (a create is in flight).
  std::set<std::string> busy;
};

struct SpreadPlan {
  std::vector<std::string> take;       // ask for these leases now
  std::vector<std::string> probe;      // ask for these too; granted only if the holder died
  std::vector<std::string> hand_over;  // stop working these and release their leases
  std::vector<std::string> drain;      // to hand over once idle: start no new work for them
  std::size_t fair_share = 0;          // ceil(organisations / live daemons)
  MonotonicTime next_look{};

  bool operator==(const SpreadPlan&) const = default;
};

std::ostream& operator<<(std::ostream& out, const SpreadPlan& plan);

class OrgSpread {
 public:
  OrgSpread(std::string self, SpreadPolicy policy) : self_{std::move(self)}, policy_{policy} {}

  SpreadPlan resume(const SpreadLook& look);

  const std::string& self() const noexcept { return self_; }
  const SpreadPolicy& policy() const noexcept { return policy_; }

 private:
  bool is_free(const SpreadLook& look, const std::string& org) const;

  std::string self_;
  SpreadPolicy policy_;
  std::map<std::string, MonotonicTime> free_since_;  // orgs seen free, since when
};

}  // namespace devin_orch::core
