/* Everything here is static inline in include/; this file only gives the SwiftPM C target a source. */
#include "csd_machine.h"
#include "csd_block_m4.h"
#include "csd_event_m4.h"
