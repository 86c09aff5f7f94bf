/* spike_sim guest runtime: HTIF console and exit, trap reporting, C start-up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spike_sim.h"

volatile uint64_t tohost __attribute__((section(".tohost"), aligned(64)));
volatile uint64_t fromhost __attribute__((section(".tohost"), aligned(64)));

static volatile uint64_t magic_mem[8] __attribute__((aligned(64)));

/* Which half of the accumulator the next hardware loop uses (see gemmini.h). */
unsigned gemmini_acc_half;
uint32_t gemmini_mesh_block;

static void htif_syscall(uint64_t n, uint64_t a0, uint64_t a1, uint64_t a2) {
  magic_mem[0] = n;
  magic_mem[1] = a0;
  magic_mem[2] = a1;
  magic_mem[3] = a2;
  __sync_synchronize();
  tohost = (uint64_t)(uintptr_t)magic_mem;
  while (fromhost == 0) {
  }
  fromhost = 0;
  __sync_synchronize();
}

#define CONSOLE_BUF 512
static char console_buf[CONSOLE_BUF];
static unsigned console_len;

void spike_sim_console_flush(void) {
  if (console_len) {
    htif_syscall(64 /* SYS_write */, 1, (uint64_t)(uintptr_t)console_buf, console_len);
    console_len = 0;
  }
}

void spike_sim_putchar(char c) {
  console_buf[console_len++] = c;
  if (c == '\n' || console_len == CONSOLE_BUF) spike_sim_console_flush();
}

static int stdio_put(char c, FILE* f) {
  (void)f;
  spike_sim_putchar(c);
  return (unsigned char)c;
}
static int stdio_flush(FILE* f) {
  (void)f;
  spike_sim_console_flush();
  return 0;
}
static FILE stdio_stream = FDEV_SETUP_STREAM(stdio_put, NULL, stdio_flush, _FDEV_SETUP_WRITE);
FILE* const stdin = &stdio_stream;
FILE* const stdout = &stdio_stream;
FILE* const stderr = &stdio_stream;

static void put_str(const char* s) {
  while (*s) spike_sim_putchar(*s++);
}
static void put_u64(uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) spike_sim_putchar(tmp[--n]);
}
static void put_hex(uint64_t v) {
  put_str("0x");
  for (int i = 60; i >= 0; i -= 4) spike_sim_putchar("0123456789abcdef"[(v >> i) & 15]);
}

/* Ends the run: waits for the accelerator (fence), reports cycles and instructions on a
   marker line the runner strips, then tells the host the exit code. */
void _exit(int code) {
  __asm__ volatile("fence" ::: "memory");
  uint64_t cycles = spike_sim_rdcycle();
  uint64_t instret = spike_sim_rdinstret();
  spike_sim_console_flush();
  put_str("\n@@spike_sim exit=");
  put_u64((uint64_t)(unsigned)code);
  put_str(" cycles=");
  put_u64(cycles);
  put_str(" instret=");
  put_u64(instret);
  put_str("\n");
  spike_sim_console_flush();
  uint64_t c = (uint64_t)(code & 0x7fffffff);
  if (c == 0 && code != 0) c = 1;
  while (1) tohost = (c << 1) | 1;
}

static const char* cause_name(uint64_t cause) {
  switch (cause) {
    case 0: return "instruction address misaligned";
    case 1: return "instruction access fault";
    case 2: return "illegal instruction";
    case 3: return "breakpoint";
    case 4: return "load address misaligned";
    case 5: return "load access fault";
    case 6: return "store address misaligned";
    case 7: return "store access fault";
    case 8: case 9: case 11: return "environment call";
    case 12: return "instruction page fault";
    case 13: return "load page fault";
    case 15: return "store page fault";
    default: return "unknown trap";
  }
}

/* Any trap ends the program with exit code SPIKE_SIM_TRAP_EXIT_BASE + mcause. */
void spike_sim_trap(uint64_t mcause, uint64_t mepc, uint64_t mtval) {
  spike_sim_console_flush();
  put_str("\n@@spike_sim trap: ");
  put_str(cause_name(mcause & 0xff));
  put_str(" mcause=");
  put_u64(mcause);
  put_str(" mepc=");
  put_hex(mepc);
  put_str(" mtval=");
  put_hex(mtval);
  put_str("\n");
  _exit((int)(SPIKE_SIM_TRAP_EXIT_BASE + (mcause & 0x3f)));
}

extern char __bss_start[], __bss_end[];
int main(void);

void spike_sim_start(void) {
  memset(__bss_start, 0, (size_t)(__bss_end - __bss_start));
  exit(main());
}
