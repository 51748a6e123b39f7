#ifndef CALM_CHDF5_SHIM_H
#define CALM_CHDF5_SHIM_H
#include <hdf5/serial/hdf5.h>

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

/* Silence HDF5's own error-stack printing: the Swift layer reports errors itself. */
static inline void calm_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
#endif
