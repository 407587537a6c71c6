// Shared between the oneDNN glue files; not part of the module's interface.
#pragma once
#include <dnnl.h>

/// The process's oneDNN CPU engine (created on first use), or NULL when oneDNN is disabled
/// or unavailable.
dnnl_engine_t sprout_dnnl_engine(void);
