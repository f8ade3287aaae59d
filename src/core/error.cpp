// Messages for devin_orch::errc.
#include "devin_orch/core/error.hpp"

#include <string>

namespace devin_orch {
namespace {

class OrchCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "devin_orch"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::ok: return "success";
      case errc::resolve_failed: return "host name resolution failed";
      case errc::connect_failed: return "could not connect";
      case errc::tls_handshake_failed: return "TLS handshake failed";
      case errc::timeout: return "timed out after the request was sent";
      case errc::connection_lost: return "connection lost after the request was sent";
      case errc::response_too_large: return "response exceeds the configured size limit";
      case errc::malformed_http: return "malformed HTTP response";
      case errc::malformed_json: return "response body is not valid JSON";
      case errc::unexpected_shape: return "response JSON does not have the expected shape";
      case errc::http_status: return "unexpected HTTP status";
      case errc::invalid_argument: return "invalid argument";
      case errc::invalid_config: return "invalid configuration";
      case errc::database_error: return "database error";
      case errc::storage_full: return "the database's disk is full";
      case errc::storage_io: return "disk I/O error on the database";
      case errc::storage_busy: return "the database is locked by another process";
      case errc::storage_corrupt: return "the database file is damaged or not a database";
      case errc::sync_failed: return "fsync failed; durability can no longer be trusted";
      case errc::cancelled: return "cancelled";
      case errc::not_found: return "not found";
      case errc::conflict: return "conflict";
      case errc::lease_lost: return "another process owns the queue (lease lost)";
      case errc::group_full: return "the job's concurrency group is full";
    }
    return "unknown devin_orch error";
  }
};

}  // namespace

bool storage_may_recover(const boost::system::error_code& error) noexcept {
  return error == errc::storage_full || error == errc::storage_io || error == errc::storage_busy;
}

const boost::system::error_category& orch_category() noexcept {
  static const OrchCategory category;
  return category;
}

}  // namespace devin_orch
