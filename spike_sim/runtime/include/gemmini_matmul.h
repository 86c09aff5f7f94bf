/* Tiled matmul on Gemmini: C = act(scale * (A @ B + bias)), one LOOP_WS per tile.
 *
 * A: M x K int8 row-major, B: K x N int8, bias: N int32 broadcast over rows (or none), C: M x N
 * int8 (int32 with full_C). Tile sizes are in elements; a tile that is not a multiple of DIM
 * is a padded block. Tiles are visited in `order` (a permutation of "ijk", outermost first;
 * "ijk": k innermost, partial sums stay in the accumulator); bias at the first k, output at the
 * last. With k outside i or j the partial sums are not kept between the visits of an output
 * tile (as Gemmini's tiled_matmul with a loop permutation issues it, e.g. DOSA's programs:
 * the commands and their timing are that library's, the results are not a matmul).
 * spike_sim.programs.emit_matmul() writes the call.
 */
#ifndef SPIKE_SIM_GEMMINI_MATMUL_H
#define SPIKE_SIM_GEMMINI_MATMUL_H

#include <stdint.h>

#include "gemmini.h"

static inline void spike_sim_matmul(int M, int N, int K, int ti, int tj, int tk, int double_buffer, const uint8_t* A,
                                    const uint8_t* B, uint8_t* C, const uint8_t* bias, float scale, int act,
                                    int full_C, uint32_t mesh_block, const char* order) {
  gemmini_mesh_block = mesh_block; /* rows | cols << 16 of the mesh one compute uses (0: DIM) */
  int cb = full_C ? 4 : 1;
  gemmini_config_st_act(N * cb, act, scale);
  gemmini_extended4_config_ld(0, 1.0f, 0, DIM, 1, 2); /* bias rows repeat (stride 0) */
  int trips[3] = {(M + ti - 1) / ti, (N + tj - 1) / tj, (K + tk - 1) / tk}; /* i, j, k */
  int dims[3], idx[3] = {0, 0, 0};
  for (int d = 0; d < 3; d++) dims[d] = order[d] - 'i';
  for (int n = 0;; n++) {
    int i0 = idx[0] * ti, j0 = idx[1] * tj, k0 = idx[2] * tk;
    int ri = M - i0 < ti ? M - i0 : ti, rj = N - j0 < tj ? N - j0 : tj, rk = K - k0 < tk ? K - k0 : tk;
    int bi = (ri + DIM - 1) / DIM, bj = (rj + DIM - 1) / DIM, bk = (rk + DIM - 1) / DIM;
    int first = k0 == 0, last = k0 + tk >= K;
    const uint8_t* d = (bias && first) ? bias + (int64_t)j0 * 4 : 0;
    uint8_t* c = last ? C + ((int64_t)i0 * N + j0) * cb : 0;
    int id = double_buffer ? (n & 1) : 0;
    gemmini_loop_ws(bi, bj, bk, bi * DIM - ri, bj * DIM - rj, bk * DIM - rk, A + (int64_t)i0 * K + k0,
                    B + (int64_t)k0 * N + j0, d, c, K, N, 0, N, 0, 0, full_C, 0, first ? 0 : 1, act, id, id);
    int l = 2;
    for (; l >= 0; l--) {
      if (++idx[dims[l]] < trips[dims[l]]) break;
      idx[dims[l]] = 0;
    }
    if (l < 0) break;
  }
  gemmini_mesh_block = 0;
}

#endif
