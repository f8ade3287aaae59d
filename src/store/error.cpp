// store::Error's message and its exception for StoreResult<T>::value().
#include "devin_orch/store/error.hpp"

#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

namespace devin_orch::store {

std::string Error::message() const {
  if (detail.empty()) return code.message();
  return code.message() + " (" + detail + ")";
}

std::ostream& operator<<(std::ostream& out, const Error& error) { return out << error.message(); }

void throw_exception_from_error(const Error& error, const boost::source_location& location) {
  boost::throw_exception(boost::system::system_error(error.code, error.detail), location);
}

}  // namespace devin_orch::store
