/* The support functions TVM's C kernels call, for a bare-metal model with no libtvm.
 * Workspace: intermediate buffers of a kernel larger than TVM's stack limit are requested with
 * TVMBackendAllocWorkspace and freed in reverse order before the kernel returns, so a bump
 * allocator over one static pool suffices. The pool (tvm_accel_workspace) and its size are
 * defined by the generated model.c: the emitter sizes it to the largest sum of a kernel's
 * requests. */
#include "tvm_accel_kernel_abi.h"
#include "tvm_accel_platform.h"

extern uint8_t tvm_accel_workspace[];
extern const uint32_t tvm_accel_workspace_bytes;

static uint32_t workspace_top;

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes, int dtype_code_hint,
                               int dtype_bits_hint) {
  (void)device_type; (void)device_id; (void)dtype_code_hint; (void)dtype_bits_hint;
  uint32_t start = (workspace_top + 15u) & ~15u;
  if (nbytes > (uint64_t)(tvm_accel_workspace_bytes - start) || start > tvm_accel_workspace_bytes) {
    tva_puts("tvm-accel: workspace pool exhausted\n");
    return NULL;
  }
  workspace_top = start + (uint32_t)nbytes;
  return tvm_accel_workspace + start;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr) {
  (void)device_type; (void)device_id;
  uint8_t *p = (uint8_t *)ptr;
  if (p < tvm_accel_workspace || p > tvm_accel_workspace + tvm_accel_workspace_bytes) return -1;
  workspace_top = (uint32_t)(p - tvm_accel_workspace); /* requests are freed last-in first-out */
  return 0;
}

void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **parts, int32_t num_parts) {
  tva_puts("tvm-accel kernel error: ");
  tva_puts(kind);
  tva_puts(": ");
  for (int32_t i = 0; i < num_parts; ++i) tva_puts(parts[i]);
  tva_puts("\n");
}
