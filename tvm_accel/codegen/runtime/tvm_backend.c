/* The support functions TVM's C kernels call, for a bare-metal model with no libtvm.
 * Workspace: intermediate buffers of a kernel larger than TVM's stack limit are requested with
 * TVMBackendAllocWorkspace and freed in reverse order before the kernel returns. The memory
 * plan gives each such kernel a region of the arena (alive only while the kernel runs);
 * model.c points the allocator at it with tvm_accel_set_workspace before the call, and the
 * allocator bumps through it. */
#include "tvm_accel_kernel_abi.h"
#include "tvm_accel_platform.h"

static uint8_t *workspace_base;
static uint32_t workspace_bytes, workspace_top;

void tvm_accel_set_workspace(void *base, uint32_t bytes) {
  workspace_base = (uint8_t *)base;
  workspace_bytes = bytes;
  workspace_top = 0;
}

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes, int dtype_code_hint,
                               int dtype_bits_hint) {
  (void)device_type; (void)device_id; (void)dtype_code_hint; (void)dtype_bits_hint;
  uint32_t start = (workspace_top + 15u) & ~15u;
  if (workspace_base == NULL || start > workspace_bytes || nbytes > (uint64_t)(workspace_bytes - start)) {
    tva_puts("tvm-accel: kernel workspace request exceeds its planned region\n");
    return NULL;
  }
  workspace_top = start + (uint32_t)nbytes;
  return workspace_base + start;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr) {
  (void)device_type; (void)device_id;
  uint8_t *p = (uint8_t *)ptr;
  if (workspace_base == NULL || p < workspace_base || p > workspace_base + workspace_bytes) return -1;
  workspace_top = (uint32_t)(p - workspace_base); /* requests are freed last-in first-out */
  return 0;
}

void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **parts, int32_t num_parts) {
  tva_puts("tvm-accel kernel error: ");
  tva_puts(kind);
  tva_puts(": ");
  for (int32_t i = 0; i < num_parts; ++i) tva_puts(parts[i]);
  tva_puts("\n");
}
