/* Gemmini instruction macros for bare-metal guests (spike_sim).
 *
 * Same encodings as Gemmini's ISA (RoCC custom-3, funct7 = command), written for this
 * project. The accelerator geometry comes from the build (spike_sim.build_program passes
 * -DGEMMINI_DIM=... from the configuration JSON); the defaults are Gemmini's default
 * configuration. See docs/spike_sim.md for the operand layouts and semantics.
 */
#ifndef SPIKE_SIM_GEMMINI_H
#define SPIKE_SIM_GEMMINI_H

#include <stdint.h>
#include <string.h>

#ifndef GEMMINI_DIM
#define GEMMINI_DIM 16
#endif
#ifndef GEMMINI_SP_BANKS
#define GEMMINI_SP_BANKS 4
#endif
#ifndef GEMMINI_SP_BANK_ROWS
#define GEMMINI_SP_BANK_ROWS 4096
#endif
#ifndef GEMMINI_ACC_ROWS
#define GEMMINI_ACC_ROWS 1024
#endif
#ifndef GEMMINI_DMA_MAX_BYTES
#define GEMMINI_DMA_MAX_BYTES 64
#endif

#define DIM GEMMINI_DIM
#define GEMMINI_SP_ROWS (GEMMINI_SP_BANKS * GEMMINI_SP_BANK_ROWS)
#define GEMMINI_MAX_BLOCK_LEN (GEMMINI_DMA_MAX_BYTES / DIM > 0 ? GEMMINI_DMA_MAX_BYTES / DIM : 1)
#define GEMMINI_MAX_BLOCK_LEN_ACC (GEMMINI_DMA_MAX_BYTES / (DIM * 4) > 0 ? GEMMINI_DMA_MAX_BYTES / (DIM * 4) : 1)
#define ADDR_LEN 32

typedef int8_t elem_t;
typedef int32_t acc_t;

/* funct7 of each command */
#define k_CONFIG 0
#define k_MVIN2 1
#define k_MVIN 2
#define k_MVOUT 3
#define k_COMPUTE_PRELOADED 4
#define k_COMPUTE_ACCUMULATE 5
#define k_PRELOAD 6
#define k_FLUSH 7
#define k_LOOP_WS 8
#define k_LOOP_WS_CONFIG_BOUNDS 9
#define k_LOOP_WS_CONFIG_ADDRS_AB 10
#define k_LOOP_WS_CONFIG_ADDRS_DC 11
#define k_LOOP_WS_CONFIG_STRIDES_AB 12
#define k_LOOP_WS_CONFIG_STRIDES_DC 13
#define k_MVIN3 14
#define k_LOOP_CONV_WS 15
#define k_LOOP_CONV_WS_CONFIG_1 16
#define k_LOOP_CONV_WS_CONFIG_2 17
#define k_LOOP_CONV_WS_CONFIG_3 18
#define k_LOOP_CONV_WS_CONFIG_4 19
#define k_LOOP_CONV_WS_CONFIG_5 20
#define k_LOOP_CONV_WS_CONFIG_6 21
#define k_COUNTER 126

/* CONFIG kinds (rs1[1:0]) */
#define CONFIG_EX 0
#define CONFIG_LD 1
#define CONFIG_ST 2
#define CONFIG_NORM 3

#define OUTPUT_STATIONARY 0
#define WEIGHT_STATIONARY 1
#define NO_ACTIVATION 0
#define RELU 1

/* Local addresses */
#define GARBAGE_ADDR ((uint32_t)0xFFFFFFFFu)
#define GEMMINI_ACC_ADDR ((uint32_t)1u << 31)       /* row in the accumulator */
#define GEMMINI_ACC_ACCUMULATE ((uint32_t)1u << 30) /* writes add instead of overwrite */
#define GEMMINI_ACC_FULL ((uint32_t)1u << 29)       /* reads: full int32, no scaling */

