// Declarations only (include/libfuzzer_driver.h); libFuzzer itself comes from -sanitize=fuzzer.
#include "libfuzzer_driver.h"
