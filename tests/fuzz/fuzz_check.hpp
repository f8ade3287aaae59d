// A property check for fuzz targets: a violated property aborts with a message, which libFuzzer
// records as a crash together with the input that caused it.
#pragma once

#include <cstdio>
#include <cstdlib>

#define DEVIN_ORCH_FUZZ_CHECK(condition, message)                                  \
  do {                                                                             \
    if (!(condition)) {                                                            \
      std::fprintf(stderr, "fuzz property violated: %s (%s:%d)\n", message,        \
                   __FILE__, __LINE__);                                            \
      std::abort();                                                                \
    }                                                                              \
  } while (false)
