/* Support code of the C that tvm_accel.gemmini's codegen emits for offloaded layers.
 *
 * A layer is one convolution shape (dense layers are 1x1 convolutions over a row of N
 * pixels): input NHWC int8, weights [R][S][C][K] int8 ([R][S][C] depthwise), bias int32 with
 * the input zero point folded in, results int32 in the accumulator. The generated code walks
 * the DRAM tiles of the layer's mapping (schedules) and calls tva_conv_tile() per tile:
 * one LOOP_CONV_WS whose partial sums stay in the accumulator across the reduction tiles;
 * after the last reduction tile either the loop itself moves the outputs out scaled by
 * Gemmini's fp32 accumulator scale (per-tensor requantization), or tva_mvout_int32() reads
 * the int32 results out for requantization on the core (tva_requant_exact: TFLite's integer
 * arithmetic; tva_requant_fp32: the per-channel fp32 scale Gemmini would apply).
 */
#ifndef TVA_GEMMINI_H_
#define TVA_GEMMINI_H_

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "gemmini.h"
#include "spike_sim.h"
#include "tvm_accel_kernel_abi.h"

/* Every helper is inlined into each layer's function whatever else the translation unit holds:
   left to gcc's -O2 heuristics, whether e.g. tva_conv_tile is inlined (with the layer's constant
   descriptor propagated) depended on the size of the whole kernels.c, i.e. on the other layers'
   code, so the same layer code cost a different number of core instructions per tile in
   different models or schedules (toycar's 8 -> 128 dense layer: 397 or 613 cycles). */
#define TVA_INLINE static inline __attribute__((always_inline))

typedef struct {
  int batch, in_rows, in_cols, in_ch, out_ch, out_rows, out_cols, k_rows, k_cols;
  int stride, dilation, padding; /* padding: symmetric zero padding done by LOOP_CONV_WS */
  int depthwise;
} tva_conv_t;

/* A tile: offsets and sizes of batch, output rows, output columns, output channels,
   kernel rows, kernel columns, input channels. */
typedef struct {
  int b0, nb, p0, np, q0, nq, k0, nk, r0, nr, s0, ns, c0, nc;
} tva_tile_t;

/* The cycle counter after a fence. spike_sim charges a core slower than one instruction per cycle
   (cpu_cycles_per_instruction > 1) for the instructions since the previous Gemmini command at the
   next Gemmini command or fence, so a plain rdcycle would leave the core work before it (the previous
   operator, padding) to be charged inside the interval measured next. Gemmini is idle here (every
   layer ends with a fence), so the fence costs nothing else. */
TVA_INLINE uint64_t tva_cycles(void) {
  gemmini_fence();
  return spike_sim_rdcycle();
}

TVA_INLINE int tva_min(int a, int b) { return a < b ? a : b; }
TVA_INLINE int tva_max(int a, int b) { return a > b ? a : b; }

/* The data pointer of packed argument i (a DLTensor*, as the C emitter passes them). */
TVA_INLINE void *tva_arg(void *args, int i) {
  TVMFFIAny *a = (TVMFFIAny *)args;
  return ((DLTensor *)a[i].v_ptr)->data;
}

/* Copies an NHWC tensor into a larger one filled with `value` (explicit padding with the zero point). */
TVA_INLINE void tva_copy_bytes(int8_t *dst, const int8_t *src, size_t n) {
  if ((((uintptr_t)dst | (uintptr_t)src) & 7) == 0) {
    for (; n >= 8; n -= 8, dst += 8, src += 8) *(uint64_t *)dst = *(const uint64_t *)src;
  }
  while (n--) *dst++ = *src++;
}

TVA_INLINE void tva_fill_bytes(int8_t *dst, int8_t value, size_t n) {
  uint64_t v = (uint8_t)value * 0x0101010101010101ull;
  for (; n && ((uintptr_t)dst & 7); n--) *dst++ = value;
  for (; n >= 8; n -= 8, dst += 8) *(uint64_t *)dst = v;
  while (n--) *dst++ = value;
}

