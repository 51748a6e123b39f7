#ifndef CALM_CHDF5_SHIM_H
#define CALM_CHDF5_SHIM_H
#include <hdf5/serial/hdf5.h>
#include <stdint.h>
#include <string.h>

/* HDF5 exposes its type ids and property defaults as macros that expand to global
   variables behind H5open(); Swift cannot import such macros, so they are wrapped here. */
static inline hid_t calm_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t calm_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t calm_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t calm_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t calm_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t calm_h5t_std_u8le(void) { return H5T_STD_U8LE; }
static inline hid_t calm_h5t_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t calm_h5t_std_u16le(void) { return H5T_STD_U16LE; }
static inline hid_t calm_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t calm_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t calm_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t calm_h5s_all(void) { return H5S_ALL; }
static inline hid_t calm_h5e_default(void) { return H5E_DEFAULT; }
static inline unsigned calm_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned calm_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned calm_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline size_t calm_h5t_variable(void) { return H5T_VARIABLE; }

/* File-format bounds: HDF5 1.8 formats (superblock v2, object header v2, B-tree v2, fractal
   heap) carry checksums over the file's metadata, which the 1.6-era default formats lack. */
static inline H5F_libver_t calm_h5f_libver_v18(void) { return H5F_LIBVER_V18; }
static inline H5F_libver_t calm_h5f_libver_latest(void) { return H5F_LIBVER_LATEST; }
static inline hid_t calm_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t calm_h5p_file_create(void) { return H5P_FILE_CREATE; }
static inline hid_t calm_h5p_group_create(void) { return H5P_GROUP_CREATE; }

/* Silence HDF5's own error-stack printing: the Swift layer reports errors itself. */
static inline void calm_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* XXH64 (xxHash's 64-bit hash, seed 0) over tensor bytes. HDF5's Fletcher32 filter verifies at
   under a third of the speed of reading the file, so tensors carry this hash instead, written
   here in C so that the loop compiles to a few instructions per 8 bytes. */
#define CALM_XXH_P1 0x9E3779B185EBCA87ULL
#define CALM_XXH_P2 0xC2B2AE3D27D4EB4FULL
#define CALM_XXH_P3 0x165667B19E3779F9ULL
#define CALM_XXH_P4 0x85EBCA77C2B2AE63ULL
#define CALM_XXH_P5 0x27D4EB2F165667C5ULL

static inline uint64_t calm_xxh_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* Reads little-endian words whatever the host, so a hash means the same bytes everywhere. */
static inline uint64_t calm_xxh_read64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint32_t calm_xxh_read32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline uint64_t calm_xxh_round(uint64_t acc, uint64_t input) {
    acc += input * CALM_XXH_P2;
    return calm_xxh_rotl(acc, 31) * CALM_XXH_P1;
}

static inline uint64_t calm_xxh_merge(uint64_t acc, uint64_t v) {
    acc ^= calm_xxh_round(0, v);
    return acc * CALM_XXH_P1 + CALM_XXH_P4;
}

static inline uint64_t calm_xxh64(const void *data, size_t length) {
    const unsigned char *p = (const unsigned char *)data, *end = p + length;
    uint64_t h;
    if (length >= 32) {
        uint64_t v1 = CALM_XXH_P1 + CALM_XXH_P2, v2 = CALM_XXH_P2, v3 = 0, v4 = 0 - CALM_XXH_P1;
        const unsigned char *limit = end - 32;
        do {
            v1 = calm_xxh_round(v1, calm_xxh_read64(p));
            v2 = calm_xxh_round(v2, calm_xxh_read64(p + 8));
            v3 = calm_xxh_round(v3, calm_xxh_read64(p + 16));
            v4 = calm_xxh_round(v4, calm_xxh_read64(p + 24));
            p += 32;
        } while (p <= limit);
        h = calm_xxh_rotl(v1, 1) + calm_xxh_rotl(v2, 7) + calm_xxh_rotl(v3, 12) + calm_xxh_rotl(v4, 18);
        h = calm_xxh_merge(h, v1);
        h = calm_xxh_merge(h, v2);
        h = calm_xxh_merge(h, v3);
        h = calm_xxh_merge(h, v4);
    } else {
        h = CALM_XXH_P5;
    }
    h += (uint64_t)length;
    for (; p + 8 <= end; p += 8) {
        h ^= calm_xxh_round(0, calm_xxh_read64(p));
        h = calm_xxh_rotl(h, 27) * CALM_XXH_P1 + CALM_XXH_P4;
    }
    if (p + 4 <= end) {
        h ^= (uint64_t)calm_xxh_read32(p) * CALM_XXH_P1;
        h = calm_xxh_rotl(h, 23) * CALM_XXH_P2 + CALM_XXH_P3;
        p += 4;
    }
    for (; p < end; p++) {
        h ^= (uint64_t)(*p) * CALM_XXH_P5;
        h = calm_xxh_rotl(h, 11) * CALM_XXH_P1;
    }
    h ^= h >> 33;
    h *= CALM_XXH_P2;
    h ^= h >> 29;
    h *= CALM_XXH_P3;
    h ^= h >> 32;
    return h;
}
#endif
