// Text into HTML: the one escape function every page uses for text that is not ours (a job's
// prompt, title, tags, errors, any stored value), safe in element content and quoted attributes.
#pragma once

#include <string>
#include <string_view>

namespace devin_orch::app::dashboard {

// & < > " ' become entities; bytes that are not valid UTF-8 become U+FFFD, so the page stays
// valid text whatever a job holds. Use inside elements and double- or single-quoted attributes.
std::string escape_html(std::string_view text);

// A link target for a URL that came from outside (a session's or a pull request's): the URL
// escaped when it is http(s), else empty (a `javascript:` URL must never become a link).
std::string safe_href(std::string_view url);

}  // namespace devin_orch::app::dashboard
