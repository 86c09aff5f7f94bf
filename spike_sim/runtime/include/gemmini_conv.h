/* Tiled convolution on Gemmini: one LOOP_CONV_WS per tile, tiles visited in a given loop order.
 *
 * Layout: input NHWC int8, weights [R][S][C][K] int8 ([R][S][C] for depthwise), bias K int32,
 * output NHWC int8 (after pooling). Tile sizes are in output pixels after pooling for the
 * row/column dimensions. Partial sums stay in the accumulator while consecutive tiles reduce
 * into the same output tile; if the loop order puts a reduction loop outside an output loop,
 * they are spilled to `partials` as int32 (mvout full) and brought back (mvin3, accumulate).
 * With `gemmini_library` set the tiles are issued as Gemmini's software library issues them
 * (its tiled_conv with a loop permutation, e.g. DOSA's FireSim programs): no spills (every tile
 * starts its output tile at its first reduction step and writes it at the last, whatever ran
 * in between), padding from the hardware's input extent (orows * stride + krows - 1), not
 * clamped to the tile. For timing such programs; results are right only when the reduction
 * loops are innermost and the padding stays within the tile.
 * spike_sim.programs.emit_conv() fills the structures; see docs/spike_sim.md.
 */
#ifndef SPIKE_SIM_GEMMINI_CONV_H
#define SPIKE_SIM_GEMMINI_CONV_H

#include <stdint.h>

#include "gemmini.h"

enum { SSC_B = 0, SSC_OROW, SSC_OCOL, SSC_OCH, SSC_KROW, SSC_KCOL, SSC_KCH, SSC_NDIMS };

typedef struct {
  int batch, in_rows, in_cols, in_channels, out_channels, kernel_rows, kernel_cols;
  int stride, padding, dilation, depthwise;
  int pool_size, pool_stride, pool_padding; /* pool_stride 0: no pooling */
  int has_bias, act;
  float scale;
  int out_rows, out_cols, pool_out_rows, pool_out_cols;
} spike_sim_conv_layer_t;

typedef struct {
  int tile[SSC_NDIMS];
  int trips[SSC_NDIMS];
  int order[SSC_NDIMS]; /* dimensions, outermost first */
  int double_buffer;
  int mesh_rows, mesh_cols; /* input / output channels per compute (0: DIM), see gemmini_mesh_block */
  int gemmini_library;      /* 1: as Gemmini's tiled_conv issues the tiles (see above) */
} spike_sim_conv_tiling_t;

static inline int ssc_min(int a, int b) { return a < b ? a : b; }
static inline int ssc_max(int a, int b) { return a > b ? a : b; }
static inline int ssc_is_red(int d) { return d >= SSC_KROW; }

/* Bytes of accumulator data (int32) one output tile holds: the spill slot size. */
static inline uint32_t spike_sim_conv_slot_bytes(const spike_sim_conv_layer_t* L, const spike_sim_conv_tiling_t* T) {
  int orows = L->pool_stride ? (T->tile[SSC_OROW] - 1) * L->pool_stride + L->pool_size : T->tile[SSC_OROW];
  int ocols = L->pool_stride ? (T->tile[SSC_OCOL] - 1) * L->pool_stride + L->pool_size : T->tile[SSC_OCOL];
  int och_blocks = (T->tile[SSC_OCH] + DIM - 1) / DIM;
  return (uint32_t)och_blocks * T->tile[SSC_B] * orows * ocols * DIM * 4;
}

