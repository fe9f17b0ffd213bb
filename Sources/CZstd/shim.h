#ifndef RGW_CZSTD_SHIM_H
#define RGW_CZSTD_SHIM_H
#include <zstd.h>
#endif
