/* The ABI of the kernels that TVM's C target emits (packed-function form), declared here so
 * that a model builds with no TVM headers and no libtvm. TVM 0.27 emits every PrimFunc as
 *   int32_t __tvm_ffi_<name>(void *self, void *args, int32_t num_args, void *result)
 * where args is an array of TVMFFIAny whose v_ptr points to a DLTensor. The layouts below are
 * the DLPack DLTensor and the tvm-ffi TVMFFIAny (both stable C ABIs). */
#ifndef TVM_ACCEL_KERNEL_ABI_H_
#define TVM_ACCEL_KERNEL_ABI_H_
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TVM_DLL
#define TVM_DLL
#endif

typedef struct { int32_t device_type; int32_t device_id; } DLDevice;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;
typedef struct {
  void *data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t *shape;
  int64_t *strides;
  uint64_t byte_offset;
} DLTensor;

/* tvm-ffi type index of a raw DLTensor* argument. */
#define TVM_ACCEL_FFI_DLTENSOR_PTR 7

typedef struct {
  int32_t type_index;
  union { uint32_t zero_padding; uint32_t small_str_len; };
  union {
    int64_t v_int64;
    double v_float64;
    void *v_ptr;
    const char *v_c_str;
  };
} TVMFFIAny;

typedef int32_t (*tvm_accel_kernel_fn)(void *self, void *args, int32_t num_args, void *result);

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes, int dtype_code_hint,
                               int dtype_bits_hint);
int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr);
void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **parts, int32_t num_parts);
/* Points TVMBackendAllocWorkspace at the planned arena region of the next kernel call. */
void tvm_accel_set_workspace(void *base, uint32_t bytes);

#ifdef __cplusplus
}
#endif
#endif