TVA_INLINE void tva_pad_input(const int8_t *in, int8_t *out, int n, int h, int w, int c, int pt, int pl, int pb,
                                 int pr, int8_t value) {
  int oh = h + pt + pb, ow = w + pl + pr;
  size_t row = (size_t)ow * c;
  for (int b = 0; b < n; b++)
    for (int y = 0; y < oh; y++) {
      int8_t *dst = out + ((size_t)b * oh + y) * row;
      if (y < pt || y >= pt + h) {
        tva_fill_bytes(dst, value, row);
        continue;
      }
      tva_fill_bytes(dst, value, (size_t)pl * c);
      tva_copy_bytes(dst + (size_t)pl * c, in + (((size_t)b * h + y - pt) * w) * c, (size_t)w * c);
      tva_fill_bytes(dst + (size_t)(pl + w) * c, value, (size_t)pr * c);
    }
}

/* One tile: one LOOP_CONV_WS. first: load the bias into the accumulator (else keep the partial
   sums there); out: int8 output of the layer (moved out by the loop, scaled by the store
   configuration), or NULL to keep the results in the accumulator. Returns the first row of
   the accumulator half the loop used (a loop that writes its output hands the other half to
   the next loop, so consecutive output tiles double-buffer the accumulator). */
TVA_INLINE uint32_t tva_conv_tile(const tva_conv_t *L, const tva_tile_t *t, const int8_t *input, const int8_t *weights,
                                 const int32_t *bias, int8_t *out, int first, int a_id, int b_id, int act) {
  int irow0 = t->p0 * L->stride - L->padding + t->r0 * L->dilation;
  int icol0 = t->q0 * L->stride - L->padding + t->s0 * L->dilation;
  int irows = (t->np - 1) * L->stride + (t->nr - 1) * L->dilation + 1;
  int icols = (t->nq - 1) * L->stride + (t->ns - 1) * L->dilation + 1;
  int upad = tva_max(-irow0, 0), lpad = tva_max(-icol0, 0);
  int dpad = tva_max(irow0 + irows - L->in_rows, 0), rpad = tva_max(icol0 + icols - L->in_cols, 0);
  if (upad > irows) upad = irows;
  if (upad + dpad > irows) dpad = irows - upad;
  if (lpad > icols) lpad = icols;
  if (lpad + rpad > icols) rpad = icols - lpad;
  int kch0 = L->depthwise ? t->k0 : t->c0;
  int kchs = L->depthwise ? 1 : t->nc;
  int wstride = L->depthwise ? L->in_ch : L->out_ch;
  const int8_t *in = input + ((int64_t)(t->b0 * L->in_rows + irow0 + upad) * L->in_cols + (icol0 + lpad)) * L->in_ch + kch0;
  const int8_t *w = L->depthwise ? weights + (int64_t)(t->r0 * L->k_cols + t->s0) * L->in_ch + t->k0
                                 : weights + ((int64_t)(t->r0 * L->k_cols + t->s0) * L->in_ch + t->c0) * wstride + t->k0;
  int8_t *o = out ? out + ((int64_t)(t->b0 * L->out_rows + t->p0) * L->out_cols + t->q0) * L->out_ch + t->k0 : 0;
  const void *b = 0;
  int no_bias = 0;
  if (first) {
    if (bias) b = bias + t->k0;
    else { b = (const void *)8; no_bias = 1; } /* a non-zero address with no_bias: zeros */
  }
  uint32_t base = GEMMINI_ACC_LOOP_BASE;
  gemmini_loop_conv_ws(L->batch, L->in_rows, L->in_cols, L->in_ch, L->out_ch, L->out_rows, L->out_cols, L->out_rows,
                       L->out_cols, L->stride, L->padding, L->k_cols, L->dilation, 0, 0, 0, t->nb, t->np, t->nq, t->nk,
                       t->nr, t->ns, kchs, lpad, rpad, upad, dpad, 0, 0, 0, 0, t->np, t->nq, w, o, b, in, no_bias, 1, 0,
                       0, 0, act, 0, 0, 0, 0, 0, L->in_ch, wstride, L->out_ch, L->depthwise, a_id, b_id);
  return base;
}

/* One mvout per run of at most DIM output pixels of a tile that are consecutive both in the
   accumulator (rows from the tile's first) and in DRAM: along an output row, or across rows when
   the tile spans the whole output width. `dram`: the address of the tile's first channel of
   output pixel 0 of the tensor (elements of `esize` bytes, pixels L->out_ch elements apart);
   `op`: the local operand without its rows (accumulator flags, first row, cols << 32). The loop
   only adds to precomputed operands: a handful of core instructions per mvout. */