/* Hardware loops work in one half of the accumulator: a loop that writes its output to DRAM
 * hands the other half to the next loop (one without output leaves its partial sums in place).
 * The loop macros below track the half the next loop will use (defined in the runtime). */
extern unsigned gemmini_acc_half;
#define GEMMINI_ACC_LOOP_BASE (gemmini_acc_half * (GEMMINI_ACC_ROWS / 2))

/* Ours, not Gemmini's (zero = Gemmini's behaviour): the mesh block one compute of LOOP_WS /
 * LOOP_CONV_WS may use: rows (reduction: K of a matmul, input channels) | columns (J, output
 * channels) << 16; 0 = DIM. A program that unrolls a mapping over only part of the mesh sets it;
 * it changes the modelled timing, not the results. Sent in rs1[63:32] of the loop command
 * (defined in the runtime). */
extern uint32_t gemmini_mesh_block;

#define MVIN_SCALE_IDENTITY 1.0f
#define ACC_SCALE_IDENTITY 1.0f

static inline uint32_t gemmini_f32_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}

/* One RoCC command on custom-3 with both source registers and no destination. */
#define gemmini_rocc(funct, rs1, rs2)                                                       \
  __asm__ volatile(".insn r 0x7b, 0x3, %2, x0, %0, %1"                                      \
                   :                                                                        \
                   : "r"((uint64_t)(rs1)), "r"((uint64_t)(rs2)), "i"(funct)                 \
                   : "memory")

#define GEMMINI_OPERAND(addr, cols, rows) \
  (((uint64_t)(rows) << (ADDR_LEN + 16)) | ((uint64_t)(cols) << ADDR_LEN) | (uint64_t)(uint32_t)(addr))

/* ---- data movement ---- */
#define gemmini_extended_mvin(dram_addr, spad_addr, cols, rows) \
  gemmini_rocc(k_MVIN, (uintptr_t)(dram_addr), GEMMINI_OPERAND(spad_addr, cols, rows))
#define gemmini_extended_mvin2(dram_addr, spad_addr, cols, rows) \
  gemmini_rocc(k_MVIN2, (uintptr_t)(dram_addr), GEMMINI_OPERAND(spad_addr, cols, rows))
#define gemmini_extended_mvin3(dram_addr, spad_addr, cols, rows) \
  gemmini_rocc(k_MVIN3, (uintptr_t)(dram_addr), GEMMINI_OPERAND(spad_addr, cols, rows))
#define gemmini_mvin(dram_addr, spad_addr) gemmini_extended_mvin(dram_addr, spad_addr, DIM, DIM)
#define gemmini_extended_mvout(dram_addr, spad_addr, cols, rows) \
  gemmini_rocc(k_MVOUT, (uintptr_t)(dram_addr), GEMMINI_OPERAND(spad_addr, cols, rows))
#define gemmini_mvout(dram_addr, spad_addr) gemmini_extended_mvout(dram_addr, spad_addr, DIM, DIM)

/* ---- execution ---- */
#define gemmini_extended_preload(BD, C, BD_cols, BD_rows, C_cols, C_rows) \
  gemmini_rocc(k_PRELOAD, GEMMINI_OPERAND(BD, BD_cols, BD_rows), GEMMINI_OPERAND(C, C_cols, C_rows))
#define gemmini_preload(BD, C) gemmini_extended_preload(BD, C, DIM, DIM, DIM, DIM)
#define gemmini_preload_zeros(C) gemmini_preload(GARBAGE_ADDR, C)
#define gemmini_extended_compute_preloaded(A, BD, A_cols, A_rows, BD_cols, BD_rows) \
  gemmini_rocc(k_COMPUTE_PRELOADED, GEMMINI_OPERAND(A, A_cols, A_rows), GEMMINI_OPERAND(BD, BD_cols, BD_rows))
