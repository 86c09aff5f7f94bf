/* Harness of a whole model on Spike (spike_sim's bare-metal runtime): runs the model on each
 * sample of tva_inputs (generated next to the package), prints each sample's outputs as hex
 * and, per sample, the cycles of the whole model and of every Gemmini layer:
 *   @@tva sample S cycles C
 *   @@tva layer S L cycles C accel A   (A: the Gemmini part, from the first tile to the fence)
 *   @@tva out S I <hex bytes>
 * The platform services of the kernels' support code are in tva_spike_platform.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "spike_sim.h"
#include "tvm_accel_platform.h"

extern const uint8_t tva_inputs[];
extern const uint32_t tva_num_samples;

#define TVA_MAX_LAYERS 4096
static uint64_t layer_cycles[TVA_MAX_LAYERS], layer_accel[TVA_MAX_LAYERS];
static int layers_seen;

void tva_gemmini_layer_done(int layer, uint64_t cycles, uint64_t accel_cycles) {
  if (layer < 0 || layer >= TVA_MAX_LAYERS) return;
  layer_cycles[layer] = cycles;
  layer_accel[layer] = accel_cycles;
  if (layer + 1 > layers_seen) layers_seen = layer + 1;
}

#ifdef TVA_GEMMINI_PROFILE
/* @@tva profile L instret I load_busy B execute_busy B store_busy B bytes_in N bytes_out N computes N */
void tva_gemmini_layer_profile(int layer, const uint64_t *v) {
  printf("@@tva profile %d instret %llu load_busy %llu execute_busy %llu store_busy %llu bytes_in %llu bytes_out %llu "
         "computes %llu\n", layer, (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2],
         (unsigned long long)v[3], (unsigned long long)v[4], (unsigned long long)v[5], (unsigned long long)v[6]);
}
#endif


int main(void) {
  uint32_t in_total = 0;
  for (int i = 0; i < MODEL_NUM_INPUTS; ++i) in_total += model_input_bytes[i];
  for (uint32_t s = 0; s < tva_num_samples; ++s) {
    const uint8_t *src = tva_inputs + (uint64_t)s * in_total;
    for (int i = 0; i < MODEL_NUM_INPUTS; ++i) {
      memcpy(model_input(i), src, model_input_bytes[i]);
      src += model_input_bytes[i];
    }
    layers_seen = 0;
    uint64_t c0 = spike_sim_rdcycle();
    int rc = model_invoke();
    __asm__ volatile("fence" ::: "memory");
    uint64_t c1 = spike_sim_rdcycle();
    if (rc != 0) {
      printf("@@tva error: model_invoke failed in step %d\n", rc - 1);
      return 4;
    }
    printf("@@tva sample %u cycles %llu\n", (unsigned)s, (unsigned long long)(c1 - c0));
    for (int l = 0; l < layers_seen; ++l)
      printf("@@tva layer %u %d cycles %llu accel %llu\n", (unsigned)s, l, (unsigned long long)layer_cycles[l],
             (unsigned long long)layer_accel[l]);
    for (int i = 0; i < MODEL_NUM_OUTPUTS; ++i) {
      const uint8_t *o = (const uint8_t *)model_output(i);
      printf("@@tva out %u %d ", (unsigned)s, i);
      for (uint32_t b = 0; b < model_output_bytes[i]; ++b) printf("%02x", o[b]);
      printf("\n");
    }
  }
  return 0;
}
