#ifndef RGW_CCRYPTO_SHIM_H
#define RGW_CCRYPTO_SHIM_H
#include <openssl/evp.h>
#endif
