// Boost.JSON compiled into our own library (DEVIN_ORCH_STATIC_CXX_DEPS) instead of linked from
// Debian's libboost_json.a: built with our flags, one section per function, so the linker can
// keep the parser code the daemon runs together with the rest of its working set.
#include <boost/json/src.hpp>
