#ifndef RGW_CLIBDEFLATE_SHIM_H
#define RGW_CLIBDEFLATE_SHIM_H
#include <libdeflate.h>
#endif