#define gemmini_extended_compute_accumulated(A, BD, A_cols, A_rows, BD_cols, BD_rows) \
  gemmini_rocc(k_COMPUTE_ACCUMULATE, GEMMINI_OPERAND(A, A_cols, A_rows), GEMMINI_OPERAND(BD, BD_cols, BD_rows))
#define gemmini_compute_preloaded(A, BD) gemmini_extended_compute_preloaded(A, BD, DIM, DIM, DIM, DIM)
#define gemmini_compute_accumulated(A, BD) gemmini_extended_compute_accumulated(A, BD, DIM, DIM, DIM, DIM)

/* ---- configuration ---- */
/* CONFIG execute: dataflow, activation, OS shift, A stride (rows), transposes, C stride. */
#define gemmini_extended_config_ex(dataflow, act, sys_shift, A_stride, A_transpose, B_transpose, C_stride) \
  gemmini_rocc(k_CONFIG,                                                                                  \
               ((uint64_t)gemmini_f32_bits(ACC_SCALE_IDENTITY) << 32) | ((uint64_t)(A_stride) << 16) |    \
                   ((uint64_t)(B_transpose) << 9) | ((uint64_t)(A_transpose) << 8) |                      \
                   ((uint64_t)(act) << 3) | ((uint64_t)(dataflow) << 2) | CONFIG_EX,                      \
               ((uint64_t)(C_stride) << 48) | (uint32_t)(sys_shift))
#define gemmini_config_ex(dataflow, act, sys_shift) gemmini_extended_config_ex(dataflow, act, sys_shift, 1, 0, 0, 1)
/* Only the A and C strides (rs1[7] set). */
#define gemmini_config_ex_strides(A_stride, C_stride) \
  gemmini_rocc(k_CONFIG, ((uint64_t)(A_stride) << 16) | (1u << 7) | CONFIG_EX, (uint64_t)(C_stride) << 48)

/* CONFIG load for load state `id` (0 mvin, 1 mvin2, 2 mvin3). */
#define gemmini_extended4_config_ld(stride, scale, shrunk, block_stride, pixel_repeats, id)                \
  gemmini_rocc(k_CONFIG,                                                                                  \
               ((uint64_t)gemmini_f32_bits(scale) << 32) | ((uint64_t)(block_stride) << 16) |             \
                   ((uint64_t)(pixel_repeats) << 8) | ((uint64_t)(id) << 3) | ((uint64_t)(shrunk) << 2) | \
                   CONFIG_LD,                                                                             \
               (uint64_t)(stride))
#define gemmini_extended3_config_ld(stride, scale, shrunk, id) \
  gemmini_extended4_config_ld(stride, scale, shrunk, DIM, 1, id)
#define gemmini_extended_config_ld(stride, scale) gemmini_extended3_config_ld(stride, scale, 0, 0)
#define gemmini_config_ld(stride) gemmini_extended_config_ld(stride, MVIN_SCALE_IDENTITY)

/* CONFIG store: DRAM stride, activation, accumulator scale, max-pooling parameters. */
#define gemmini_extended_config_st(stride, act, scale, pool_stride, pool_size, pool_out_dim, porows, pocols, \
                                   orows, ocols, upad, lpad)                                                 \
  gemmini_rocc(k_CONFIG,                                                                                    \
               ((uint64_t)(ocols) << 56) | ((uint64_t)(orows) << 48) | ((uint64_t)(pocols) << 40) |         \
                   ((uint64_t)(porows) << 32) | ((uint64_t)(pool_out_dim) << 24) | ((uint64_t)(lpad) << 10) | \
                   ((uint64_t)(upad) << 8) | ((uint64_t)(pool_size) << 6) | ((uint64_t)(pool_stride) << 4) | \
                   ((uint64_t)(act) << 2) | CONFIG_ST,                                                      \
               ((uint64_t)gemmini_f32_bits(scale) << 32) | (uint32_t)(stride))
#define gemmini_config_st_act(stride, act, scale) \
  gemmini_extended_config_st(stride, act, scale, 0, 0, 0, 0, 0, 0, 0, 0, 0)
