/* spike_sim guest runtime: console, exit, counters. Link with the runtime (spike_sim.build). */
#ifndef SPIKE_SIM_H
#define SPIKE_SIM_H
#include <stdint.h>

/* A trap exits with this code plus mcause (e.g. 130 for an illegal instruction). */
#define SPIKE_SIM_TRAP_EXIT_BASE 128

static inline uint64_t spike_sim_rdcycle(void) {
  uint64_t v;
  __asm__ volatile("rdcycle %0" : "=r"(v));
  return v;
}
static inline uint64_t spike_sim_rdinstret(void) {
  uint64_t v;
  __asm__ volatile("rdinstret %0" : "=r"(v));
  return v;
}

void spike_sim_putchar(char c);
void spike_sim_console_flush(void);

#endif
