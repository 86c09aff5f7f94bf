/* Reset and fault handling for Cortex-M: copy .data, clear .bss, enable the FPU, run main,
 * report the exit code through semihosting. A fault prints its name and exits with code 70+n
 * so a crashed run never hangs. The vector table goes first in FLASH (section .vectors). */
#include <stdint.h>
#include "tvm_accel_platform.h"

extern uint32_t __data_start[], __data_end[], __data_load[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[], __stack_limit[];
int main(void);

/* The stack is painted before main and scanned after it: the high-water mark, printed as
 * "stack high-water: N bytes", checks the worst case computed from the call graph. */
#define STACK_PAINT 0x5AC3A55Cu

__attribute__((noinline)) static void paint_stack(void) {
  uint32_t *sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  for (volatile uint32_t *p = __stack_limit; p < sp - 16;) *p++ = STACK_PAINT;
}

__attribute__((noinline)) static unsigned long stack_high_water(void) {
  const volatile uint32_t *p = __stack_limit;
  while (p < __stack_top && *p == STACK_PAINT) ++p;
  return (unsigned long)((const volatile uint8_t *)__stack_top - (const volatile uint8_t *)p);
}

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void) {
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  SCB_CPACR |= (0xFu << 20); /* CP10, CP11: full access */
  __asm__ volatile("dsb\n isb" ::: "memory");
#endif
  volatile uint32_t *src = __data_load;
  for (volatile uint32_t *dst = __data_start; dst < __data_end;) *dst++ = *src++;
  for (volatile uint32_t *dst = __bss_start; dst < __bss_end;) *dst++ = 0;
  paint_stack();
  int rc = main();
  tva_puts("tvm-accel: stack high-water ");
  tva_put_uint(stack_high_water());
  tva_puts(" bytes\n");
  tva_exit(rc);
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
