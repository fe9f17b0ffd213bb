#ifndef RGW_CLIBPQ_SHIM_H
#define RGW_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
