#include <cblas.h>
// OpenBLAS extensions (declared in OpenBLAS's cblas.h; repeated here so the shim documents what we use).
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