TVA_INLINE void tva_mvout_runs(const tva_conv_t *L, const tva_tile_t *t, uintptr_t dram, uint64_t op, uint32_t esize) {
  const int whole = t->nq == L->out_cols;
  const int span = whole ? t->np * t->nq : t->nq, segs = whole ? 1 : t->np;
  const uintptr_t pix = (uintptr_t)L->out_ch * esize, run = DIM * pix;
  const uint64_t full = (uint64_t)DIM << 48, rest = (uint64_t)(span % DIM) << 48;
  const int runs = span / DIM;
  const uintptr_t row_step = (uintptr_t)L->out_cols * pix; /* segments (output rows) advance by additions */
  for (int b = 0; b < t->nb; b++) {
    uintptr_t seg = dram + (uintptr_t)(((int64_t)(t->b0 + b) * L->out_rows + t->p0) * L->out_cols + t->q0) * pix;
    for (int sg = 0; sg < segs; sg++, seg += row_step) {
      uintptr_t d = seg;
      for (int r = 0; r < runs; r++, d += run, op += DIM) gemmini_rocc(k_MVOUT, d, op | full);
      if (rest) {
        gemmini_rocc(k_MVOUT, d, op | rest);
        op += (uint32_t)(span % DIM);
      }
    }
  }
}

/* Reads a tile's int32 results out of the accumulator (rows from `base`, the half its loop
   used) into acc_out, an int32 [batch * out_rows * out_cols][out_ch] buffer. */
TVA_INLINE void tva_mvout_int32(const tva_conv_t *L, const tva_tile_t *t, uint32_t base, int32_t *acc_out) {
  const int pixels = t->nb * t->np * t->nq;
  gemmini_config_st(L->out_ch * 4);
  for (int ob = 0; ob * DIM < t->nk; ob++) {
    int nch = tva_min(DIM, t->nk - ob * DIM);
    tva_mvout_runs(L, t, (uintptr_t)(acc_out + t->k0 + ob * DIM),
                   ((uint64_t)nch << 32) | GEMMINI_ACC_ADDR | GEMMINI_ACC_FULL | (base + (uint32_t)(ob * pixels)), 4);
  }
}

/* ---- explicit mvin / preload / compute / mvout nests (convolutions with groups = 1, dense) ----
 * The input must be padded already (padding 0 in L). Scratchpad layout of a tile:
 *   inputs  at in_row:  [input channel block][batch][input row][input column], one row per pixel;
 *   weights at w_row:   [output channel block][kernel row][kernel column][input channel], one row each;
 *   outputs at acc_row: [output channel block][batch][output row][output column] in the accumulator.
 * Weights are moved in only when the caller says they changed (the mapping's reuse). */
TVA_INLINE uint32_t tva_tile_input_rows(const tva_conv_t *L, const tva_tile_t *t) {
  int irows = (t->np - 1) * L->stride + (t->nr - 1) * L->dilation + 1;
  int icols = (t->nq - 1) * L->stride + (t->ns - 1) * L->dilation + 1;
  return (uint32_t)((t->nc + DIM - 1) / DIM) * t->nb * irows * icols;
}

TVA_INLINE uint32_t tva_tile_weight_rows(const tva_conv_t *L, const tva_tile_t *t) {
  (void)L;
  return (uint32_t)((t->nk + DIM - 1) / DIM) * t->nr * t->ns * t->nc;
}

/* weights of (output channel block kb, kernel position r s) are nc consecutive rows (one per input channel) */
TVA_INLINE uint32_t tva_weight_row(const tva_tile_t *t, int kb, int r, int s, int cb) {
  return (uint32_t)(((kb * t->nr + r) * t->ns + s) * t->nc + cb * DIM);
}

TVA_INLINE void tva_mvin_weights(const tva_conv_t *L, const tva_tile_t *t, const int8_t *weights, uint32_t w_row) {
  int kbs = (t->nk + DIM - 1) / DIM, cbs = (t->nc + DIM - 1) / DIM;
  gemmini_extended3_config_ld(L->out_ch, MVIN_SCALE_IDENTITY, 0, 1);
  for (int kb = 0; kb < kbs; kb++)
    for (int r = 0; r < t->nr; r++)
      for (int s = 0; s < t->ns; s++)
        for (int cb = 0; cb < cbs; cb++) {
          int nk = tva_min(DIM, t->nk - kb * DIM), nc = tva_min(DIM, t->nc - cb * DIM);
          const int8_t *src = weights + ((int64_t)((t->r0 + r) * L->k_cols + t->s0 + s) * L->in_ch + t->c0 + cb * DIM) *
                                            L->out_ch + t->k0 + kb * DIM;
          gemmini_extended_mvin2(src, w_row + tva_weight_row(t, kb, r, s, cb), nk, nc);
        }
}

