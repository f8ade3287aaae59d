// The daemon's API clients: one per distinct (API version, key), each organisation's looked up
// by its id (api.organizations, else api.version over the global key). Private to the app
// module.
#pragma once

#include "devin_orch/api/devin_client.hpp"
#include "devin_orch/api/http_client.hpp"
#include "devin_orch/app/config/config.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::app::detail {

class ApiClients {
 public:
  // Resolves the key of every organisation listed in api.organizations (resolve_org_api_key)
  // and makes one connection pool per distinct key. nullptr with `error` set (naming the
  // setting, never the key) when a key cannot be read or a client cannot be made.
  static std::unique_ptr<ApiClients> create(boost::asio::any_io_executor executor,
                                            const ApiConfig& api, const std::string& global_key,
                                            std::string* error);

  // The client of `org_id`'s API and key.
  api::DevinClient& for_org(std::string_view org_id);

  // Whether two organisations' requests carry the same key: a key check of one answers for
  // the other.
  bool same_key(std::string_view a, std::string_view b) const;

  // Whether `org_id` has a key of its own (api.organizations.<id>.api_key_file): checked at
  // its take-over, as the global key is at the default organisation's.
  bool own_key(std::string_view org_id) const;

 private:
  struct Client {
    std::size_t connection;  // index into connections_
    std::unique_ptr<api::DevinClient> client;
  };
  ApiClients() = default;
  std::size_t client_index(std::size_t connection, core::ApiVersion version);
  const Client& client_of(std::string_view org_id) const;

  std::vector<std::unique_ptr<api::HttpClient>> connections_;  // one per distinct key
  std::vector<Client> clients_;                                // one per (version, key)
  std::size_t default_client_ = 0;
  std::map<std::string, std::size_t, std::less<>> org_clients_;  // listed organisations
  std::map<std::string, bool, std::less<>> own_keys_;
};

}  // namespace devin_orch::app::detail
