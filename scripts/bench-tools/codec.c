/* Codec cost on real archive text: reads uncompressed text on stdin, cuts it into members of
 * MEMBER bytes (the backup's 4 MiB chunks), and for libdeflate gzip levels 1, 5 (the backup's default)
 * and 6 and zstd levels 1-3 compresses and decompresses every member on one thread, printing per codec the output size and
 * the CPU seconds of each direction (CLOCK_PROCESS_CPUTIME_ID).
 *
 *   gcc -O2 -o codec codec.c -ldeflate -lzstd && gzip -dc ARCHIVE | ./codec [MEMBER]
 *
 * scripts/bench --only codec builds and runs it (issue 18, target 5: zstd decided by measurement). */
#include <libdeflate.h>
#include <zstd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    size_t member = argc > 1 ? (size_t)atol(argv[1]) : (size_t)4 << 20;
    size_t cap = (size_t)1 << 30, len = 0;
    unsigned char *in = malloc(cap);
    for (size_t n; (n = fread(in + len, 1, cap - len, stdin)) > 0;) {
        len += n;
        if (len == cap) in = realloc(in, cap *= 2);
    }
    size_t bound = ZSTD_compressBound(member) + libdeflate_gzip_compress_bound(NULL, member) + 65536;
    unsigned char *out = malloc(bound), *back = malloc(member);
    printf("input %.1f MB in %zu members of %zu bytes\n", len / 1e6, (len + member - 1) / member, member);
    printf("%-12s %12s %8s %14s %14s\n", "codec", "size MB", "ratio", "compress s", "decompress s");
    /* gzip levels as negative numbers, zstd levels as positive ones */
    static const int codecs[] = {-1, -5, -6, 1, 2, 3};
    for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++) {
        int gzip = codecs[c] < 0, level = gzip ? -codecs[c] : codecs[c];
        struct libdeflate_compressor *dc = gzip ? libdeflate_alloc_compressor(level) : NULL;
        struct libdeflate_decompressor *dd = libdeflate_alloc_decompressor();
        ZSTD_CCtx *zc = ZSTD_createCCtx();
        ZSTD_DCtx *zd = ZSTD_createDCtx();
        double ctime = 0, dtime = 0;
        size_t total = 0;
        for (size_t off = 0; off < len; off += member) {
            size_t n = len - off < member ? len - off : member, size;
            double t0 = cpu();
            if (gzip) size = libdeflate_gzip_compress(dc, in + off, n, out, bound);
            else size = ZSTD_compressCCtx(zc, out, bound, in + off, n, level);
            double t1 = cpu();
            if (gzip ? size == 0 : ZSTD_isError(size)) { fprintf(stderr, "compress failed\n"); return 1; }
            size_t got = 0;
            if (gzip) {
                if (libdeflate_gzip_decompress(dd, out, size, back, n, &got) != LIBDEFLATE_SUCCESS) got = 0;
            } else {
                got = ZSTD_decompressDCtx(zd, back, n, out, size);
            }
            double t2 = cpu();
            if (got != n || memcmp(back, in + off, n) != 0) { fprintf(stderr, "round trip failed\n"); return 1; }
            ctime += t1 - t0; dtime += t2 - t1; total += size;
        }
        char name[32];
        snprintf(name, sizeof name, "%s-%d", gzip ? "gzip" : "zstd", level);
        printf("%-12s %12.1f %8.3f %14.2f %14.2f\n", name, total / 1e6, (double)total / len, ctime, dtime);
        if (dc) libdeflate_free_compressor(dc);
        libdeflate_free_decompressor(dd);
        ZSTD_freeCCtx(zc);
        ZSTD_freeDCtx(zd);
    }
    return 0;
}
