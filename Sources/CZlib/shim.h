#ifndef RGW_CZLIB_SHIM_H
#define RGW_CZLIB_SHIM_H
#include <zlib.h>

/* zlib's inflateInit2 is a macro; Swift cannot import it. */
static inline int rgw_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
#endif
