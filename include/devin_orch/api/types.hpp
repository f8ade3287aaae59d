// Devin v3 API value types, as the daemon uses them. Unknown fields are ignored and unknown
// enum values (status, status_detail) are kept as strings, never rejected.
#pragma once

#include "devin_orch/core/session.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace devin_orch::api {

// SessionResponse: the session record lives in core, since the store keeps it too.
using PullRequest = core::PullRequest;
using Session = core::Session;

// PaginatedSessionResponse. `total` may be null or absent.
struct SessionPage {
  std::vector<Session> items;
  std::optional<std::string> end_cursor;
  bool has_next_page = false;
  std::optional<std::int64_t> total;
};

// SessionSecretInput with its value resolved: lives only while a create request is built.
struct SessionSecret {
  std::string key;
  std::string value;
  bool sensitive = true;
};

// Query of GET /v3/organizations/{org_id}/sessions. Arrays are sent as repeated keys.
struct ListSessionsQuery {
  std::vector<std::string> session_ids;
  std::vector<std::string> tags;
  std::optional<std::int64_t> created_after;  // epoch seconds
  std::optional<std::int64_t> updated_after;
  std::optional<int> first;  // 1..200
  std::optional<std::string> after;
};

// GET /v3/self: who the API key authenticates as. The API answers a union; every member is
// read into this one record, and a principal type we do not know is kept as given.
// An uploaded file (POST /v3/organizations/{org_id}/attachments): the URL goes in a create's
// attachment_urls.
// One page of a session's messages (GET .../sessions/{id}/messages), as far as the stall rule
// needs it: how many of its items Devin wrote (source "devin"), and where the next page starts.
struct MessagePage {
  std::int64_t items = 0;
  std::int64_t from_devin = 0;
  std::optional<std::string> end_cursor;
  bool has_next_page = false;
};

struct Attachment {
  std::string attachment_id;
  std::string name;
  std::string url;
};

struct Principal {
  std::string principal_type;                    // "service_user", or e.g. a personal token's
  std::optional<std::string> service_user_id;
  std::optional<std::string> service_user_name;
  std::optional<std::string> user_id;            // personal access tokens
  std::optional<std::string> org_id;             // null: enterprise-scoped (or several orgs)
};

// One Enterprise organisation (GET /v3/enterprise/organizations).
struct Organization {
  std::string org_id;
  std::string name;
};

struct OrganizationPage {
  std::vector<Organization> items;
  std::optional<std::string> end_cursor;
  bool has_next_page = false;
};

}  // namespace devin_orch::api
