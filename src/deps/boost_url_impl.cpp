// Boost.URL compiled into our own library (DEVIN_ORCH_STATIC_CXX_DEPS) instead of linked from
// Debian's libboost_url.a, for the same reason as boost_json_impl.cpp: our flags, one section
// per function, so the URL parser's pages can sit with the daemon's other working code.
#include <boost/url/src.hpp>
