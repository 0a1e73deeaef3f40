/* zlib for the host packer's data-set reader (gzipped IDX files). */
#include <zlib.h>