#define gemmini_config_st(stride) gemmini_config_st_act(stride, NO_ACTIVATION, ACC_SCALE_IDENTITY)

#define gemmini_flush(skip) gemmini_rocc(k_FLUSH, skip, 0)
/* A plain fence waits until the accelerator has finished all earlier commands. */
#define gemmini_fence() __asm__ volatile("fence" ::: "memory")

/* ---- hardware loops ---- */
#define gemmini_loop_ws(I, J, K, pad_I, pad_J, pad_K, A, B, D, C, A_stride, B_stride, D_stride, C_stride,        \
                        A_transpose, B_transpose, full_C, low_D, ex_accumulate, act, a_spad_id, b_spad_id)       \
  do {                                                                                                           \
    gemmini_rocc(k_LOOP_WS_CONFIG_BOUNDS,                                                                        \
                 ((uint64_t)(pad_K) << 32) | ((uint64_t)(pad_J) << 16) | (uint64_t)(pad_I),                      \
                 ((uint64_t)(K) << 32) | ((uint64_t)(J) << 16) | (uint64_t)(I));                                 \
    gemmini_rocc(k_LOOP_WS_CONFIG_ADDRS_AB, (uintptr_t)(A), (uintptr_t)(B));                                     \
    gemmini_rocc(k_LOOP_WS_CONFIG_ADDRS_DC, (uintptr_t)(D), (uintptr_t)(C));                                     \
    gemmini_rocc(k_LOOP_WS_CONFIG_STRIDES_AB, A_stride, B_stride);                                               \
    gemmini_rocc(k_LOOP_WS_CONFIG_STRIDES_DC, D_stride, C_stride);                                               \
    gemmini_rocc(k_LOOP_WS,                                                                                      \
                 ((uint64_t)gemmini_mesh_block << 32) | ((uint64_t)(a_spad_id) << 18) |                       \
                     ((uint64_t)(b_spad_id) << 16) | ((uint64_t)(act) << 8) | ((uint64_t)(low_D) << 2) |           \
                     ((uint64_t)(full_C) << 1) | (uint64_t)(ex_accumulate),                                      \
                 ((uint64_t)(B_transpose) << 1) | (uint64_t)(A_transpose));                                      \
    if ((uintptr_t)(C) != 0) gemmini_acc_half ^= 1;                                                              \
  } while (0)