static inline void spike_sim_conv_tile(const spike_sim_conv_layer_t* L, const spike_sim_conv_tiling_t* T, const int* idx,
                                int first, int last, int restore, int spill, int parity, const uint8_t* input,
                                const uint8_t* weights, uint8_t* output, const uint8_t* bias, uint8_t* partials,
                                uint32_t slot) {
  const int* t = T->tile;
  int dims[SSC_NDIMS] = {L->batch, L->pool_out_rows, L->pool_out_cols, L->out_channels,
                         L->kernel_rows, L->kernel_cols, L->depthwise ? 1 : L->in_channels};
  int b0 = idx[SSC_B] * t[SSC_B], pr0 = idx[SSC_OROW] * t[SSC_OROW], pc0 = idx[SSC_OCOL] * t[SSC_OCOL];
  int oc0 = idx[SSC_OCH] * t[SSC_OCH], kr0 = idx[SSC_KROW] * t[SSC_KROW], kc0 = idx[SSC_KCOL] * t[SSC_KCOL];
  int kh0 = idx[SSC_KCH] * t[SSC_KCH];
  int batches = ssc_min(t[SSC_B], dims[SSC_B] - b0), porows = ssc_min(t[SSC_OROW], dims[SSC_OROW] - pr0);
  int pocols = ssc_min(t[SSC_OCOL], dims[SSC_OCOL] - pc0), pochs = ssc_min(t[SSC_OCH], dims[SSC_OCH] - oc0);
  int krows = ssc_min(t[SSC_KROW], dims[SSC_KROW] - kr0), kcols = ssc_min(t[SSC_KCOL], dims[SSC_KCOL] - kc0);
  int kchs = L->depthwise ? 1 : ssc_min(t[SSC_KCH], dims[SSC_KCH] - kh0);
  if (L->depthwise) kh0 = oc0;
  int pupad = 0, plpad = 0, pdpad = 0, prpad = 0, orow0 = pr0, ocol0 = pc0, orows = porows, ocols = pocols;
  if (L->pool_stride) {
    int orow_full = pr0 * L->pool_stride - L->pool_padding, ocol_full = pc0 * L->pool_stride - L->pool_padding;
    int orows_full = (porows - 1) * L->pool_stride + L->pool_size, ocols_full = (pocols - 1) * L->pool_stride + L->pool_size;
    pupad = ssc_max(-orow_full, 0);
    plpad = ssc_max(-ocol_full, 0);
    pdpad = ssc_max(orow_full + orows_full - L->out_rows, 0);
    prpad = ssc_max(ocol_full + ocols_full - L->out_cols, 0);
    orow0 = orow_full + pupad;
    ocol0 = ocol_full + plpad;
    orows = orows_full - pupad - pdpad;
    ocols = ocols_full - plpad - prpad;
  }
  int irow0 = orow0 * L->stride - L->padding + kr0 * L->dilation;
  int icol0 = ocol0 * L->stride - L->padding + kc0 * L->dilation;
  int irows = (orows - 1) * L->stride + (krows - 1) * L->dilation + 1;
  int icols = (ocols - 1) * L->stride + (kcols - 1) * L->dilation + 1;
  if (T->gemmini_library) { /* the input extent the hardware's loop unroller assumes */
    irows += L->stride - 1;
    icols += L->stride - 1;
  }
  int upad = ssc_max(-irow0, 0), lpad = ssc_max(-icol0, 0);
  int dpad = ssc_max(irow0 + irows - L->in_rows, 0), rpad = ssc_max(icol0 + icols - L->in_cols, 0);
  if (!T->gemmini_library) {
    if (upad > irows) upad = irows;
    if (upad + dpad > irows) dpad = irows - upad;
    if (lpad > icols) lpad = icols;
    if (lpad + rpad > icols) rpad = icols - lpad;
  }
  int S = L->kernel_cols;
  int wstride = L->depthwise ? L->in_channels : L->out_channels;
  const uint8_t* in = input + ((int64_t)(b0 * L->in_rows + irow0 + upad) * L->in_cols + (icol0 + lpad)) * L->in_channels + kh0;
  const uint8_t* w = L->depthwise ? weights + (int64_t)(kr0 * S + kc0) * L->in_channels + oc0
                                  : weights + ((int64_t)(kr0 * S + kc0) * L->in_channels + kh0) * wstride + oc0;
  uint8_t* out = last ? output + ((int64_t)(b0 * L->pool_out_rows + pr0) * L->pool_out_cols + pc0) * L->out_channels + oc0 : 0;
  const uint8_t* bias_ptr = 0;
  int no_bias = 0;
  if (first) {
    if (L->has_bias && bias) bias_ptr = bias + oc0 * 4;
    else { bias_ptr = (const uint8_t*)8; no_bias = 1; } /* any non-zero address: zeros are loaded */
  }
  int out_pixels = batches * orows * ocols;
  int och_blocks = (pochs + DIM - 1) / DIM;
  if (restore) {
    gemmini_extended4_config_ld(DIM * 4, 1.0f, 0, DIM, 1, 2);
    for (int ob = 0; ob < och_blocks; ob++)
      for (int p0 = 0; p0 < out_pixels; p0 += DIM) {
        int n = ssc_min(DIM, out_pixels - p0), nch = ssc_min(DIM, pochs - ob * DIM);
        uint32_t row = (uint32_t)(ob * out_pixels + p0);
        gemmini_extended_mvin3(partials + slot + (uint64_t)row * DIM * 4, GEMMINI_ACC_ADDR | (GEMMINI_ACC_LOOP_BASE + row), nch, n);
      }
  }
  int a_id = T->double_buffer ? parity : 0, b_id = T->double_buffer ? parity : 1;
  uint32_t acc_base = GEMMINI_ACC_LOOP_BASE; /* the half this tile's loop uses */
  gemmini_mesh_block = (uint32_t)(T->mesh_rows & 0xFFFF) | ((uint32_t)(T->mesh_cols & 0xFFFF) << 16);
  gemmini_loop_conv_ws(L->batch, L->in_rows, L->in_cols, L->in_channels, L->out_channels, L->out_rows, L->out_cols,
                       L->pool_out_rows, L->pool_out_cols, L->stride, L->padding, S, L->dilation,
                       L->pool_stride ? L->pool_size : 0, L->pool_stride, L->pool_stride ? L->pool_padding : 0,
                       batches, porows, pocols, pochs, krows, kcols, kchs, lpad, rpad, upad, dpad, plpad, prpad, pupad,
                       pdpad, orows, ocols, w, out, bias_ptr, in, no_bias, L->pool_stride ? 0 : 1, 0, 0, 0, L->act, 0, 0,
                       0, 0, 0, L->in_channels, wstride, L->out_channels, L->depthwise, a_id, b_id);
  gemmini_mesh_block = 0;
  if (spill) {
    gemmini_config_st(DIM * 4);
    for (int ob = 0; ob < och_blocks; ob++)
      for (int p0 = 0; p0 < out_pixels; p0 += DIM) {
        int n = ssc_min(DIM, out_pixels - p0), nch = ssc_min(DIM, pochs - ob * DIM);
        uint32_t row = (uint32_t)(ob * out_pixels + p0);
        gemmini_extended_mvout(partials + slot + (uint64_t)row * DIM * 4, GEMMINI_ACC_ADDR | GEMMINI_ACC_FULL | (acc_base + row), nch, n);
      }
    gemmini_config_st_act(L->out_channels, L->act, L->scale);
  }
}

