// The daemon's API clients, one per distinct (version, key), looked up by organisation.
#include "api_clients.hpp"

#include <spdlog/spdlog.h>

namespace devin_orch::app::detail {

std::unique_ptr<ApiClients> ApiClients::create(boost::asio::any_io_executor executor,
                                               const ApiConfig& api,
                                               const std::string& global_key,
                                               std::string* error) {
  std::unique_ptr<ApiClients> clients{new ApiClients};
  // Keys are compared to share a connection pool; they are kept nowhere else and never logged.
  std::map<std::string, std::size_t> connection_by_key;
  const auto connection = [&](const std::string& key) -> std::optional<std::size_t> {
    if (const auto found = connection_by_key.find(key); found != connection_by_key.end()) {
      return found->second;
    }
    auto http = api::HttpClient::create(
        executor,
        http_client_options(api, key, static_cast<std::size_t>(api.max_in_flight)), error);
    if (!http) {
      if (error->empty()) *error = http.error().message();
      *error = "api.base_url: " + *error;
      return std::nullopt;
    }
    clients->connections_.push_back(std::move(*http));
    connection_by_key.emplace(key, clients->connections_.size() - 1);
    return clients->connections_.size() - 1;
  };
  const auto global = connection(global_key);
  if (!global) return nullptr;
  clients->default_client_ = clients->client_index(*global, api.version);
  for (const auto& [org_id, settings] : api.organizations) {
    auto key = resolve_org_api_key(api, org_id, error);
    if (!key) return nullptr;
    const auto pool = connection(*key);
    if (!pool) return nullptr;
    clients->org_clients_.emplace(org_id, clients->client_index(*pool, settings.version));
    clients->own_keys_.emplace(org_id, settings.api_key_file.has_value());
    spdlog::info("org {}: API {} with the key from {}", org_id, core::to_string(settings.version),
                 describe_org_api_key_source(api, org_id));
  }
  return clients;
}

std::size_t ApiClients::client_index(std::size_t connection, core::ApiVersion version) {
  for (std::size_t i = 0; i < clients_.size(); ++i) {
    if (clients_[i].connection == connection && clients_[i].client->version() == version) {
      return i;
    }
  }
  clients_.push_back(
      {connection, std::make_unique<api::DevinClient>(*connections_[connection], version)});
  return clients_.size() - 1;
}

const ApiClients::Client& ApiClients::client_of(std::string_view org_id) const {
  const auto found = org_clients_.find(org_id);
  return clients_[found != org_clients_.end() ? found->second : default_client_];
}

api::DevinClient& ApiClients::for_org(std::string_view org_id) {
  return *client_of(org_id).client;
}

bool ApiClients::same_key(std::string_view a, std::string_view b) const {
  return client_of(a).connection == client_of(b).connection;
}

bool ApiClients::own_key(std::string_view org_id) const {
  const auto found = own_keys_.find(org_id);
  return found != own_keys_.end() && found->second;
}

}  // namespace devin_orch::app::detail
