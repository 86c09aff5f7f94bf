/* Test harness for a generated model: reads input.bin (any number of samples, each all the
 * model's inputs concatenated), runs the model on each, writes output.bin (each sample's
 * outputs concatenated). The same file runs on the host (stdio) and on Cortex-M under QEMU
 * (semihosting). Inputs are read straight into the arena, outputs written from it. */
#include <stdint.h>
#include "model.h"
#include "tvm_accel_platform.h"

int main(void) {
  int in = tva_open("input.bin", 0);
  int out = tva_open("output.bin", 1);
  if (in < 0 || out < 0) {
    tva_puts("error: cannot open input.bin / output.bin\n");
    return 2;
  }
  unsigned long samples = 0;
  for (;;) {
    for (int i = 0; i < MODEL_NUM_INPUTS; ++i) {
      long got = tva_read(in, model_input(i), model_input_bytes[i]);
      if (got == 0 && i == 0) goto done;
      if (got != (long)model_input_bytes[i]) {
        tva_puts("error: input.bin ends inside a sample\n");
        return 3;
      }
    }
    int rc = model_invoke();
    if (rc != 0) {
      tva_puts("error: model_invoke failed in operator ");
      tva_put_uint((unsigned long)rc);
      tva_puts("\n");
      return 4;
    }
    for (int i = 0; i < MODEL_NUM_OUTPUTS; ++i) {
      if (tva_write(out, model_output(i), model_output_bytes[i]) != 0) {
        tva_puts("error: cannot write output.bin\n");
        return 5;
      }
    }
    ++samples;
  }
done:
  tva_close(in);
  tva_close(out);
  tva_puts("tvm-accel: ran ");
  tva_put_uint(samples);
  tva_puts(" sample(s)\n");
  return 0;
}