TVA_INLINE void tva_mvin_inputs(const tva_conv_t *L, const tva_tile_t *t, const int8_t *input, uint32_t in_row) {
  int irows = (t->np - 1) * L->stride + (t->nr - 1) * L->dilation + 1;
  int icols = (t->nq - 1) * L->stride + (t->ns - 1) * L->dilation + 1;
  int irow0 = t->p0 * L->stride + t->r0 * L->dilation, icol0 = t->q0 * L->stride + t->s0 * L->dilation;
  int cbs = (t->nc + DIM - 1) / DIM;
  gemmini_extended3_config_ld(L->in_ch, MVIN_SCALE_IDENTITY, 0, 0);
  for (int cb = 0; cb < cbs; cb++) {
    int nc = tva_min(DIM, t->nc - cb * DIM);
    for (int b = 0; b < t->nb; b++)
      for (int y = 0; y < irows; y++)
        for (int x = 0; x < icols; x += DIM) {
          int n = tva_min(DIM, icols - x);
          const int8_t *src = input + ((int64_t)((t->b0 + b) * L->in_rows + irow0 + y) * L->in_cols + icol0 + x) * L->in_ch +
                              t->c0 + cb * DIM;
          uint32_t row = in_row + (uint32_t)(((cb * t->nb + b) * irows + y) * icols + x);
          gemmini_extended_mvin(src, row, nc, n);
        }
  }
}

/* Bias broadcast over the tile's pixels (DRAM stride 0), or zeros. */
TVA_INLINE void tva_mvin_bias(const tva_conv_t *L, const tva_tile_t *t, const int32_t *bias, uint32_t acc_row) {
  int kbs = (t->nk + DIM - 1) / DIM, pixels = t->nb * t->np * t->nq;
  gemmini_extended3_config_ld(0, MVIN_SCALE_IDENTITY, 0, 2);
  for (int kb = 0; kb < kbs; kb++) {
    int nk = tva_min(DIM, t->nk - kb * DIM);
    for (int p = 0; p < pixels; p += DIM) {
      int n = tva_min(DIM, pixels - p);
      gemmini_extended_mvin3(bias + t->k0 + kb * DIM, GEMMINI_ACC_ADDR | (acc_row + (uint32_t)(kb * pixels + p)), nk, n);
    }
  }
}

/* A tile's read-out issued pass by pass (per-channel scales: one channel, its config and its
   runs; else one block of DIM channels) between the next tile's computes (tva_compute_tile):
   the store unit moves tile i out while the mesh computes tile i+1, instead of the core
   blocking on the store queue in between (explicit nests of double-buffered mappings, whose
   consecutive output tiles use different accumulator halves). */
typedef struct {
  int active, kb, j, kbs;
  const tva_conv_t *L;
  tva_tile_t t;
  uint32_t acc_row;
  int8_t *y;
  int32_t *acc_out;
  const float *scale;
} tva_pending_t;
static tva_pending_t tva_pending;

TVA_INLINE void tva_pending_begin(const tva_conv_t *L, const tva_tile_t *t, uint32_t acc_row, int8_t *y,
                                     int32_t *acc_out, const float *scale) {
  tva_pending_t *q = &tva_pending;
  q->L = L;
  q->t = *t;
  q->acc_row = acc_row;
  q->y = y;
  q->acc_out = acc_out;
  q->scale = scale;
  q->kb = 0;
  q->kbs = (t->nk + DIM - 1) / DIM;
  q->j = tva_min(DIM, t->nk) - 1;
  q->active = 1;
  if (acc_out) gemmini_config_st(L->out_ch * 4);
}

/* Passes left: channels (per-channel scales) or blocks of channels. */
TVA_INLINE int tva_pending_passes(void) {
  const tva_pending_t *q = &tva_pending;
  if (!q->active) return 0;
  return q->scale ? q->t.nk - q->kb * DIM - (tva_min(DIM, q->t.nk - q->kb * DIM) - 1 - q->j) : q->kbs - q->kb;
}

