// The dashboard's HTML escaping (html.hpp).
#include "devin_orch/app/dashboard/html.hpp"

#include "devin_orch/app/formats/diagnostic.hpp"

#include <cctype>

namespace devin_orch::app::dashboard {
namespace {

// Length of the valid UTF-8 sequence at the start of `text`, 0 if it is not one.
std::size_t utf8_sequence(std::string_view text) {
  const auto lead = static_cast<unsigned char>(text[0]);
  std::size_t length = 0;
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) length = 2;
  else if (lead >= 0xE0 && lead <= 0xEF) length = 3;
  else if (lead >= 0xF0 && lead <= 0xF4) length = 4;
  else return 0;
  if (text.size() < length) return 0;
  return is_valid_utf8(text.substr(0, length)) ? length : 0;
}

}  // namespace

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  while (!text.empty()) {
    const char c = text[0];
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '\0': out += "\xEF\xBF\xBD"; break;
      default: {
        const std::size_t length = utf8_sequence(text);
        if (length == 0) {
          out += "\xEF\xBF\xBD";
        } else {
          out.append(text.substr(0, length));
          text.remove_prefix(length - 1);
        }
      }
    }
    text.remove_prefix(1);
  }
  return out;
}

std::string safe_href(std::string_view url) {
  const auto starts = [&](std::string_view scheme) {
    if (url.size() < scheme.size()) return false;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(url[i])) != scheme[i]) return false;
    }
    return true;
  };
  if (!starts("https://") && !starts("http://")) return {};
  return escape_html(url);
}

}  // namespace devin_orch::app::dashboard
