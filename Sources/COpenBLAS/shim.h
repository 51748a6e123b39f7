#ifndef CALM_COPENBLAS_SHIM_H
#define CALM_COPENBLAS_SHIM_H
#include <cblas.h>

/* OpenBLAS-specific thread controls; declared here so the module does not depend on
   which openblas_config.h variant Debian installed. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#endif