TVA_INLINE void tva_pending_pass(void) {
  tva_pending_t *q = &tva_pending;
  const tva_tile_t *t = &q->t;
  const int nk = tva_min(DIM, t->nk - q->kb * DIM);
  const uint32_t row = q->acc_row + (uint32_t)(q->kb * t->nb * t->np * t->nq);
  if (q->scale) {
    gemmini_config_st_act(q->L->out_ch, NO_ACTIVATION, q->scale[t->k0 + q->kb * DIM + q->j]);
    tva_mvout_runs(q->L, t, (uintptr_t)(q->y + t->k0 + q->kb * DIM), ((uint64_t)(q->j + 1) << 32) | GEMMINI_ACC_ADDR | row, 1);
    if (--q->j >= 0) return;
  } else if (q->acc_out) {
    tva_mvout_runs(q->L, t, (uintptr_t)(q->acc_out + t->k0 + q->kb * DIM),
                   ((uint64_t)nk << 32) | GEMMINI_ACC_ADDR | GEMMINI_ACC_FULL | row, 4);
  } else {
    tva_mvout_runs(q->L, t, (uintptr_t)(q->y + t->k0 + q->kb * DIM), ((uint64_t)nk << 32) | GEMMINI_ACC_ADDR | row, 1);
  }
  if (++q->kb < q->kbs) q->j = tva_min(DIM, t->nk - q->kb * DIM) - 1;
  else q->active = 0;
}

TVA_INLINE void tva_pending_finish(void) {
  while (tva_pending.active) tva_pending_pass();
}

/* The tile's preloads and computes, accumulating into the accumulator rows at acc_row. The
   inner loops only add to precomputed operands: the core issues a preload + compute pair in a
   handful of instructions. */
TVA_INLINE void tva_compute_tile(const tva_conv_t *L, const tva_tile_t *t, uint32_t in_row, uint32_t w_row,
                                    uint32_t acc_row) {
  const int irows = (t->np - 1) * L->stride + (t->nr - 1) * L->dilation + 1;
  const int icols = (t->nq - 1) * L->stride + (t->ns - 1) * L->dilation + 1;
  const int kbs = (t->nk + DIM - 1) / DIM, cbs = (t->nc + DIM - 1) / DIM, pixels = t->nb * t->np * t->nq;
  const int full = t->nq / DIM, rest = t->nq % DIM;
  const uint64_t garbage = GEMMINI_OPERAND(GARBAGE_ADDR, DIM, DIM);
  const uint32_t a_step = (uint32_t)(DIM * L->stride), y_step = (uint32_t)(L->stride * icols);
  /* a pending read-out of the previous tile: its passes spread over this tile's blocks */
  const int blocks = kbs * t->nr * t->ns * cbs, passes = tva_pending_passes();
  int err = 0;
  gemmini_extended_config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 0, L->stride, 0, 0, 1);
  for (int kb = 0; kb < kbs; kb++) {
    const int nk = tva_min(DIM, t->nk - kb * DIM);
    const uint32_t c_kb = GEMMINI_ACC_ADDR | GEMMINI_ACC_ACCUMULATE | (acc_row + (uint32_t)(kb * pixels));
    for (int r = 0; r < t->nr; r++)
      for (int s = 0; s < t->ns; s++)
        for (int cb = 0; cb < cbs; cb++) {
          const int nc = tva_min(DIM, t->nc - cb * DIM);
          uint64_t b_op = GEMMINI_OPERAND(w_row + tva_weight_row(t, kb, r, s, cb), nk, nc);
          const uint64_t a_full = ((uint64_t)DIM << 48) | ((uint64_t)nc << 32);
          const uint64_t c_full = ((uint64_t)DIM << 48) | ((uint64_t)nk << 32);
          const uint64_t a_rest = ((uint64_t)rest << 48) | ((uint64_t)nc << 32);
          const uint64_t c_rest = ((uint64_t)rest << 48) | ((uint64_t)nk << 32);
          uint32_t c = c_kb;
          for (int b = 0; b < t->nb; b++) {
            uint32_t a_row = in_row + (uint32_t)((cb * t->nb + b) * irows * icols + r * L->dilation * icols + s * L->dilation);
            for (int y = 0; y < t->np; y++, a_row += y_step) {
              uint32_t a = a_row;
              for (int x = 0; x < full; x++, a += a_step, c += DIM) {
                gemmini_rocc(k_PRELOAD, b_op, c_full | c);
                if (b_op == garbage) gemmini_rocc(k_COMPUTE_ACCUMULATE, a_full | a, garbage);
                else gemmini_rocc(k_COMPUTE_PRELOADED, a_full | a, garbage);
                b_op = garbage;
              }
              if (rest) {
                gemmini_rocc(k_PRELOAD, b_op, c_rest | c);
                if (b_op == garbage) gemmini_rocc(k_COMPUTE_ACCUMULATE, a_rest | a, garbage);
                else gemmini_rocc(k_COMPUTE_PRELOADED, a_rest | a, garbage);
                b_op = garbage;
                c += (uint32_t)rest;
              }
            }
          }
          for (err += passes; err >= blocks; err -= blocks) tva_pending_pass();
        }
  }
  tva_pending_finish();
}