/* The whole convolution: visits every tile in T->order (an odometer, innermost last). */
static inline void spike_sim_conv(const spike_sim_conv_layer_t* L, const spike_sim_conv_tiling_t* T, const uint8_t* input,
                           const uint8_t* weights, uint8_t* output, const uint8_t* bias, uint8_t* partials) {
  int loops[SSC_NDIMS], nloops = 0;
  for (int i = 0; i < SSC_NDIMS; i++)
    if (T->trips[T->order[i]] > 1) loops[nloops++] = T->order[i];
  /* spills are needed when a reduction loop is outside an output loop */
  int innermost_out = -1, spills = 0, seen_red = 0;
  for (int i = 0; i < nloops; i++) {
    if (ssc_is_red(loops[i])) seen_red = 1;
    else {
      innermost_out = i;
      if (seen_red) spills = 1;
    }
  }
  if (T->gemmini_library) spills = 0;
  uint32_t slot_bytes = spike_sim_conv_slot_bytes(L, T);
  int idx[SSC_NDIMS] = {0};
  gemmini_config_st_act(L->out_channels, L->act, L->scale);
  for (int n = 0;; n++) {
    int first = idx[SSC_KROW] == 0 && idx[SSC_KCOL] == 0 && idx[SSC_KCH] == 0;
    int last = idx[SSC_KROW] == T->trips[SSC_KROW] - 1 && idx[SSC_KCOL] == T->trips[SSC_KCOL] - 1 &&
               idx[SSC_KCH] == T->trips[SSC_KCH] - 1;
    int inner_at_start = 1, inner_at_end = 1;
    for (int i = innermost_out + 1; i < nloops; i++) {
      if (idx[loops[i]] != 0) inner_at_start = 0;
      if (idx[loops[i]] != T->trips[loops[i]] - 1) inner_at_end = 0;
    }
    uint32_t slot = (uint32_t)((((idx[SSC_B] * T->trips[SSC_OROW] + idx[SSC_OROW]) * T->trips[SSC_OCOL] + idx[SSC_OCOL]) *
                                    T->trips[SSC_OCH] + idx[SSC_OCH]) * slot_bytes);
    spike_sim_conv_tile(L, T, idx, first, last, spills && !first && inner_at_start, spills && !last && inner_at_end,
                        n & 1, input, weights, output, bias, partials, slot);
    int i = nloops - 1;
    for (; i >= 0; i--) {
      if (++idx[loops[i]] < T->trips[loops[i]]) break;
      idx[loops[i]] = 0;
    }
    if (i < 0) break;
  }
}

#endif
