/* Hand-written bare-metal check of a board's memory map under QEMU: writes and reads back the
 * first and last words of the RAM region and reads the last word of the FLASH region (a missing
 * memory raises a BusFault, which the startup code reports as exit code 73), runs a little
 * float and integer arithmetic, and exits with 0 through semihosting. */
#include <stdint.h>
#include "tvm_accel_platform.h"

extern uint32_t __ram_first[], __ram_last[], __flash_last[];

int main(void) {
  volatile uint32_t *first = __ram_first, *last = __ram_last;
  *first = 0xA5A5F00Du;
  *last = 0x5A5A0FF0u;
  if (*first != 0xA5A5F00Du || *last != 0x5A5A0FF0u) {
    tva_puts("memory_map: RAM readback failed\n");
    return 1;
  }
  volatile uint32_t flash_word = *(volatile uint32_t *)__flash_last;
  (void)flash_word;
  volatile float a = 1.5f, b = 2.25f;
  volatile int32_t x = -7, y = 3;
  if (a * b != 3.375f || x / y != -2 || (x >> 1) != -4) {
    tva_puts("memory_map: arithmetic failed\n");
    return 2;
  }
  tva_puts("memory_map: ok\n");
  return 0;
}