/* The tile's results out of the accumulator: int8 scaled by the store configuration into y, or
   int32 (full) into acc_out. */
TVA_INLINE void tva_mvout_tile(const tva_conv_t *L, const tva_tile_t *t, uint32_t acc_row, int8_t *y, int32_t *acc_out) {
  int kbs = (t->nk + DIM - 1) / DIM, pixels = t->nb * t->np * t->nq;
  for (int kb = 0; kb < kbs; kb++) {
    uint64_t nk = (uint64_t)tva_min(DIM, t->nk - kb * DIM);
    uint32_t row = acc_row + (uint32_t)(kb * pixels);
    if (acc_out)
      tva_mvout_runs(L, t, (uintptr_t)(acc_out + t->k0 + kb * DIM), (nk << 32) | GEMMINI_ACC_ADDR | GEMMINI_ACC_FULL | row, 4);
    else
      tva_mvout_runs(L, t, (uintptr_t)(y + t->k0 + kb * DIM), (nk << 32) | GEMMINI_ACC_ADDR | row, 1);
  }
}

/* Per-channel requantization on Gemmini: the accumulator scale is one fp32 per store
   configuration, and an mvout writes the first `cols` columns of its rows. So for each channel
   block the channels are moved out from the last to the first, channel j with its own scale
   and columns 0..j: every column is written last by the mvout carrying its own scale.
   first_done: the first of these passes (the last channel of the first block, all its columns)
   was done already by the hardware loop's own output, under tva_config_first_channel(). */
TVA_INLINE void tva_mvout_per_channel(const tva_conv_t *L, const tva_tile_t *t, uint32_t acc_row, int8_t *y,
                                         const float *scale, int first_done) {
  int kbs = (t->nk + DIM - 1) / DIM, pixels = t->nb * t->np * t->nq;
  for (int kb = 0; kb < kbs; kb++) {
    int nk = tva_min(DIM, t->nk - kb * DIM);
    uint32_t row = acc_row + (uint32_t)(kb * pixels);
    for (int j = (kb == 0 && first_done) ? nk - 2 : nk - 1; j >= 0; j--) {
      gemmini_config_st_act(L->out_ch, NO_ACTIVATION, scale[t->k0 + kb * DIM + j]);
      tva_mvout_runs(L, t, (uintptr_t)(y + t->k0 + kb * DIM), ((uint64_t)(j + 1) << 32) | GEMMINI_ACC_ADDR | row, 1);
    }
  }
}

/* The store configuration under which a hardware loop's own output of tile t is the first pass
   of tva_mvout_per_channel (the last channel of the first block, with its scale). */
TVA_INLINE void tva_config_first_channel(const tva_conv_t *L, const tva_tile_t *t, const float *scale) {
  gemmini_config_st_act(L->out_ch, NO_ACTIVATION, scale[t->k0 + tva_min(DIM, t->nk) - 1]);
}

/* TFLite's MultiplyByQuantizedMultiplier: single_rounding selects the TFLITE_SINGLE_ROUNDING form. */
TVA_INLINE int32_t tva_mbqm(int32_t x, int32_t m, int32_t shift, int single_rounding) {
  if (single_rounding) {
    int total = 31 - shift;
    return (int32_t)(((int64_t)x * m + ((int64_t)1 << (total - 1))) >> total);
  }
  int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  int32_t a = (int32_t)((uint32_t)x << left);
  int32_t hi;
  if (a == INT32_MIN && m == INT32_MIN) hi = INT32_MAX;
  else {
    int64_t ab = (int64_t)a * m;
    int64_t nudge = ab >= 0 ? (1ll << 30) : (1 - (1ll << 30));
    hi = (int32_t)((ab + nudge) / (1ll << 31));
  }
  int32_t mask = (int32_t)((1ll << right) - 1);
  int32_t rem = hi & mask, thr = (mask >> 1) + (hi < 0 ? 1 : 0);
  return (hi >> right) + (rem > thr ? 1 : 0);
}