#define gemmini_loop_conv_ws(batch_size, in_row_dim, in_col_dim, in_channels, out_channels, out_row_dim,           \
                             out_col_dim, pool_out_row_dim, pool_out_col_dim, stride, padding, kernel_dim,         \
                             kernel_dilation, pool_size, pool_stride, pool_padding, batches, porows, pocols,       \
                             pochs, krows, kcols, kchs, lpad, rpad, upad, dpad, plpad, prpad, pupad, pdpad, orows, \
                             ocols, weights, output, bias, input, no_bias, no_pool, downsample, wrot180,           \
                             input_dilated, act, trans_output_1203, trans_weight_1203, trans_weight_0132,          \
                             trans_input_3120, max_pixels_per_row, in_stride, weight_stride, out_stride, dw,       \
                             a_spad_id, b_spad_id)                                                                 \
  do {                                                                                                             \
    gemmini_rocc(k_LOOP_CONV_WS_CONFIG_1,                                                                          \
                 ((uint64_t)(out_channels) << 48) | ((uint64_t)(in_channels) << 32) |                              \
                     ((uint64_t)(in_row_dim) << 16) | (uint64_t)(batch_size),                                      \
                 ((uint64_t)(padding) << 56) | ((uint64_t)(stride) << 48) | ((uint64_t)(out_col_dim) << 32) |      \
                     ((uint64_t)(pool_out_row_dim) << 16) | (uint64_t)(out_row_dim));                              \
    gemmini_rocc(k_LOOP_CONV_WS_CONFIG_2,                                                                          \
                 ((uint64_t)(kernel_dim) << 48) | ((uint64_t)(pool_out_col_dim) << 32) |                           \
                     ((uint64_t)(pool_size) << 16) | ((uint64_t)(pool_stride) << 8) | (uint64_t)(pool_padding),    \
                 ((uint64_t)(batches) << 48) | ((uint64_t)(porows) << 32) | ((uint64_t)(pocols) << 16) |           \
                     (uint64_t)(pochs));                                                                           \
    gemmini_rocc(k_LOOP_CONV_WS_CONFIG_3,                                                                          \
                 ((uint64_t)(krows) << 48) | ((uint64_t)(kcols) << 32) | ((uint64_t)(kchs) << 16) |                \
                     (uint64_t)(lpad),                                                                             \
                 ((uint64_t)(rpad) << 48) | ((uint64_t)(upad) << 32) | ((uint64_t)(dpad) << 24) |                  \
                     ((uint64_t)(plpad) << 16) | (uint64_t)(in_col_dim));                                          \
    gemmini_rocc(k_LOOP_CONV_WS_CONFIG_4,                                                                          \
                 ((uint64_t)(orows) << 48) | ((uint64_t)(prpad) << 32) | ((uint64_t)(pupad) << 21) |               \
                     ((uint64_t)(pdpad) << 10) | (uint64_t)(kernel_dilation),                                      \
                 ((uint64_t)(in_stride) << 48) | ((uint64_t)(weight_stride) << 32) |                               \
                     ((uint64_t)(out_stride) << 16) | (uint64_t)(ocols));                                          \
    gemmini_rocc(k_LOOP_CONV_WS_CONFIG_5, (uintptr_t)(weights), (uintptr_t)(output));                              \
    gemmini_rocc(k_LOOP_CONV_WS_CONFIG_6, (uintptr_t)(bias), (uintptr_t)(input));                                  \
    gemmini_rocc(k_LOOP_CONV_WS,                                                                                   \
                 ((uint64_t)gemmini_mesh_block << 32) | ((uint64_t)(a_spad_id) << 18) |                       \
                     ((uint64_t)(b_spad_id) << 16) | ((uint64_t)(max_pixels_per_row) << 8) |                       \
                     ((uint64_t)(dw) << 6) |                                                                       \
                     ((uint64_t)(trans_input_3120) << 5) | ((uint64_t)(trans_weight_0132) << 4) |                  \
                     ((uint64_t)(trans_weight_1203) << 3) | ((uint64_t)(trans_output_1203) << 2) |                 \
                     ((uint64_t)(wrot180) << 1) | (uint64_t)(no_bias),                                             \
                 ((uint64_t)(act) << 3) | ((uint64_t)(input_dilated) << 2) | ((uint64_t)(downsample) << 1) |       \
                     (uint64_t)(no_pool));                                                                         \
    if ((uintptr_t)(output) != 0) gemmini_acc_half ^= 1;                                                           \
  } while (0)

/* ---- counters (funct3 = 7: result in rd) ---- */
#define GEMMINI_COUNTER_DONE_CYCLE 0
#define GEMMINI_COUNTER_LOAD_BUSY 1
#define GEMMINI_COUNTER_EXECUTE_BUSY 2
#define GEMMINI_COUNTER_STORE_BUSY 3
#define GEMMINI_COUNTER_MACS 4
#define GEMMINI_COUNTER_BYTES_IN 5
#define GEMMINI_COUNTER_BYTES_OUT 6
#define GEMMINI_COUNTER_COMPUTES 7
static inline uint64_t gemmini_counter_read(unsigned counter, int reset) {
  uint64_t rd;
  uint64_t rs1 = ((uint64_t)counter << 4) | (reset ? 1 : 0);
  __asm__ volatile(".insn r 0x7b, 0x7, %2, %0, %1, x0" : "=r"(rd) : "r"(rs1), "i"(k_COUNTER) : "memory");
  return rd;
}

#endif
