/* Harness of ONE offloaded layer on Spike (spike.run_layer): the generated function of the layer
 * (the codegen's C, unchanged) is called on each sample of tva_layer_inputs, with its workspace
 * in a static buffer; prints per sample
 *   @@tva layer S 0 cycles C accel A
 *   @@tva out S 0 <hex bytes>
 * Compile with -DTVA_LAYER_FN=<the function> -DTVA_IN_BYTES=.. -DTVA_OUT_BYTES=.. -DTVA_WS_BYTES=..
 * and the generated inputs (tva_layer_inputs, tva_num_samples); platform services:
 * tva_spike_platform.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spike_sim.h"
#include "tvm_accel_kernel_abi.h"
#include "tvm_accel_platform.h"

extern const uint8_t tva_layer_inputs[];
extern const uint32_t tva_num_samples;
int32_t TVA_LAYER_FN(void *self, void *args, int32_t num_args, void *result);
void tvm_accel_set_workspace(void *base, uint32_t bytes);

static int8_t in_buf[TVA_IN_BYTES] __attribute__((aligned(64)));
static int8_t out_buf[TVA_OUT_BYTES] __attribute__((aligned(64)));
static uint8_t ws_buf[TVA_WS_BYTES] __attribute__((aligned(64)));
static uint64_t last_cycles, last_accel;

void tva_gemmini_layer_done(int layer, uint64_t cycles, uint64_t accel_cycles) {
  (void)layer;
  last_cycles = cycles;
  last_accel = accel_cycles;
}

#ifdef TVA_GEMMINI_PROFILE
void tva_gemmini_layer_profile(int layer, const uint64_t *v) { (void)layer; (void)v; }
#endif


int main(void) {
  DLTensor tin = {(void *)in_buf, {1, 0}, 1, {0, 8, 1}, NULL, NULL, 0};
  DLTensor tout = {(void *)out_buf, {1, 0}, 1, {0, 8, 1}, NULL, NULL, 0};
  TVMFFIAny args[2] = {{.type_index = TVM_ACCEL_FFI_DLTENSOR_PTR, .v_ptr = (void *)&tin},
                       {.type_index = TVM_ACCEL_FFI_DLTENSOR_PTR, .v_ptr = (void *)&tout}};
  for (uint32_t s = 0; s < tva_num_samples; ++s) {
    memcpy(in_buf, tva_layer_inputs + (uint64_t)s * TVA_IN_BYTES, TVA_IN_BYTES);
    tvm_accel_set_workspace(ws_buf, TVA_WS_BYTES);
    int rc = TVA_LAYER_FN(NULL, args, 2, NULL);
    if (rc != 0) {
      printf("@@tva error: the layer returned %d\n", rc);
      return 4;
    }
    printf("@@tva layer %u 0 cycles %llu accel %llu\n", (unsigned)s, (unsigned long long)last_cycles,
           (unsigned long long)last_accel);
    printf("@@tva out %u 0 ", (unsigned)s);
    for (uint32_t b = 0; b < TVA_OUT_BYTES; ++b) printf("%02x", (uint8_t)out_buf[b]);
    printf("\n");
  }
  return 0;
}
