/* Reset and fault handling for Cortex-M: copy .data, clear .bss, enable the FPU, run main,
 * report the exit code through semihosting. A fault prints its name and exits with code 70+n
 * so a crashed run never hangs. The vector table goes first in FLASH (section .vectors). */
#include <stdint.h>
#include "tvm_accel_platform.h"

extern uint32_t __data_start[], __data_end[], __data_load[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];
int main(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void) {
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  SCB_CPACR |= (0xFu << 20); /* CP10, CP11: full access */
  __asm__ volatile("dsb\n isb" ::: "memory");
#endif
  volatile uint32_t *src = __data_load;
  for (volatile uint32_t *dst = __data_start; dst < __data_end;) *dst++ = *src++;
  for (volatile uint32_t *dst = __bss_start; dst < __bss_end;) *dst++ = 0;
  tva_exit(main());
}

static void fault(const char *name, int code) {
  tva_puts("fault: ");
  tva_puts(name);
  tva_puts("\n");
  tva_exit(code);
}
void NMI_Handler(void) { fault("NMI", 70); }
void HardFault_Handler(void) { fault("HardFault", 71); }
void MemManage_Handler(void) { fault("MemManage", 72); }
void BusFault_Handler(void) { fault("BusFault", 73); }
void UsageFault_Handler(void) { fault("UsageFault", 74); }
void SecureFault_Handler(void) { fault("SecureFault", 75); }
void Default_Handler(void) { fault("unexpected interrupt", 76); }

typedef void (*vector_fn)(void);
__attribute__((section(".vectors"), used)) const vector_fn tvm_accel_vectors[16] = {
    (vector_fn)__stack_top, Reset_Handler, NMI_Handler, HardFault_Handler, MemManage_Handler,
    BusFault_Handler, UsageFault_Handler, SecureFault_Handler, 0, 0, 0,
    Default_Handler /* SVC */, Default_Handler /* DebugMon */, 0, Default_Handler /* PendSV */,
    Default_Handler /* SysTick */,
};
