/* Arm semihosting (the host-side services QEMU provides with -semihosting): no newlib stdio,
 * no heap. Every call is a BKPT 0xAB with the operation in r0 and a parameter block in r1. */
#include <stdint.h>
#include <string.h>
#include "tvm_accel_platform.h"

enum {
  SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE0 = 0x04, SYS_WRITE = 0x05, SYS_READ = 0x06,
  SYS_EXIT = 0x18, SYS_EXIT_EXTENDED = 0x20,
};
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static inline int semihost_call(int op, const void *param) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = param;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

int tva_open(const char *name, int write) {
  uint32_t block[3] = {(uint32_t)(uintptr_t)name, write ? 5u /* "wb" */ : 1u /* "rb" */,
                       (uint32_t)strlen(name)};
  return semihost_call(SYS_OPEN, block);
}

long tva_read(int handle, void *buf, unsigned long n) {
  uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, (uint32_t)n};
  int not_read = semihost_call(SYS_READ, block);
  if (not_read < 0 || (unsigned long)not_read > n) return -1;
  return (long)(n - (unsigned long)not_read);
}

int tva_write(int handle, const void *buf, unsigned long n) {
  uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, (uint32_t)n};
  return semihost_call(SYS_WRITE, block) == 0 ? 0 : -1;
}

void tva_close(int handle) {
  uint32_t block[1] = {(uint32_t)handle};
  semihost_call(SYS_CLOSE, block);
}

void tva_puts(const char *s) { semihost_call(SYS_WRITE0, s); }

void tva_put_uint(unsigned long v) {
  char buf[24];
  int i = (int)sizeof buf - 1;
  buf[i] = 0;
  do { buf[--i] = (char)('0' + v % 10u); v /= 10u; } while (v && i > 0);
  tva_puts(&buf[i]);
}

void tva_exit(int code) {
  uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
  semihost_call(SYS_EXIT_EXTENDED, block);
  for (;;) {
  }
}

/* newlib-nano's abort()/exit() paths end here. */
void _exit(int code) { tva_exit(code); }
