/* The kernels are static inline in include/csd_kernels.h; this file only gives the SwiftPM C target a source. */
#include "csd_kernels.h"
