/* Startup for bare-metal guests on Spike: trap vector, stack, global pointer, FPU, then C. */
  .section .text.init, "ax"
  .globl _start
_start:
  la t0, spike_sim_trap_entry
  csrw mtvec, t0
  li t0, (1 << 13)          /* mstatus.FS = initial: enable the FPU */
  csrs mstatus, t0
  csrwi fcsr, 0
.option push
.option norelax
  la gp, __global_pointer$
.option pop
  la sp, __stack_top
  la tp, __tls_base
  call spike_sim_start      /* never returns */
1: j 1b

  .align 4
  .globl spike_sim_trap_entry
spike_sim_trap_entry:
  la sp, __stack_top
  csrr a0, mcause
  csrr a1, mepc
  csrr a2, mtval
  call spike_sim_trap       /* never returns */
2: j 2b
