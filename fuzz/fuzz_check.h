// A property a fuzz target checks on top of "no crash": a failure aborts, so libFuzzer keeps
// the input as a crash like any sanitizer report.
#pragma once

#include <cstdio>
#include <cstdlib>

#define RUNAHEAD_FUZZ_CHECK(condition, what)                                                     \
  do {                                                                                           \
    if (!(condition)) {                                                                          \
      std::fprintf(stderr, "%s:%d: fuzz property violated: %s (%s)\n", __FILE__, __LINE__, what, \
                   #condition);                                                                  \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)