/* Exact requantization on the core (TFLite reference arithmetic), per output channel. */
TVA_INLINE void tva_requant_exact(const int32_t *acc, int8_t *out, int pixels, int channels, const int32_t *mult,
                                     const int32_t *shift, int single_rounding, int zp, int lo, int hi) {
  for (int p = 0; p < pixels; p++)
    for (int c = 0; c < channels; c++) {
      int32_t v = tva_mbqm(acc[(int64_t)p * channels + c], mult[c], shift[c], single_rounding) + zp;
      out[(int64_t)p * channels + c] = (int8_t)(v < lo ? lo : v > hi ? hi : v);
    }
}

/* float -> int32, rounding to nearest even, saturating (RISC-V fcvt.w.s with the rne mode, as
   Gemmini's scaling rounds). */
TVA_INLINE int32_t tva_round_even(float f) {
#if defined(__riscv_flen)
  int32_t r;
  __asm__("fcvt.w.s %0, %1, rne" : "=r"(r) : "f"(f));
  return r;
#else
  float g = rintf(f);
  return g >= 2147483520.0f ? INT32_MAX : g <= -2147483648.0f ? INT32_MIN : (int32_t)g;
#endif
}

/* Gemmini's fp32 scaling (multiply, round to nearest even), per output channel, on the core. */
TVA_INLINE void tva_requant_fp32(const int32_t *acc, int8_t *out, int pixels, int channels, const float *scale, int zp,
                                    int lo, int hi) {
  for (int p = 0; p < pixels; p++)
    for (int c = 0; c < channels; c++) {
      int64_t v = (int64_t)tva_round_even((float)acc[(int64_t)p * channels + c] * scale[c]) + zp;
      out[(int64_t)p * channels + c] = (int8_t)(v < lo ? lo : v > hi ? hi : v);
    }
}

/* The activation clamp after Gemmini's own (saturating) scaling. */
TVA_INLINE void tva_clamp(int8_t *x, int64_t n, int lo, int hi) {
  if (lo <= -128 && hi >= 127) return;
  for (int64_t i = 0; i < n; i++) x[i] = (int8_t)(x[i] < lo ? lo : x[i] > hi ? hi : x[i]);
}

/* Per-layer figures: defined by the program's harness (tva_spike_harness.c). */
void tva_gemmini_layer_done(int layer, uint64_t cycles, uint64_t accel_cycles);

/* Profiling of the Gemmini part (build with -DTVA_GEMMINI_PROFILE): the extension's counters
   (reset at the start of the part: busy cycles per queue, bytes, computes) and the core's
   retired instructions, reported per layer through tva_gemmini_layer_profile (the harness
   prints them). Without the macro these are empty. */
#ifdef TVA_GEMMINI_PROFILE
void tva_gemmini_layer_profile(int layer, const uint64_t *values);
#define TVA_PROFILE_BEGIN()                                 \
  (void)gemmini_counter_read(GEMMINI_COUNTER_DONE_CYCLE, 1); \
  uint64_t tva_prof_i0 = spike_sim_rdinstret()
#define TVA_PROFILE_END(layer)                                                                                  \
  do {                                                                                                          \
    uint64_t tva_prof_v[7] = {spike_sim_rdinstret() - tva_prof_i0, gemmini_counter_read(GEMMINI_COUNTER_LOAD_BUSY, 0), \
                              gemmini_counter_read(GEMMINI_COUNTER_EXECUTE_BUSY, 0),                            \
                              gemmini_counter_read(GEMMINI_COUNTER_STORE_BUSY, 0),                              \
                              gemmini_counter_read(GEMMINI_COUNTER_BYTES_IN, 0),                                \
                              gemmini_counter_read(GEMMINI_COUNTER_BYTES_OUT, 0),                               \
                              gemmini_counter_read(GEMMINI_COUNTER_COMPUTES, 0)};                               \
    tva_gemmini_layer_profile(layer, tva_prof_v);                                                               \
  } while (0)
#else
#define TVA_PROFILE_BEGIN() ((void)0)
#define TVA_PROFILE_END(layer) ((void)0)
#endif

#endif
