#ifndef SPROUT_LIBFUZZER_DRIVER_H
#define SPROUT_LIBFUZZER_DRIVER_H
#include <stddef.h>
#include <stdint.h>

// libFuzzer's entry for programs with their own main (compiler-rt, LLVM >= 11): parses
// libFuzzer's flags from argc/argv and calls `callback` with each input.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
