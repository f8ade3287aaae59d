// A tiny blocking HTTP/1.1 client over POSIX sockets for tests (Connection: close), so test
// binaries need not compile Beast.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace devin_orch::testing {

struct HttpReply {
  int status = 0;  // 0: no response (connection failed or closed early)
  std::string headers;
  std::string body;
};

HttpReply http_call(int port, const std::string& method, const std::string& target,
                    const std::string& body = {},
                    const std::vector<std::pair<std::string, std::string>>& headers = {});

}  // namespace devin_orch::testing
