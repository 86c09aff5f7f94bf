// Gemmini extension for Spike: functional model of the Gemmini ISA plus a cycle model.
//
// Loaded with `spike --extlib=libspike_sim_gemmini.so --extension=gemmini prog.elf`.
// Spike has no way to pass arguments to an extension, so the runner passes them through the
// environment:
//   SPIKE_SIM_GEMMINI_CONFIG  path of a configuration JSON (spike_sim/configs/*.json);
//                             without it, Gemmini's default configuration.
//   SPIKE_SIM_GEMMINI_STATS   path of a JSON statistics file written when Spike exits.
//
// The ISA (encodings and semantics) is described in docs/spike_sim.md; the numpy reference of
// the same semantics is spike_sim/reference.py. Illegal operands raise an illegal-instruction
// trap in the guest (with a one-line explanation on stderr), never touch host memory.

#include <riscv/extension.h>
#include <riscv/mmu.h>
#include <riscv/processor.h>
#include <riscv/rocc.h>
#include <riscv/trap.h>

#include <algorithm>
#include <cctype>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// ----------------------------------------------------------------------------------------
// Configuration (a tiny JSON reader: numbers, strings, booleans, nested objects).

struct JsonReader {
  const std::string& s;
  size_t i = 0;
  std::map<std::string, double> nums;
  explicit JsonReader(const std::string& text) : s(text) {}
  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("bad JSON at offset " + std::to_string(i) + ": " + what);
  }
  void ws() { while (i < s.size() && std::isspace((unsigned char)s[i])) i++; }
  std::string str() {
    if (s[i] != '"') fail("expected a string");
    std::string out;
    for (i++; i < s.size() && s[i] != '"'; i++) {
      if (s[i] == '\\') i++;
      out += s[i];
    }
    i++;
    return out;
  }
  void value(const std::string& key) {
    ws();
    if (i >= s.size()) fail("unexpected end");
    char c = s[i];
    if (c == '{') {
      i++;
      ws();
      if (s[i] == '}') { i++; return; }
      while (true) {
        ws();
        std::string k = str();
        ws();
        if (s[i] != ':') fail("expected ':'");
        i++;
        value(key.empty() ? k : key + "." + k);
        ws();
        if (s[i] == ',') { i++; continue; }
        if (s[i] == '}') { i++; return; }
        fail("expected ',' or '}'");
      }
    } else if (c == '[') {
      int depth = 0;
      do {
        if (s[i] == '[') depth++;
        if (s[i] == ']') depth--;
        i++;
      } while (depth > 0 && i < s.size());
    } else if (c == '"') {
      str();
    } else if (s.compare(i, 4, "true") == 0) {
      nums[key] = 1; i += 4;
    } else if (s.compare(i, 5, "false") == 0) {
      nums[key] = 0; i += 5;
    } else if (s.compare(i, 4, "null") == 0) {
      i += 4;
    } else {
      size_t end = i;
      while (end < s.size() && (std::isdigit((unsigned char)s[end]) || strchr("+-.eE", s[end]))) end++;
      if (end == i) fail("unexpected character");
      nums[key] = std::stod(s.substr(i, end - i));
      i = end;
    }
  }
};

struct Timing {
  double dma_latency = 40;            // cycles from a DMA request to its data (read or write ack)
  double dma_bytes_per_cycle = 16;    // sustained DRAM<->scratchpad bandwidth per direction
  double mesh_fill_drain = 32;        // cycles to fill and drain the mesh around one compute
  double compute_rows_per_cycle = 1;  // rows of A pushed into the mesh per cycle
  double preload_cycles = 16;         // cycles to shift a new weight block into the mesh
  double preload_cycles_per_row = 0;  // plus this per row of the block (rows shift in one per cycle)
  double command_issue_cycles = 1;    // cycles per command through the reservation station
  double mvout_rows_per_cycle = 1;    // accumulator rows read per cycle by a mvout
  double load_queue_entries = 8;      // commands in flight per queue (reservation station)
  double execute_queue_entries = 16;
  double store_queue_entries = 8;
  double rocc_issue_cycles = 1;       // CPU cycles to send one RoCC command
  double dma_max_inflight = 16;       // DRAM requests (of at most dma_max_bytes) in flight
  double dma_request_cycles = 0;      // cycles the DMA's request generator spends per request, serial
                                      // with the data beats (0: requests overlap the data entirely)
  double cpu_cycles_per_instruction = 1;  // CPI of the host core (Spike retires one per cycle)
  // The SoC's shared L2 as the DMA sees it (0 KiB: no L2 model, every request costs the same):
  // set-associative, LRU, write-allocate; a request whose line misses holds its DMA slot for
  // l2_miss_latency more cycles (the DRAM access behind the L2).
  double l2_kib = 0;
  double l2_ways = 8;
  double l2_line_bytes = 64;
  double l2_miss_latency = 0;
};

struct Config {
  int dim = 16;
  int sp_banks = 4, sp_bank_rows = 4096;
  int acc_banks = 2, acc_rows = 1024;
  int dma_bus_bytes = 16, dma_max_bytes = 64;
  bool functional = true;
  // Timing-only runs: local addresses past the scratchpad / accumulator wrap around (as the
  // hardware's address bits do) instead of trapping, and hardware-loop tiles larger than their
  // half are accepted: to time programs written for Gemmini without its software's checks.
  bool hardware_wraparound = false;
  Timing t;
  std::string name = "default";
};

Config load_config(const char* path) {
  Config c;
  if (!path || !*path) return c;
  std::ifstream f(path);
  if (!f) throw std::runtime_error(std::string("cannot open Gemmini configuration ") + path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  JsonReader r(text);
  r.value("");
  auto get = [&](const char* k, double& dst) {
    auto it = r.nums.find(k);
    if (it != r.nums.end()) dst = it->second;
  };
  double v;
  const char* ints[] = {"dim", "sp_banks", "sp_bank_rows", "acc_banks", "acc_rows", "dma_bus_bytes", "dma_max_bytes"};
  int* dsts[] = {&c.dim, &c.sp_banks, &c.sp_bank_rows, &c.acc_banks, &c.acc_rows, &c.dma_bus_bytes, &c.dma_max_bytes};
  for (int k = 0; k < 7; k++) {
    v = *dsts[k];
    get(ints[k], v);
    *dsts[k] = (int)v;
    if (*dsts[k] <= 0) throw std::runtime_error(std::string("configuration field ") + ints[k] + " must be positive");
  }
  v = c.functional ? 1 : 0;
  get("functional", v);
  c.functional = v != 0;
  v = c.hardware_wraparound ? 1 : 0;
  get("hardware_wraparound", v);
  c.hardware_wraparound = v != 0;
  if (c.hardware_wraparound && c.functional)
    throw std::runtime_error("hardware_wraparound needs a timing-only run (functional false)");
  for (auto& [k, val] : r.nums) {
    if (k.rfind("timing.", 0) != 0) continue;
    std::string name = k.substr(7);
#define T(field) if (name == #field) { c.t.field = val; continue; }
    T(dma_latency) T(dma_bytes_per_cycle) T(mesh_fill_drain) T(compute_rows_per_cycle) T(preload_cycles)
    T(command_issue_cycles) T(mvout_rows_per_cycle) T(preload_cycles_per_row) T(load_queue_entries) T(execute_queue_entries)
    T(store_queue_entries) T(rocc_issue_cycles) T(dma_max_inflight) T(dma_request_cycles) T(cpu_cycles_per_instruction)
    T(l2_kib) T(l2_ways) T(l2_line_bytes) T(l2_miss_latency)
#undef T
    throw std::runtime_error("unknown timing key '" + name + "' in " + path);
  }
  if (c.t.dma_bytes_per_cycle <= 0 || c.t.compute_rows_per_cycle <= 0 || c.t.mvout_rows_per_cycle <= 0 ||
      c.t.dma_max_inflight <= 0 || c.t.cpu_cycles_per_instruction < 1 || c.t.dma_request_cycles < 0)
    throw std::runtime_error("timing rates must be positive");
  if (c.t.l2_kib < 0 || c.t.l2_ways < 1 || c.t.l2_line_bytes < 1 || c.t.l2_miss_latency < 0)
    throw std::runtime_error("L2: l2_kib >= 0, l2_ways >= 1, l2_line_bytes >= 1, l2_miss_latency >= 0");
  return c;
}

// ----------------------------------------------------------------------------------------
// Arithmetic helpers (shared semantics with spike_sim/reference.py).

inline int8_t sat8(int64_t x) { return (int8_t)std::clamp<int64_t>(x, -128, 127); }
inline int32_t sat32(int64_t x) { return (int32_t)std::clamp<int64_t>(x, INT32_MIN, INT32_MAX); }

// x (as fp32) * scale (fp32), rounded to nearest even, as int64 (callers saturate).
inline int64_t scale_rne(int64_t x, float scale) {
  float p = (float)x * scale;
  if (std::isnan(p)) return 0;
  if (p >= 9.2e18f) return INT64_MAX / 2;
  if (p <= -9.2e18f) return INT64_MIN / 2;
  return (int64_t)std::nearbyint(p);  // default rounding mode: to nearest, ties to even
}

// Arithmetic shift right by `shift` with round-half-to-even (Gemmini's OS output shift).
inline int64_t rounding_shift(int64_t x, unsigned shift) {
  if (shift == 0) return x;
  if (shift >= 63) return 0;
  int64_t q = x >> shift;
  int64_t rem = x & ((int64_t(1) << shift) - 1);
  int64_t half = int64_t(1) << (shift - 1);
  if (rem > half || (rem == half && (q & 1))) q += 1;
  return q;
}

inline float f32_from_bits(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }

struct IllegalOperand : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr uint32_t GARBAGE = 0xFFFFFFFFu;

struct LocalAddr {
  bool garbage, is_acc, accumulate, read_full;
  uint32_t row;
};
inline LocalAddr decode_local(uint32_t a) {
  LocalAddr l;
  l.garbage = a == GARBAGE;
  l.is_acc = (a >> 31) & 1;
  l.accumulate = (a >> 30) & 1;
  l.read_full = (a >> 29) & 1;
  l.row = l.is_acc ? (a & 0x1FFFFFFFu) : a;
  return l;
}

struct Operand {  // local address | cols << 32 | rows << 48
  uint32_t addr;
  uint32_t cols, rows;
  LocalAddr l;
};
inline Operand operand(uint64_t v) {
  Operand o;
  o.addr = (uint32_t)v;
  o.cols = (v >> 32) & 0xFFFF;
  o.rows = (v >> 48) & 0xFFFF;
  o.l = decode_local(o.addr);
  return o;
}

// ----------------------------------------------------------------------------------------
// Cycle model: decoupled load / execute / store engines fed in order from one command stream
// (Gemmini's reservation station), dependencies through scratchpad / accumulator rows.

enum Engine { LD = 0, EX = 1, ST = 2 };

// The SoC's shared L2 cache, for the DMA's DRAM lines: set-associative with LRU replacement,
// write-allocate. Only the accelerator's traffic is modelled (the core's accesses are not).
struct L2Cache {
  uint64_t line = 64, ways = 0, sets = 0, clock = 0;
  std::vector<uint64_t> tag, used;  // per way: line address + 1 (0 = empty), last use
  explicit L2Cache(const Timing& t) {
    line = (uint64_t)t.l2_line_bytes;
    ways = (uint64_t)t.l2_ways;
    uint64_t lines = (uint64_t)(t.l2_kib * 1024) / line;
    sets = ways ? lines / ways : 0;
    tag.assign(sets * ways, 0);
    used.assign(sets * ways, 0);
  }
  bool enabled() const { return sets > 0; }
  // Touches the line holding `addr`; true on a miss (the line is then filled).
  bool miss(uint64_t addr) {
    uint64_t l = addr / line, base = (l % sets) * ways, victim = base;
    clock++;
    for (uint64_t w = base; w < base + ways; w++) {
      if (tag[w] == l + 1) { used[w] = clock; return false; }
      if (used[w] < used[victim]) victim = w;
    }
    tag[victim] = l + 1;
    used[victim] = clock;
    return true;
  }
};

struct Timer {
  const Config& c;
  double stream_t[3] = {0, 0, 0};         // when each queue of the reservation station accepts a command
  double free_at[3] = {0, 0, 0};          // engine can start its next command
  double done_max[3] = {0, 0, 0};         // latest completion per engine
  double busy[3] = {0, 0, 0};             // busy cycles per engine
  std::vector<double> inflight[3];        // completion times of the last N commands (ring)
  size_t ring_pos[3] = {0, 0, 0};
  std::vector<double> sp_ready, sp_read, acc_ready, acc_read;  // per row
  std::vector<double> sp_read_disp, acc_read_disp;  // dispatch time of the reader behind *_read
  double loop_max_dispatch = 0;                     // latest dispatch of the running hardware loop
  double loop_fsm_free[2] = {0, 0};
  int loop_fsm_next = 0;
  double last_dispatch = 0;               // dispatch time of the latest command

  explicit Timer(const Config& cfg) : c(cfg) {
    int sp_rows = c.sp_banks * c.sp_bank_rows;
    sp_ready.assign(sp_rows, 0);
    sp_read.assign(sp_rows, 0);
    sp_read_disp.assign(sp_rows, 0);
    acc_read_disp.assign(c.acc_rows, 0);
    acc_ready.assign(c.acc_rows, 0);
    acc_read.assign(c.acc_rows, 0);
    double n[3] = {c.t.load_queue_entries, c.t.execute_queue_entries, c.t.store_queue_entries};
    for (int e = 0; e < 3; e++) inflight[e].assign(std::max(1, (int)n[e]), 0.0);
  }
  // A command arrives at time `t`; returns the time it is dispatched to its engine.
  double dispatch(Engine e, double t) {
    double d = std::max(t, stream_t[e]);
    auto& ring = inflight[e];
    d = std::max(d, ring[ring_pos[e]]);  // oldest in-flight command of that queue must be done
    stream_t[e] = d + c.t.command_issue_cycles;
    last_dispatch = d;
    loop_max_dispatch = std::max(loop_max_dispatch, d);
    return d;
  }
  // Optional command trace (SPIKE_SIM_GEMMINI_TRACE=path): one line per command an engine ran,
  // "engine dispatch start occupancy done", for studying what the model spends its time on.
  FILE* trace = nullptr;
  void retire(Engine e, double start, double occupancy, double done) {
    if (trace) fprintf(trace, "%c %.1f %.1f %.1f %.1f\n", "LES"[e], last_dispatch, start, occupancy, done);
    free_at[e] = start + occupancy;
    busy[e] += occupancy;
    done_max[e] = std::max(done_max[e], done);
    auto& ring = inflight[e];
    ring[ring_pos[e]] = done;
    ring_pos[e] = (ring_pos[e] + 1) % ring.size();
  }
  double all_done() const {
    return std::max({done_max[0], done_max[1], done_max[2], free_at[0], free_at[1], free_at[2]});
  }
  // Row ranges: (is_acc, first row, count, stride between rows).
  // index of a row (rows past the end wrap around with hardware_wraparound)
  size_t at(size_t row, size_t size) const { return c.hardware_wraparound ? row % size : row; }
  double ready_of(bool acc, uint32_t row, uint32_t n, uint32_t stride = 1) const {
    const auto& v = acc ? acc_ready : sp_ready;
    double m = 0;
    for (uint32_t r = 0; r < n; r++) m = std::max(m, v[at((size_t)row + (size_t)r * stride, v.size())]);
    return m;
  }
  double read_of(bool acc, uint32_t row, uint32_t n, uint32_t stride = 1) const {
    const auto& v = acc ? acc_read : sp_read;
    double m = 0;
    for (uint32_t r = 0; r < n; r++) m = std::max(m, v[at((size_t)row + (size_t)r * stride, v.size())]);
    return m;
  }
  void set_ready(bool acc, uint32_t row, uint32_t n, double t, uint32_t stride = 1) {
    auto& v = acc ? acc_ready : sp_ready;
    for (uint32_t r = 0; r < n; r++) v[at((size_t)row + (size_t)r * stride, v.size())] = t;
  }
  void set_read(bool acc, uint32_t row, uint32_t n, double t, uint32_t stride = 1) {
    auto& v = acc ? acc_read : sp_read;
    auto& vd = acc ? acc_read_disp : sp_read_disp;
    for (uint32_t r = 0; r < n; r++) {
      size_t i = at((size_t)row + (size_t)r * stride, v.size());
      if (t >= v[i]) { v[i] = t; vd[i] = last_dispatch; }
    }
  }
  // WAR for a writer dispatched at `d`: the reads of readers already dispatched by then (the
  // reservation station only orders commands it holds together)
  double read_before(bool acc, uint32_t row, uint32_t n, double d, uint32_t stride = 1) const {
    const auto& v = acc ? acc_read : sp_read;
    const auto& vd = acc ? acc_read_disp : sp_read_disp;
    double m = 0;
    for (uint32_t r = 0; r < n; r++) {
      size_t i = at((size_t)row + (size_t)r * stride, v.size());
      if (vd[i] <= d) m = std::max(m, v[i]);
    }
    return m;
  }
};

// ----------------------------------------------------------------------------------------
// The accelerator.

struct LoadState {
  uint64_t stride = 0;
  float scale = 1.0f;
  bool shrunk = false;
  uint32_t block_stride = 0;  // 0 = DIM
  uint32_t pixel_repeats = 1;
};

struct Stats {
  uint64_t commands[128] = {};
  uint64_t bytes_in = 0, bytes_out = 0, macs = 0, computes = 0, mvins = 0, mvouts = 0;
  uint64_t loop_ws = 0, loop_conv_ws = 0, fences = 0, illegal = 0;
  uint64_t dma_requests = 0, l2_misses = 0;
  double cpu_stall_cycles = 0;
  double last_cycle = 0;
};

class Gemmini;
Gemmini* g_instance = nullptr;

class Gemmini {
 public:
  Config cfg;
  int DIM;
  uint32_t sp_rows, acc_rows;
  std::vector<int8_t> sp;
  std::vector<int32_t> acc;
  Timer tm;
  L2Cache l2;
  Stats st;
  std::string stats_path;

  // CONFIG execute
  bool ws = true;
  int ex_act = 0;
  bool a_transpose = false, b_transpose = false;
  uint32_t a_stride = 1, c_stride = 1;
  float ex_acc_scale = 1.0f;
  uint32_t sys_shift = 0;
  // CONFIG load
  LoadState lds[3];
  // CONFIG store
  uint64_t st_stride = 0;
  int st_act = 0;
  float st_scale = 1.0f;
  uint32_t pool_stride = 0, pool_size = 0, pool_upad = 0, pool_lpad = 0, pool_out_dim = 0;
  uint32_t pool_porows = 0, pool_pocols = 0, pool_orows = 0, pool_ocols = 0;
  // mesh
  std::vector<int32_t> weights;  // WS: latched B (DIM x DIM)
  std::vector<int64_t> os_acc;   // OS: accumulators of the mesh
  uint64_t pre_bd = ~0ull, pre_c = ~0ull;
  bool have_preload = false;
  // LOOP_WS configuration
  uint64_t lw_I = 0, lw_J = 0, lw_K = 0, lw_padI = 0, lw_padJ = 0, lw_padK = 0;
  uint64_t lw_A = 0, lw_B = 0, lw_D = 0, lw_C = 0, lw_sA = 0, lw_sB = 0, lw_sD = 0, lw_sC = 0;
  // LOOP_CONV_WS configuration (raw register pairs of CONFIG_1..6)
  uint64_t lc[6][2] = {};
  // Hardware loops use one half of the accumulator; a loop that writes its output to DRAM
  // hands the other half to the next loop (a loop without output leaves its partial sums in
  // place for the next one), as Gemmini's loop unrollers do.
  uint32_t acc_half = 0;

  // end and rows of the latest compute on the execute engine (a weight preload right after it
  // overlaps those rows)
  double last_compute_end = -1, last_compute_rows = 0;
  static constexpr uint32_t kMinComputeRows = 4;
  // cycle the current instruction arrived at (CPU time)
  double now = 0;
  uint64_t last_instret = 0;

  // A core slower than one instruction per cycle: charge the extra cycles of the instructions
  // retired since the last accelerator command or fence.
  void charge_cpu(state_t* s) {
    uint64_t ir = s->minstret->read();
    if (cfg.t.cpu_cycles_per_instruction > 1 && ir > last_instret)
      advance(s, (double)s->mcycle->read() + (cfg.t.cpu_cycles_per_instruction - 1) * (double)(ir - last_instret));
    last_instret = ir;
  }

  explicit Gemmini(const Config& c)
      : cfg(c), DIM(c.dim), sp_rows(c.sp_banks * c.sp_bank_rows), acc_rows(c.acc_rows), tm(cfg), l2(cfg.t) {
    if (cfg.functional) {
      sp.assign((size_t)sp_rows * DIM, 0);
      acc.assign((size_t)acc_rows * DIM, 0);
    }
    weights.assign(DIM * DIM, 0);
    os_acc.assign(DIM * DIM, 0);
    for (auto& l : lds) l.block_stride = DIM;
  }

  [[noreturn]] void illegal(const std::string& why) { throw IllegalOperand(why); }

  // The garbage address as a DIM x DIM operand (zeros / no write).
  uint64_t garbage_op() const { return GARBAGE | ((uint64_t)DIM << 32) | ((uint64_t)DIM << 48); }

  uint32_t max_block_len(int elem_bytes) const {
    return std::max(1, cfg.dma_max_bytes / (DIM * elem_bytes));
  }

  // Check rows [row, row + n*stride) of a local memory.
  void check_rows(bool is_acc, uint64_t row, uint64_t n, uint64_t stride, const char* what) {
    if (n == 0 || cfg.hardware_wraparound) return;
    uint64_t last = row + (n - 1) * stride;
    uint64_t cap = is_acc ? acc_rows : sp_rows;
    if (last >= cap)
      illegal(std::string(what) + ": " + (is_acc ? "accumulator" : "scratchpad") + " row " +
              std::to_string(last) + " out of range (" + std::to_string(cap) + " rows)");
  }

  // -------------------------------------------------------------------------- DMA
  // mvin: rows x cols elements from DRAM into local memory (state = 0, 1, 2 for mvin, mvin2, mvin3).
  void mvin(processor_t* p, int state, uint64_t dram, uint64_t rs2, double t_issue) {
    Operand o = operand(rs2);
    const LoadState& s = lds[state];
    if (o.l.garbage) illegal("mvin to the garbage address");
    if (o.rows > (uint32_t)DIM) illegal("mvin rows " + std::to_string(o.rows) + " > DIM");
    if (!o.l.is_acc && (o.addr >> 29)) illegal("mvin: scratchpad address with accumulator flag bits");
    int eb = (o.l.is_acc && !s.shrunk) ? 4 : 1;
    uint32_t blocks = (o.cols + DIM - 1) / DIM;
    if (o.cols > max_block_len(eb) * DIM)
      illegal("mvin cols " + std::to_string(o.cols) + " > " + std::to_string(max_block_len(eb) * DIM));
    uint32_t bstride = s.block_stride ? s.block_stride : DIM;
    if (s.pixel_repeats > 1) illegal("mvin with pixel_repeats > 1 is not supported");
    for (uint32_t b = 0; b < blocks; b++) check_rows(o.l.is_acc, o.l.row + (uint64_t)b * bstride, o.rows, 1, "mvin");
    st.mvins++;
    bool zeros = dram == 0;  // DRAM address 0 loads zeros (Gemmini's padding / zero-bias idiom)
    if (cfg.functional && o.rows && o.cols) {
      mmu_t* m = p->get_mmu();
      for (uint32_t r = 0; r < o.rows; r++) {
        for (uint32_t c = 0; c < o.cols; c++) {
          uint64_t src = dram + r * s.stride + (uint64_t)c * eb;
          uint32_t row = o.l.row + (c / DIM) * bstride + r;
          uint32_t col = c % DIM;
          if (o.l.is_acc) {
            int64_t v = zeros ? 0 : (eb == 4 ? (int64_t)m->load<int32_t>(src) : (int64_t)m->load<int8_t>(src));
            if (s.scale != 1.0f) v = scale_rne(v, s.scale);
            int32_t& d = acc[(size_t)row * DIM + col];
            d = o.l.accumulate ? (int32_t)((uint32_t)d + (uint32_t)sat32(v)) : sat32(v);
          } else {
            int64_t v = zeros ? 0 : (int64_t)m->load<int8_t>(src);
            if (s.scale != 1.0f) v = scale_rne(v, s.scale);
            sp[(size_t)row * DIM + col] = sat8(v);
          }
        }
      }
    }
    // timing
    uint64_t row_bytes = (uint64_t)o.cols * eb;
    double dma = zeros ? 0 : dma_cycles(o.rows, row_bytes, s.stride, dram);
    st.bytes_in += zeros ? 0 : (uint64_t)o.rows * row_bytes;
    double d = tm.dispatch(LD, t_issue);
    double start = std::max(d, tm.free_at[LD]);
    for (uint32_t b = 0; b < blocks; b++) {
      start = std::max(start, tm.read_before(o.l.is_acc, o.l.row + b * bstride, o.rows, d));
      start = std::max(start, tm.ready_of(o.l.is_acc, o.l.row + b * bstride, o.rows));
    }
    double occ = std::max(dma, (double)o.rows);
    double done = start + occ + (zeros ? 0 : cfg.t.dma_latency);
    for (uint32_t b = 0; b < blocks; b++) tm.set_ready(o.l.is_acc, o.l.row + b * bstride, o.rows, done);
    tm.retire(LD, start, occ, done);
  }

  // Cycles the DMA is busy moving `rows` rows of `row_bytes` bytes, `stride` bytes apart in
  // DRAM: the data beats plus each request's own cost (dma_request_cycles), or the bound of the
  // requests in flight (a request moves at most dma_max_bytes, rounded up to whole bus beats, and
  // occupies a slot for dma_latency cycles).
  // Rows closer than a request share requests (consecutive narrow rows are one stream).
  // With an L2 model, a request whose line misses holds its slot l2_miss_latency cycles longer.
  double dma_cycles(double rows, uint64_t row_bytes, uint64_t stride, uint64_t dram) {
    if (rows <= 0 || row_bytes == 0) return 0;
    double misses = 0;
    if (l2.enabled()) {
      for (uint64_t r = 0; r < (uint64_t)rows; r++) {
        uint64_t a = dram + r * stride;
        for (uint64_t l = a / l2.line; l <= (a + row_bytes - 1) / l2.line; l++) misses += l2.miss(l * l2.line);
      }
    }
    uint64_t beat = cfg.dma_bus_bytes, maxb = cfg.dma_max_bytes;
    double reqs = rows * std::max<uint64_t>(1, (row_bytes + maxb - 1) / maxb);
    double bytes = rows * ((row_bytes + beat - 1) / beat) * beat;
    if (stride > 0 && stride < maxb && row_bytes <= stride) {
      double span = (rows - 1) * (double)stride + (double)row_bytes;
      reqs = std::min(reqs, std::ceil(span / (double)maxb) + 1);
      bytes = std::min(bytes, (std::ceil(span / (double)beat) + 1) * beat);
    }
    st.dma_requests += (uint64_t)reqs;
    st.l2_misses += (uint64_t)misses;
    return std::max(bytes / cfg.t.dma_bytes_per_cycle + reqs * cfg.t.dma_request_cycles,
                    (reqs * cfg.t.dma_latency + misses * cfg.t.l2_miss_latency) / cfg.t.dma_max_inflight);
  }

  int8_t acc_to_int8(int32_t v, float scale, int act) {
    int64_t x = scale_rne(v, scale);
    if (act == 1 && x < 0) x = 0;
    return sat8(x);
  }

  void check_act(int act) {
    if (act != 0 && act != 1) illegal("activation " + std::to_string(act) + " is not supported (0 none, 1 ReLU)");
  }

  void mvout(processor_t* p, uint64_t dram, uint64_t rs2, double t_issue, int act_override = -1) {
    Operand o = operand(rs2);
    if (o.l.garbage) illegal("mvout from the garbage address");
    if (!o.l.is_acc && (o.addr >> 29)) illegal("mvout: scratchpad address with accumulator flag bits");
    int act = act_override >= 0 ? act_override : st_act;
    check_act(act);
    bool full = o.l.is_acc && o.l.read_full;
    int eb = full ? 4 : 1;
    st.mvouts++;
    mmu_t* m = p->get_mmu();
    double rows_read, dma;
    uint32_t src_first, src_count;
    if (pool_stride != 0) {
      // Pooling: reads an orows x ocols region (row = orow * ocols + ocol), writes max-pooled
      // porows x pocols pixels at dram + (porow * pool_out_dim + pocol) * stride.
      if (!o.l.is_acc || full) illegal("pooling mvout must read the accumulator with scaling");
      if (o.cols > (uint32_t)DIM) illegal("pooling mvout cols > DIM");
      uint32_t n = pool_orows * pool_ocols;
      check_rows(true, o.l.row, n, 1, "mvout (pooling)");
      if (cfg.functional) {
        for (uint32_t pr = 0; pr < pool_porows; pr++)
          for (uint32_t pc = 0; pc < pool_pocols; pc++)
            for (uint32_t c = 0; c < o.cols; c++) {
              bool any = false;
              int8_t best = 0;
              for (uint32_t wr = 0; wr < pool_size; wr++)
                for (uint32_t wc = 0; wc < pool_size; wc++) {
                  int64_t orow = (int64_t)pr * pool_stride + wr - pool_upad;
                  int64_t ocol = (int64_t)pc * pool_stride + wc - pool_lpad;
                  if (orow < 0 || ocol < 0 || orow >= pool_orows || ocol >= pool_ocols) continue;
                  int8_t v = acc_to_int8(acc[(size_t)(o.l.row + orow * pool_ocols + ocol) * DIM + c], st_scale, act);
                  if (!any || v > best) best = v;
                  any = true;
                }
              m->store<int8_t>(dram + ((uint64_t)pr * pool_out_dim + pc) * st_stride + c, best);
            }
      }
      rows_read = n;
      dma = dma_cycles((double)pool_porows * pool_pocols, o.cols, st_stride, dram);
      st.bytes_out += (uint64_t)pool_porows * pool_pocols * o.cols;
      src_first = o.l.row;
      src_count = n;
    } else {
      if (o.rows > (uint32_t)DIM) illegal("mvout rows " + std::to_string(o.rows) + " > DIM");
      uint32_t maxc = max_block_len(eb) * DIM;
      if (o.cols > maxc) illegal("mvout cols " + std::to_string(o.cols) + " > " + std::to_string(maxc));
      uint32_t blocks = (o.cols + DIM - 1) / DIM;
      for (uint32_t b = 0; b < blocks; b++) check_rows(o.l.is_acc, o.l.row + b * DIM, o.rows, 1, "mvout");
      if (cfg.functional) {
        for (uint32_t r = 0; r < o.rows; r++)
          for (uint32_t c = 0; c < o.cols; c++) {
            uint32_t row = o.l.row + (c / DIM) * DIM + r;
            uint64_t dst = dram + r * st_stride + (uint64_t)c * eb;
            if (!o.l.is_acc) m->store<int8_t>(dst, sp[(size_t)row * DIM + c % DIM]);
            else if (full) m->store<int32_t>(dst, acc[(size_t)row * DIM + c % DIM]);
            else m->store<int8_t>(dst, acc_to_int8(acc[(size_t)row * DIM + c % DIM], st_scale, act));
          }
      }
      uint64_t row_bytes = (uint64_t)o.cols * eb;
      rows_read = (double)o.rows * blocks;
      dma = dma_cycles(o.rows, row_bytes, st_stride, dram);
      st.bytes_out += o.rows * row_bytes;
      src_first = o.l.row;
      src_count = blocks > 1 ? (blocks - 1) * DIM + o.rows : o.rows;
    }
    double d = tm.dispatch(ST, t_issue);
    double start = std::max({d, tm.free_at[ST], tm.ready_of(o.l.is_acc, src_first, src_count)});
    double occ = std::max(rows_read / cfg.t.mvout_rows_per_cycle, dma);
    tm.set_read(o.l.is_acc, src_first, src_count, start + occ);
    tm.retire(ST, start, occ, start + occ + cfg.t.dma_latency);
  }

  // -------------------------------------------------------------------------- execute
  // `reps`: the execute unit runs the command on this many sub-blocks of the mesh, one after the
  // other (a hardware loop told to use only part of the mesh per compute, see loop_conv_ws).
  void preload(uint64_t rs1, uint64_t rs2, double t_issue, uint32_t reps = 1, uint32_t sub_rows = 0) {
    pre_bd = rs1;
    pre_c = rs2;
    have_preload = true;
    Operand bd = operand(rs1), c = operand(rs2);
    if (bd.rows > (uint32_t)DIM || bd.cols > (uint32_t)DIM || c.rows > (uint32_t)DIM || c.cols > (uint32_t)DIM)
      illegal("preload rows/cols > DIM");
    if (!bd.l.garbage) check_rows(bd.l.is_acc, bd.l.row, bd.rows, 1, "preload");
    if (!c.l.garbage) check_rows(c.l.is_acc, c.l.row, c.rows, c_stride, "preload (C)");
    double d = tm.dispatch(EX, t_issue);
    double start = std::max(d, tm.free_at[EX]);
    double occ = 0;
    if (!bd.l.garbage) {
      start = std::max(start, tm.ready_of(bd.l.is_acc, bd.l.row, bd.rows));
      // Gemmini's execute controller shifts a new weight block in over DIM cycles (its
      // block_size rows, whatever the block's rows), fused with the compute before it
      // ("mul_pre"): back to back, those cycles overlap that compute's rows.
      double shift = DIM;
      if (start <= last_compute_end) shift = std::max(0.0, shift - last_compute_rows);
      occ = reps * (cfg.t.preload_cycles + shift + cfg.t.preload_cycles_per_row * (sub_rows ? sub_rows : bd.rows));
      tm.set_read(bd.l.is_acc, bd.l.row, bd.rows, start + occ);
    }
    tm.retire(EX, start, occ, start + occ);
  }

  // Reads a rows x cols block (rows spaced by `stride`) from local memory into a DIM x DIM
  // int32 tile (zeros elsewhere); garbage reads as zeros.
  void read_block(const Operand& o, uint32_t stride, std::vector<int32_t>& out) {
    std::fill(out.begin(), out.end(), 0);
    if (o.l.garbage || !cfg.functional) return;
    for (uint32_t r = 0; r < o.rows; r++) {
      size_t base = (size_t)(o.l.row + r * stride) * DIM;
      for (uint32_t c = 0; c < o.cols; c++)
        out[r * DIM + c] = o.l.is_acc ? acc[base + c] : (int32_t)sp[base + c];
    }
  }

  void compute(bool preloaded, uint64_t rs1, uint64_t rs2, double t_issue, uint32_t reps = 1) {
    Operand a = operand(rs1), bd = operand(rs2);
    if (a.rows > (uint32_t)DIM || a.cols > (uint32_t)DIM || bd.rows > (uint32_t)DIM || bd.cols > (uint32_t)DIM)
      illegal("compute rows/cols > DIM");
    if (a.l.garbage) illegal("compute with a garbage A address");
    uint32_t astr = a_stride ? a_stride : 1;
    check_rows(a.l.is_acc, a.l.row, a_transpose ? DIM : a.rows, a_transpose ? 1 : astr, "compute (A)");
    if (!bd.l.garbage) check_rows(bd.l.is_acc, bd.l.row, bd.rows, 1, "compute (B/D)");
    Operand c = operand(have_preload ? pre_c : ~0ull);
    Operand pb = operand(have_preload ? pre_bd : ~0ull);
    have_preload = false;
    int act = ex_act;
    check_act(act);
    uint64_t macs = (uint64_t)a.rows * a.cols * DIM;
    st.computes++;
    st.macs += macs;
    if (cfg.functional) {
      std::vector<int32_t> A(DIM * DIM), X(DIM * DIM), tmp(DIM * DIM);
      if (a_transpose) {  // the block stored in the scratchpad is A^T
        Operand at = a;
        at.rows = a.cols;
        at.cols = a.rows;
        read_block(at, 1, tmp);
        for (int i = 0; i < DIM; i++)
          for (int k = 0; k < DIM; k++) A[i * DIM + k] = tmp[k * DIM + i];
      } else {
        read_block(a, astr, A);
      }
      std::vector<int64_t> result(DIM * DIM, 0);
      if (ws) {
        if (preloaded) {
          read_block(pb, 1, tmp);
          if (b_transpose)
            for (int k = 0; k < DIM; k++)
              for (int j = 0; j < DIM; j++) weights[k * DIM + j] = tmp[j * DIM + k];
          else
            weights = tmp;
        }
        read_block(bd, 1, X);  // D
        for (int i = 0; i < DIM; i++) {
          const int32_t* ar = &A[i * DIM];
          for (int j = 0; j < DIM; j++) result[i * DIM + j] = X[i * DIM + j];
          for (int k = 0; k < DIM; k++) {
            int32_t av = ar[k];
            if (!av) continue;
            const int32_t* wr = &weights[k * DIM];
            for (int j = 0; j < DIM; j++) result[i * DIM + j] += (int64_t)av * wr[j];
          }
        }
      } else {
        if (preloaded) {
          read_block(pb, 1, tmp);  // D
          for (int i = 0; i < DIM * DIM; i++) os_acc[i] = tmp[i];
        }
        read_block(bd, 1, tmp);  // B
        if (b_transpose)
          for (int k = 0; k < DIM; k++)
            for (int j = 0; j < DIM; j++) X[k * DIM + j] = tmp[j * DIM + k];
        else
          X = tmp;
        for (int i = 0; i < DIM; i++)
          for (int k = 0; k < DIM; k++) {
            int32_t av = A[i * DIM + k];
            if (!av) continue;
            for (int j = 0; j < DIM; j++) os_acc[i * DIM + j] += (int64_t)av * X[k * DIM + j];
          }
        for (int i = 0; i < DIM * DIM; i++) result[i] = rounding_shift(os_acc[i], sys_shift);
      }
      if (!c.l.garbage) {
        uint32_t cs = c_stride ? c_stride : 1;
        check_rows(c.l.is_acc, c.l.row, c.rows, cs, "compute (C)");
        for (uint32_t i = 0; i < c.rows; i++)
          for (uint32_t j = 0; j < c.cols; j++) {
            size_t idx = (size_t)(c.l.row + i * cs) * DIM + j;
            int64_t v = result[i * DIM + j];
            if (c.l.is_acc) {
              int32_t v32 = (int32_t)(uint32_t)(uint64_t)v;
              acc[idx] = c.l.accumulate ? (int32_t)((uint32_t)acc[idx] + (uint32_t)v32) : v32;
            } else {
              if (act == 1 && v < 0) v = 0;
              sp[idx] = sat8(v);
            }
          }
      }
    } else if (!c.l.garbage) {
      check_rows(c.l.is_acc, c.l.row, c.rows, c_stride ? c_stride : 1, "compute (C)");
    }
    // timing
    double d = tm.dispatch(EX, t_issue);
    double start = std::max({d, tm.free_at[EX], tm.ready_of(a.l.is_acc, a.l.row, a_transpose ? DIM : a.rows, a_transpose ? 1 : astr)});
    if (!bd.l.garbage) start = std::max(start, tm.ready_of(bd.l.is_acc, bd.l.row, bd.rows));
    if (!c.l.garbage) start = std::max(start, tm.read_of(c.l.is_acc, c.l.row, c.rows, c_stride ? c_stride : 1));
    // at least kMinComputeRows rows per compute (Gemmini's execute controller feeds at least 4
    // rows, so that two writes to one accumulator row are 4 cycles apart)
    double rows_fed = std::max<uint32_t>(a.rows, kMinComputeRows);
    double occ = reps * (rows_fed / cfg.t.compute_rows_per_cycle);
    double done = start + occ + cfg.t.mesh_fill_drain;
    last_compute_end = start + occ;
    last_compute_rows = rows_fed / cfg.t.compute_rows_per_cycle;
    tm.set_read(a.l.is_acc, a.l.row, a_transpose ? DIM : a.rows, start + occ, a_transpose ? 1 : astr);
    if (!c.l.garbage) tm.set_ready(c.l.is_acc, c.l.row, c.rows, done, c_stride ? c_stride : 1);
    tm.retire(EX, start, occ, done);
  }

  // -------------------------------------------------------------------------- config
  void config(uint64_t rs1, uint64_t rs2, double t_issue) {
    int kind = rs1 & 3;
    Engine e = EX;
    if (kind == 0) {
      if (((rs1 >> 7) & 1) == 0) {
        ws = (rs1 >> 2) & 1;
        ex_act = (rs1 >> 3) & 3;
        check_act(ex_act);
        a_transpose = (rs1 >> 8) & 1;
        b_transpose = (rs1 >> 9) & 1;
        ex_acc_scale = f32_from_bits((uint32_t)(rs1 >> 32));
        sys_shift = (uint32_t)rs2;
      }
      a_stride = (rs1 >> 16) & 0xFFFF;
      c_stride = (rs2 >> 48) & 0xFFFF;
      if (a_stride == 0) a_stride = 1;
      if (c_stride == 0) c_stride = 1;
    } else if (kind == 1) {
      e = LD;
      int id = (rs1 >> 3) & 3;
      if (id > 2) illegal("config_ld: load state id 3 does not exist");
      LoadState& s = lds[id];
      s.shrunk = (rs1 >> 2) & 1;
      s.pixel_repeats = (rs1 >> 8) & 0xFF;
      s.block_stride = (rs1 >> 16) & 0xFFFF;
      uint32_t bits = (uint32_t)(rs1 >> 32);
      s.scale = bits ? f32_from_bits(bits) : 1.0f;
      s.stride = rs2;
    } else if (kind == 2) {
      e = ST;
      st_act = (rs1 >> 2) & 3;
      check_act(st_act);
      pool_stride = (rs1 >> 4) & 3;
      pool_size = (rs1 >> 6) & 3;
      pool_upad = (rs1 >> 8) & 3;
      pool_lpad = (rs1 >> 10) & 3;
      pool_out_dim = (rs1 >> 24) & 0xFF;
      pool_porows = (rs1 >> 32) & 0xFF;
      pool_pocols = (rs1 >> 40) & 0xFF;
      pool_orows = (rs1 >> 48) & 0xFF;
      pool_ocols = (rs1 >> 56) & 0xFF;
      st_stride = (uint32_t)rs2;
      uint32_t bits = (uint32_t)(rs2 >> 32);
      st_scale = bits ? f32_from_bits(bits) : 1.0f;
    } else {
      // CONFIG norm (3): normalisation unit settings; this model has no normalisation unit,
      // the command only takes a slot in the execute queue.
    }
    double d = tm.dispatch(e, t_issue);
    double start = std::max(d, tm.free_at[e]);
    tm.retire(e, start, 0, start);
  }

  // First scratchpad row of `rows` rows that end at row `end` (a hardware loop's B / weights);
  // with hardware_wraparound a tile larger than that wraps around from the top.
  uint64_t sp_at(uint64_t row) const { return cfg.hardware_wraparound ? row % sp_rows : row; }
  uint32_t acc_at(uint64_t row) const { return (uint32_t)(cfg.hardware_wraparound ? row % acc_rows : row); }
  uint64_t wrapped_start(uint64_t end, uint64_t rows) const {
    if (rows <= end || !cfg.hardware_wraparound) return end - rows;
    return (uint64_t)((((int64_t)end - (int64_t)rows) % (int64_t)sp_rows + sp_rows) % sp_rows);
  }

  // -------------------------------------------------------------------------- LOOP_WS
  // Tiled matmul C = A * B + D over I x J x K blocks of DIM, as Gemmini's loop unroller does.
  void loop_ws(processor_t* p, uint64_t rs1, uint64_t rs2, double t) {
    bool ex_accumulate = rs1 & 1, full_C = (rs1 >> 1) & 1, low_D = (rs1 >> 2) & 1;
    int act = (rs1 >> 8) & 3;
    int b_id = (rs1 >> 16) & 3, a_id = (rs1 >> 18) & 3;
    bool ta = rs2 & 1, tb = (rs2 >> 1) & 1, resadd = (rs2 >> 2) & 1;
    // ours (timing only): rs1[47:32] / rs1[63:48] = rows (K) / columns (J) of the mesh one compute
    // uses (0 = DIM); each compute then stands for a preload and compute per such sub-block
    uint64_t blk_rows = (rs1 >> 32) & 0xFFFF, blk_cols = (rs1 >> 48) & 0xFFFF;
    if (blk_rows == 0 || blk_rows > (uint64_t)DIM) blk_rows = DIM;
    if (blk_cols == 0 || blk_cols > (uint64_t)DIM) blk_cols = DIM;
    if (resadd) illegal("LOOP_WS resadd is not supported");
    check_act(act);
    uint64_t I = lw_I, J = lw_J, K = lw_K;
    if (I == 0 || J == 0 || K == 0) illegal("LOOP_WS with a zero bound");
    if (lw_padI >= (uint64_t)DIM || lw_padJ >= (uint64_t)DIM || lw_padK >= (uint64_t)DIM) illegal("LOOP_WS padding >= DIM");
    uint32_t half = sp_rows / 2;
    if (a_id > 1 || b_id > 1) illegal("LOOP_WS spad id > 1");
    uint64_t a_start = (uint64_t)a_id * half;
    uint64_t b_end = (uint64_t)(b_id + 1) * half;
    uint64_t a_rows = I * K * DIM, b_rows = K * J * DIM;
    if (!cfg.hardware_wraparound && (b_rows > b_end || a_start + a_rows > b_end - b_rows))
      illegal("LOOP_WS: A and B tiles (" + std::to_string(a_rows + b_rows) + " rows) do not fit their scratchpad half");
    if (!cfg.hardware_wraparound && I * J * DIM > acc_rows / 2) illegal("LOOP_WS: C tile does not fit half the accumulator");
    const uint32_t acc_base = acc_half * (acc_rows / 2);
    uint64_t b_start = wrapped_start(b_end, b_rows);
    st.loop_ws++;
    // the loop unroller accepts the command when its FSM is free; the CPU continues
    int fsm = tm.loop_fsm_next;
    tm.loop_fsm_next ^= 1;
    double t0 = std::max(t, tm.loop_fsm_free[fsm]);
    tm.loop_max_dispatch = t0;
    // The unroller has one command generator per queue (load, execute, store), each emitting
    // one command per cycle; data dependencies order them through the rows they touch.
    double tq[3] = {t0, t0, t0};
    auto next = [&](Engine e) { tq[e] += 1; return tq[e]; };
    // save architectural state the unroller overwrites, restore afterwards
    bool save_ta = a_transpose, save_tb = b_transpose;
    uint32_t save_as = a_stride, save_cs = c_stride;
    LoadState save_ld[3] = {lds[0], lds[1], lds[2]};
    uint64_t save_st_stride = st_stride;
    a_transpose = ta; b_transpose = tb; a_stride = 1; c_stride = 1;
    auto rows_of = [&](uint64_t idx, uint64_t n, uint64_t pad) { return (uint32_t)(DIM - (idx == n - 1 ? pad : 0)); };
    auto pack = [](uint64_t addr, uint64_t cols, uint64_t rows) { return (addr & 0xFFFFFFFFull) | (cols << 32) | (rows << 48); };
    const uint32_t ACC = 0x80000000u, ACCUM = 0x40000000u;
    bool have_D = lw_D != 0;
    // As Gemmini's loop loaders: one mvin moves up to max_block_len blocks (A along K, B and D
    // along J); `group_cols` is the column count of the n blocks from `first` of `count`.
    auto group_cols = [&](uint64_t first, uint64_t n, uint64_t count, uint64_t pad) {
      return (uint64_t)(n * DIM - (first + n >= count ? pad : 0));
    };
    const uint64_t nb_ab = max_block_len(1), nb_d = max_block_len(low_D ? 1 : 4);
    if (have_D) {
      lds[2].stride = lw_sD * (low_D ? 1 : 4);
      lds[2].shrunk = low_D;
      lds[2].block_stride = DIM;
      for (uint64_t i = 0; i < I; i++)
        for (uint64_t j = 0; j < J; j += nb_d) {
          uint64_t n = std::min(nb_d, J - j);
          uint64_t dram = lw_D + (i * DIM * lw_sD + j * DIM) * (low_D ? 1 : 4);
          mvin(p, 2, dram, pack(ACC | acc_at(acc_base + (i * J + j) * DIM), group_cols(j, n, J, lw_padJ), rows_of(i, I, lw_padI)), next(LD));
        }
    }
    lds[0].stride = lw_sA;
    lds[0].block_stride = DIM;
    lds[1].stride = lw_sB;
    lds[1].block_stride = DIM;
    st_stride = lw_sC * (full_C ? 4 : 1);
    for (uint64_t k = 0; k < K; k++)
      for (uint64_t j = 0; j < J; j++)
        for (uint64_t i = 0; i < I; i++) {
          uint32_t a_addr = (uint32_t)sp_at(a_start + (i * K + k) * DIM);
          uint32_t b_addr = (uint32_t)sp_at(b_start + (k * J + j) * DIM);
          if (j == 0) {
            if (ta) mvin(p, 0, lw_A + (k * DIM * lw_sA + i * DIM), pack(a_addr, rows_of(i, I, lw_padI), rows_of(k, K, lw_padK)), next(LD));
            else if (k % nb_ab == 0)
              mvin(p, 0, lw_A + (i * DIM * lw_sA + k * DIM), pack(a_addr, group_cols(k, std::min(nb_ab, K - k), K, lw_padK), rows_of(i, I, lw_padI)), next(LD));
          }
          if (i == 0) {
            if (tb) mvin(p, 1, lw_B + (j * DIM * lw_sB + k * DIM), pack(b_addr, rows_of(k, K, lw_padK), rows_of(j, J, lw_padJ)), next(LD));
            else if (j % nb_ab == 0)
              mvin(p, 1, lw_B + (k * DIM * lw_sB + j * DIM), pack(b_addr, group_cols(j, std::min(nb_ab, J - j), J, lw_padJ), rows_of(k, K, lw_padK)), next(LD));
          }
          uint32_t c_addr = ACC | acc_at(acc_base + (i * J + j) * DIM);
          if (k > 0 || have_D || ex_accumulate) c_addr |= ACCUM;
          uint32_t b_rows_n = tb ? rows_of(j, J, lw_padJ) : rows_of(k, K, lw_padK);
          uint32_t b_cols_n = tb ? rows_of(k, K, lw_padK) : rows_of(j, J, lw_padJ);
          uint32_t red = rows_of(k, K, lw_padK), outc = rows_of(j, J, lw_padJ);
          uint32_t reps = (uint32_t)(((red + blk_rows - 1) / blk_rows) * ((outc + blk_cols - 1) / blk_cols));
          preload(i == 0 ? pack(b_addr, b_cols_n, b_rows_n) : garbage_op(),
                  pack(c_addr, rows_of(j, J, lw_padJ), rows_of(i, I, lw_padI)), next(EX), reps,
                  (uint32_t)std::min<uint64_t>(red, blk_rows));
          uint32_t a_rows_n = ta ? rows_of(k, K, lw_padK) : rows_of(i, I, lw_padI);
          uint32_t a_cols_n = ta ? rows_of(i, I, lw_padI) : rows_of(k, K, lw_padK);
          compute(i == 0, pack(a_addr, a_cols_n, a_rows_n), garbage_op(), next(EX), reps);
          if (k == K - 1 && lw_C != 0) {
            uint64_t dram = lw_C + (i * DIM * lw_sC + j * DIM) * (full_C ? 4 : 1);
            uint32_t src = ACC | (full_C ? 0x20000000u : 0) | acc_at(acc_base + (i * J + j) * DIM);
            mvout(p, dram, pack(src, rows_of(j, J, lw_padJ), rows_of(i, I, lw_padI)), next(ST), act ? act : -1);
          }
        }
    a_transpose = save_ta; b_transpose = save_tb; a_stride = save_as; c_stride = save_cs;
    lds[0] = save_ld[0]; lds[1] = save_ld[1]; lds[2] = save_ld[2];
    st_stride = save_st_stride;
    tm.loop_fsm_free[fsm] = std::max({tq[0], tq[1], tq[2], tm.loop_max_dispatch});
    tm.last_dispatch = t0;
    if (lw_C != 0) acc_half ^= 1;
  }

  // -------------------------------------------------------------------------- LOOP_CONV_WS
  void loop_conv_ws(processor_t* p, uint64_t rs1, uint64_t rs2, double t) {
    auto f = [](uint64_t v, int lo, int bits) { return (v >> lo) & ((1ull << bits) - 1); };
    // CONFIG_1
    uint64_t batch_size = f(lc[0][0], 0, 16), in_row_dim = f(lc[0][0], 16, 16), in_channels = f(lc[0][0], 32, 16), out_channels = f(lc[0][0], 48, 16);
    uint64_t out_row_dim = f(lc[0][1], 0, 16), pool_out_row_dim = f(lc[0][1], 16, 16), out_col_dim = f(lc[0][1], 32, 16), stride = f(lc[0][1], 48, 8), padding = f(lc[0][1], 56, 8);
    // CONFIG_2
    uint64_t pool_padding = f(lc[1][0], 0, 8), pstride = f(lc[1][0], 8, 8), psize = f(lc[1][0], 16, 16), pool_out_col_dim = f(lc[1][0], 32, 16), kernel_dim = f(lc[1][0], 48, 16);
    uint64_t pochs = f(lc[1][1], 0, 16), pocols = f(lc[1][1], 16, 16), porows = f(lc[1][1], 32, 16), batches = f(lc[1][1], 48, 16);
    // CONFIG_3
    uint64_t lpad = f(lc[2][0], 0, 16), kchs = f(lc[2][0], 16, 16), kcols = f(lc[2][0], 32, 16), krows = f(lc[2][0], 48, 16);
    uint64_t in_col_dim = f(lc[2][1], 0, 16), plpad = f(lc[2][1], 16, 8), dpad = f(lc[2][1], 24, 8), upad = f(lc[2][1], 32, 16), rpad = f(lc[2][1], 48, 16);
    // CONFIG_4
    uint64_t dilation = f(lc[3][0], 0, 10), pdpad = f(lc[3][0], 10, 11), pupad = f(lc[3][0], 21, 11), prpad = f(lc[3][0], 32, 16), orows = f(lc[3][0], 48, 16);
    uint64_t ocols = f(lc[3][1], 0, 16), out_stride = f(lc[3][1], 16, 16), weight_stride = f(lc[3][1], 32, 16), in_stride = f(lc[3][1], 48, 16);
    uint64_t weights_addr = lc[4][0], output_addr = lc[4][1], bias_addr = lc[5][0], input_addr = lc[5][1];
    (void)batch_size; (void)out_row_dim; (void)padding; (void)pool_padding; (void)pdpad; (void)prpad; (void)pool_out_col_dim;
    (void)out_channels;
    bool no_bias = rs1 & 1, wrot180 = (rs1 >> 1) & 1, dw = (rs1 >> 6) & 1;
    // ours (timing only, results unchanged): rs1[47:32] / rs1[63:48] = input / output channels
    // one compute may use (mesh rows / columns; 0 = DIM). A program that unrolls a mapping over
    // only part of the mesh issues a preload and computes per such sub-block.
    uint64_t blk_rows = f(rs1, 32, 16), blk_cols = f(rs1, 48, 16);
    if (blk_rows == 0 || blk_rows > (uint64_t)DIM) blk_rows = DIM;
    if (blk_cols == 0 || blk_cols > (uint64_t)DIM) blk_cols = DIM;
    bool trans_any = (rs1 >> 2) & 0xF;
    int b_id = (rs1 >> 16) & 3, a_id = (rs1 >> 18) & 3;
    bool no_pool = rs2 & 1, downsample = (rs2 >> 1) & 1, input_dilated = (rs2 >> 2) & 1;
    int act = (rs2 >> 3) & 3;
    if (trans_any) illegal("LOOP_CONV_WS transposed layouts are not supported");
    if (downsample || input_dilated) illegal("LOOP_CONV_WS downsample / input dilation are not supported");
    check_act(act);
    if (dilation == 0) dilation = 1;
    if (stride == 0 || batches == 0 || orows == 0 || ocols == 0 || pochs == 0 || krows == 0 || kcols == 0 || kchs == 0)
      illegal("LOOP_CONV_WS with a zero bound");
    if (a_id > 1 || b_id > 1) illegal("LOOP_CONV_WS spad id > 1");
    if (!in_stride) in_stride = in_channels;
    if (!weight_stride) weight_stride = out_channels;
    if (!out_stride) out_stride = out_channels;
    if (!in_col_dim) in_col_dim = in_row_dim;
    if (dw && kchs != 1) illegal("LOOP_CONV_WS depthwise requires kchs = 1");
    uint64_t irows = (orows - 1) * stride + (krows - 1) * dilation + 1;
    uint64_t icols = (ocols - 1) * stride + (kcols - 1) * dilation + 1;
    int64_t irows_unpadded, icols_unpadded;
    if (cfg.hardware_wraparound) {
      // Gemmini's unroller: input extent orows * stride + dilated krows - 1, and the unpadded
      // extent a 16-bit field (padding larger than the tile wraps it around to ~65535 rows)
      irows = orows * stride + (krows - 1) * dilation;
      icols = ocols * stride + (kcols - 1) * dilation;
      irows_unpadded = (int64_t)((irows - upad - dpad) & 0xFFFF);
      icols_unpadded = (int64_t)((icols - lpad - rpad) & 0xFFFF);
    } else {
      if (upad + dpad > irows || lpad + rpad > icols) illegal("LOOP_CONV_WS padding exceeds the input tile");
      irows_unpadded = irows - upad - dpad;
      icols_unpadded = icols - lpad - rpad;
    }
    uint64_t och_blocks = (pochs + DIM - 1) / DIM;
    uint64_t ich_blocks = dw ? och_blocks : (kchs + DIM - 1) / DIM;
    uint64_t ichs = dw ? pochs : kchs;
    uint64_t half = sp_rows / 2;
    uint64_t a_start = a_id * half, b_end = (b_id + 1) * half;
    uint64_t input_spad_stride = batches * irows * icols;        // rows per input-channel block
    uint64_t weight_spad_stride = dw ? krows * kcols : krows * kcols * kchs;  // rows per och block
    uint64_t in_rows = ich_blocks * input_spad_stride, w_rows = och_blocks * weight_spad_stride;
    if (!cfg.hardware_wraparound && (w_rows > b_end || a_start + in_rows > b_end - w_rows))
      illegal("LOOP_CONV_WS: input and weight tiles (" + std::to_string(in_rows + w_rows) + " rows) do not fit their scratchpad half");
    uint64_t out_pixels = batches * orows * ocols;
    if (!cfg.hardware_wraparound && och_blocks * out_pixels > acc_rows / 2) illegal("LOOP_CONV_WS: output tile does not fit half the accumulator");
    const uint32_t acc_base = acc_half * (acc_rows / 2);
    uint64_t w_start = wrapped_start(b_end, w_rows);
    bool pool = !no_pool && pstride != 0;
    if (pool && (porows == 0 || pocols == 0 || psize == 0)) illegal("LOOP_CONV_WS pooling with a zero bound");
    st.loop_conv_ws++;

    int fsm = tm.loop_fsm_next;
    tm.loop_fsm_next ^= 1;
    double t0 = std::max(t, tm.loop_fsm_free[fsm]);
    tm.loop_max_dispatch = t0;
    if (tm.trace) fprintf(tm.trace, "C %.1f %.1f\n", t, t0);
    double tq[3] = {t0, t0, t0};
    auto next = [&](Engine e) { tq[e] += 1; return tq[e]; };
    auto pack = [](uint64_t addr, uint64_t cols, uint64_t rows) { return (addr & 0xFFFFFFFFull) | (cols << 32) | (rows << 48); };
    const uint32_t ACC = 0x80000000u, ACCUM = 0x40000000u;
    // save state the unroller changes
    LoadState save_ld[3] = {lds[0], lds[1], lds[2]};
    uint32_t save_as = a_stride, save_cs = c_stride;
    bool save_ta = a_transpose, save_tb = b_transpose, save_ws = ws;
    int save_ex_act = ex_act;
    uint64_t save_st_stride = st_stride;
    uint32_t save_pool[9] = {pool_stride, pool_size, pool_upad, pool_lpad, pool_out_dim, pool_porows, pool_pocols, pool_orows, pool_ocols};
    ws = true; a_transpose = false; b_transpose = false; ex_act = 0; c_stride = 1;

    uint32_t max_cols_sp = max_block_len(1) * DIM;
    // 1. bias (broadcast over pixels); DRAM address 0 loads zeros (no_bias); bias_addr 0 keeps the accumulator
    if (bias_addr != 0) {
      lds[2] = LoadState();
      lds[2].stride = 0;
      lds[2].block_stride = DIM;
      for (uint64_t ob = 0; ob < och_blocks; ob++) {
        uint32_t nch = (uint32_t)std::min<uint64_t>(DIM, pochs - ob * DIM);
        for (uint64_t b = 0; b < batches; b++)
          for (uint64_t orow = 0; orow < orows; orow++)
            for (uint64_t ocol = 0; ocol < ocols; ocol += DIM) {
              uint32_t n = (uint32_t)std::min<uint64_t>(DIM, ocols - ocol);
              uint32_t row = acc_at(acc_base + ob * out_pixels + b * orows * ocols + orow * ocols + ocol);
              mvin(p, 2, no_bias ? 0 : bias_addr + ob * DIM * 4, pack(ACC | row, nch, n), next(LD));
            }
      }
    }
    // 2. input: virtual rows -upad .. irows_unpadded + dpad, cols likewise; outside the image: zeros
    lds[0] = LoadState();
    lds[0].stride = in_stride;
    lds[0].block_stride = (uint32_t)input_spad_stride;
    for (uint64_t b = 0; b < batches; b++)
      for (int64_t irow = -(int64_t)upad; irow < irows_unpadded + (int64_t)dpad; irow++)
        for (int64_t icol = -(int64_t)lpad; icol < icols_unpadded + (int64_t)rpad;) {
          bool zero_row = irow < 0 || irow >= irows_unpadded;
          int64_t n;
          bool zero;
          if (zero_row) { n = std::min<int64_t>(DIM, icols_unpadded + (int64_t)rpad - icol); zero = true; }
          else if (icol < 0) { n = std::min<int64_t>(DIM, -icol); zero = true; }
          else if (icol >= icols_unpadded) { n = std::min<int64_t>(DIM, icols_unpadded + (int64_t)rpad - icol); zero = true; }
          else { n = std::min<int64_t>(DIM, icols_unpadded - icol); zero = false; }
          for (uint64_t ich = 0; ich < ichs; ich += max_cols_sp) {
            uint32_t nch = (uint32_t)std::min<uint64_t>(max_cols_sp, ichs - ich);
            uint64_t row = sp_at(a_start + (ich / DIM) * input_spad_stride + b * irows * icols + (irow + upad) * icols + (icol + lpad));
            uint64_t dram = zero ? 0 : input_addr + (((b * in_row_dim + irow) * in_col_dim + icol) * in_stride + ich);
            mvin(p, 0, dram, pack(row, nch, n), next(LD));
          }
          icol += n;
        }
    // 3. weights: rows = input channels of a kernel position, cols = output channels
    lds[1] = LoadState();
    lds[1].stride = weight_stride;
    lds[1].block_stride = (uint32_t)weight_spad_stride;
    for (uint64_t krow = 0; krow < krows; krow++)
      for (uint64_t kcol = 0; kcol < kcols; kcol++) {
        uint64_t kr = wrot180 ? kernel_dim - 1 - krow : krow, kc = wrot180 ? kernel_dim - 1 - kcol : kcol;
        if (wrot180 && (krow >= kernel_dim || kcol >= kernel_dim)) illegal("LOOP_CONV_WS wrot180 with a kernel tile larger than kernel_dim");
        for (uint64_t och = 0; och < pochs; och += max_cols_sp) {
          uint32_t nch = (uint32_t)std::min<uint64_t>(max_cols_sp, pochs - och);
          if (dw) {
            uint64_t row = w_start + (och / DIM) * weight_spad_stride + krow * kcols + kcol;
            mvin(p, 1, weights_addr + (kr * kernel_dim + kc) * weight_stride + och, pack(row, nch, 1), next(LD));
          } else {
            for (uint64_t kch = 0; kch < kchs; kch += DIM) {
              uint32_t nk = (uint32_t)std::min<uint64_t>(DIM, kchs - kch);
              uint64_t row = w_start + (och / DIM) * weight_spad_stride + krow * kcols * kchs + kcol * kchs + kch;
              uint64_t dram = weights_addr + ((kr * kernel_dim + kc) * in_channels + kch) * weight_stride + och;
              mvin(p, 1, dram, pack(row, nch, nk), next(LD));
            }
          }
        }
      }
    // the execute generator starts once the loop's loads are all issued
    tq[EX] = std::max(tq[EX], tm.loop_max_dispatch);
    // 4. compute: per och block, kernel position, ich block, output pixels in rows of DIM
    a_stride = (uint32_t)stride;
    for (uint64_t ob = 0; ob < och_blocks; ob++) {
      uint32_t nch = (uint32_t)std::min<uint64_t>(DIM, pochs - ob * DIM);
      for (uint64_t krow = 0; krow < krows; krow++)
        for (uint64_t kcol = 0; kcol < kcols; kcol++)
          for (uint64_t kb = 0; kb < (dw ? 1 : ich_blocks); kb++) {
            uint32_t nk = dw ? (uint32_t)nch : (uint32_t)std::min<uint64_t>(DIM, kchs - kb * DIM);
            uint64_t ib = dw ? ob : kb;
            uint64_t w_row = dw ? w_start + ob * weight_spad_stride + krow * kcols + kcol
                                : w_start + ob * weight_spad_stride + krow * kcols * kchs + kcol * kchs + kb * DIM;
            bool first = true;
            bool first_red = krow == 0 && kcol == 0 && kb == 0;
            for (uint64_t b = 0; b < batches; b++)
              for (uint64_t orow = 0; orow < orows; orow++)
                for (uint64_t ocol = 0; ocol < ocols; ocol += DIM) {
                  uint32_t n = (uint32_t)std::min<uint64_t>(DIM, ocols - ocol);
                  uint64_t irow = orow * stride + krow * dilation, icol = ocol * stride + kcol * dilation;
                  uint64_t a_row = sp_at(a_start + ib * input_spad_stride + b * irows * icols + irow * icols + icol);
                  uint32_t c_row = acc_at(acc_base + ob * out_pixels + b * orows * ocols + orow * ocols + ocol);
                  bool overwrite = first_red && bias_addr == 0 && no_bias;
                  uint32_t c_addr = ACC | (overwrite ? 0 : ACCUM) | c_row;
                  if (dw) {
                    dw_compute(first ? w_row : ~0ull, a_row, c_addr, n, nch, next(EX));
                  } else {
                    uint32_t reps = (uint32_t)(((nk + blk_rows - 1) / blk_rows) * ((nch + blk_cols - 1) / blk_cols));
                    preload(first ? pack(w_row, nch, nk) : garbage_op(), pack(c_addr, nch, n), next(EX), reps,
                            (uint32_t)std::min<uint64_t>(nk, blk_rows));
                    compute(first, pack(a_row, nk, n), garbage_op(), next(EX), reps);
                  }
                  first = false;
                }
          }
    }
    // 5. output (with pooling through the store unit's pooling)
    if (output_addr != 0) {
      if (pool) {
        pool_stride = (uint32_t)pstride; pool_size = (uint32_t)psize; pool_upad = (uint32_t)pupad; pool_lpad = (uint32_t)plpad;
        pool_out_dim = (uint32_t)pool_out_col_dim; pool_porows = (uint32_t)porows; pool_pocols = (uint32_t)pocols;
        pool_orows = (uint32_t)orows; pool_ocols = (uint32_t)ocols;
        (void)pool_out_row_dim;
        st_stride = out_stride;
        for (uint64_t ob = 0; ob < och_blocks; ob++) {
          uint32_t nch = (uint32_t)std::min<uint64_t>(DIM, pochs - ob * DIM);
          for (uint64_t b = 0; b < batches; b++) {
            uint64_t dram = output_addr + (b * pool_out_row_dim * pool_out_col_dim) * out_stride + ob * DIM;
            mvout(p, dram, pack(ACC | (acc_base + (uint32_t)(ob * out_pixels + b * orows * ocols)), nch, 0), next(ST), act);
          }
        }
      } else {
        pool_stride = 0;
        st_stride = out_stride;
        for (uint64_t ob = 0; ob < och_blocks; ob++) {
          uint32_t nch = (uint32_t)std::min<uint64_t>(DIM, pochs - ob * DIM);
          for (uint64_t b = 0; b < batches; b++)
            for (uint64_t orow = 0; orow < orows; orow++)
              for (uint64_t ocol = 0; ocol < ocols; ocol += DIM) {
                uint32_t n = (uint32_t)std::min<uint64_t>(DIM, ocols - ocol);
                uint64_t dram = output_addr + ((b * out_row_dim + orow) * out_col_dim + ocol) * out_stride + ob * DIM;
                uint32_t row = acc_at(acc_base + ob * out_pixels + b * orows * ocols + orow * ocols + ocol);
                mvout(p, dram, pack(ACC | row, nch, n), next(ST), act);
              }
        }
      }
    }
    lds[0] = save_ld[0]; lds[1] = save_ld[1]; lds[2] = save_ld[2];
    a_stride = save_as; c_stride = save_cs; a_transpose = save_ta; b_transpose = save_tb; ws = save_ws; ex_act = save_ex_act;
    st_stride = save_st_stride;
    pool_stride = save_pool[0]; pool_size = save_pool[1]; pool_upad = save_pool[2]; pool_lpad = save_pool[3];
    pool_out_dim = save_pool[4]; pool_porows = save_pool[5]; pool_pocols = save_pool[6]; pool_orows = save_pool[7]; pool_ocols = save_pool[8];
    tm.loop_fsm_free[fsm] = std::max({tq[0], tq[1], tq[2], tm.loop_max_dispatch});
    tm.last_dispatch = t0;
    if (output_addr != 0) acc_half ^= 1;
  }

  // Depthwise step: C[i][c] (+)= A[i][c] * w[c] for n pixels (rows spaced by a_stride), nch channels.
  // `w_row` is the scratchpad row holding the per-channel weights (or ~0: keep the latched ones).
  void dw_compute(uint64_t w_row, uint64_t a_row, uint32_t c_addr, uint32_t n, uint32_t nch, double t_issue) {
    LocalAddr c = decode_local(c_addr);
    check_rows(false, a_row, n, a_stride, "depthwise compute (A)");
    check_rows(true, c.row, n, 1, "depthwise compute (C)");
    double t_pre = t_issue;
    if (w_row != ~0ull) {
      check_rows(false, w_row, 1, 1, "depthwise preload");
      if (cfg.functional)
        for (uint32_t j = 0; j < nch; j++) weights[j] = sp[(size_t)w_row * DIM + j];
      double d = tm.dispatch(EX, t_pre);
      double start = std::max({d, tm.free_at[EX], tm.ready_of(false, (uint32_t)w_row, 1)});
      tm.retire(EX, start, cfg.t.preload_cycles, start + cfg.t.preload_cycles);
    }
    st.computes++;
    st.macs += (uint64_t)n * nch;
    if (cfg.functional)
      for (uint32_t i = 0; i < n; i++) {
        size_t arow = (size_t)(a_row + i * a_stride) * DIM, crow = (size_t)(c.row + i) * DIM;
        for (uint32_t j = 0; j < nch; j++) {
          int32_t v = (int32_t)sp[arow + j] * weights[j];
          acc[crow + j] = c.accumulate ? (int32_t)((uint32_t)acc[crow + j] + (uint32_t)v) : v;
        }
      }
    double d = tm.dispatch(EX, t_issue);
    double start = std::max({d, tm.free_at[EX], tm.ready_of(false, (uint32_t)a_row, n, a_stride), tm.read_of(true, c.row, n)});
    double occ = std::max<uint32_t>(n, 1) / cfg.t.compute_rows_per_cycle;
    double done = start + occ + cfg.t.mesh_fill_drain;
    tm.set_read(false, (uint32_t)a_row, n, start + occ, a_stride);
    tm.set_ready(true, c.row, n, done);
    tm.retire(EX, start, occ, done);
  }

  // -------------------------------------------------------------------------- counters
  uint64_t counter(uint64_t rs1) {
    // rs1 bit 0: reset the statistics; rs1[11:4]: which counter to read (see docs/spike_sim.md)
    if (rs1 & 1) { st = Stats(); tm.busy[0] = tm.busy[1] = tm.busy[2] = 0; }
    switch ((rs1 >> 4) & 0xFF) {
      case 0: return (uint64_t)tm.all_done();
      case 1: return (uint64_t)tm.busy[LD];
      case 2: return (uint64_t)tm.busy[EX];
      case 3: return (uint64_t)tm.busy[ST];
      case 4: return st.macs;
      case 5: return st.bytes_in;
      case 6: return st.bytes_out;
      case 7: return st.computes;
      default: return 0;
    }
  }

  void write_stats() {
    if (stats_path.empty()) return;
    FILE* fp = fopen(stats_path.c_str(), "w");
    if (!fp) return;
    double total = std::max(st.last_cycle, tm.all_done());
    double peak = (double)DIM * DIM * std::max(total, 1.0);
    fprintf(fp, "{\n  \"config\": \"%s\",\n  \"dim\": %d,\n  \"functional\": %s,\n", cfg.name.c_str(), DIM, cfg.functional ? "true" : "false");
    fprintf(fp, "  \"accelerator_done_cycle\": %.0f,\n", tm.all_done());
    fprintf(fp, "  \"busy_cycles\": {\"load\": %.0f, \"execute\": %.0f, \"store\": %.0f},\n", tm.busy[LD], tm.busy[EX], tm.busy[ST]);
    fprintf(fp, "  \"cpu_stall_cycles\": %.0f,\n", st.cpu_stall_cycles);
    fprintf(fp, "  \"bytes_in\": %llu,\n  \"bytes_out\": %llu,\n  \"macs\": %llu,\n", (unsigned long long)st.bytes_in,
            (unsigned long long)st.bytes_out, (unsigned long long)st.macs);
    fprintf(fp, "  \"utilization\": %.6f,\n", (double)st.macs / peak);
    fprintf(fp, "  \"mvins\": %llu,\n  \"mvouts\": %llu,\n  \"computes\": %llu,\n  \"loop_ws\": %llu,\n  \"loop_conv_ws\": %llu,\n  \"fences\": %llu,\n",
            (unsigned long long)st.mvins, (unsigned long long)st.mvouts, (unsigned long long)st.computes,
            (unsigned long long)st.loop_ws, (unsigned long long)st.loop_conv_ws, (unsigned long long)st.fences);
    fprintf(fp, "  \"dma_requests\": %llu,\n  \"l2_misses\": %llu,\n", (unsigned long long)st.dma_requests,
            (unsigned long long)st.l2_misses);
    fprintf(fp, "  \"illegal\": %llu,\n  \"commands\": {", (unsigned long long)st.illegal);
    bool first = true;
    for (int i = 0; i < 128; i++)
      if (st.commands[i]) {
        fprintf(fp, "%s\"%d\": %llu", first ? "" : ", ", i, (unsigned long long)st.commands[i]);
        first = false;
      }
    fprintf(fp, "}\n}\n");
    fclose(fp);
  }

  // -------------------------------------------------------------------------- dispatch
  uint64_t execute(processor_t* p, unsigned funct, uint64_t rs1, uint64_t rs2) {
    state_t* s = p->get_state();
    charge_cpu(s);
    now = (double)s->mcycle->read();
    double t = now;
    st.commands[funct & 127]++;
    tm.last_dispatch = t;
    uint64_t result = 0;
    switch (funct) {
      case 0: config(rs1, rs2, t); break;
      case 1: mvin(p, 1, rs1, rs2, t); break;
      case 2: mvin(p, 0, rs1, rs2, t); break;
      case 14: mvin(p, 2, rs1, rs2, t); break;
      case 3: mvout(p, rs1, rs2, t); break;
      case 4: compute(true, rs1, rs2, t); break;
      case 5: compute(false, rs1, rs2, t); break;
      case 6: preload(rs1, rs2, t); break;
      case 7: break;  // FLUSH: drops translations in the accelerator's TLB; nothing to model
      case 8: loop_ws(p, rs1, rs2, t); break;
      case 9: lw_padI = rs1 & 0xFFFF; lw_padJ = (rs1 >> 16) & 0xFFFF; lw_padK = (rs1 >> 32) & 0xFFFF;
              lw_I = rs2 & 0xFFFF; lw_J = (rs2 >> 16) & 0xFFFF; lw_K = (rs2 >> 32) & 0xFFFF; break;
      case 10: lw_A = rs1; lw_B = rs2; break;
      case 11: lw_D = rs1; lw_C = rs2; break;
      case 12: lw_sA = rs1; lw_sB = rs2; break;
      case 13: lw_sD = rs1; lw_sC = rs2; break;
      case 15:
        if (tm.trace) fprintf(tm.trace, "I %llu\n", (unsigned long long)s->minstret->read());
        loop_conv_ws(p, rs1, rs2, t);
        break;
      case 16: case 17: case 18: case 19: case 20: case 21:
        lc[funct - 16][0] = rs1; lc[funct - 16][1] = rs2; break;
      case 126: result = counter(rs1); break;
      default: illegal("unknown Gemmini funct7 " + std::to_string(funct));
    }
    // The CPU waits until the command stream accepted the command (reservation station full).
    double accept = std::max(t, tm.last_dispatch);
    double new_cycle = std::max(now + cfg.t.rocc_issue_cycles, accept);
    st.cpu_stall_cycles += std::max(0.0, accept - now);
    advance(s, new_cycle);
    st.last_cycle = new_cycle;
    return result;
  }

  // Moves mcycle forward to `target` (bump, not write: Spike allows one CSR write per step).
  static void advance(state_t* s, double target) {
    reg_t cur = s->mcycle->read();
    if (target > (double)cur) s->mcycle->bump((reg_t)target - cur);
  }

  void fence(processor_t* p) {
    state_t* s = p->get_state();
    charge_cpu(s);
    double t = (double)s->mcycle->read();
    double done = tm.all_done();
    st.fences++;
    if (done > t) {
      st.cpu_stall_cycles += done - t;
      advance(s, done);
      t = done;
    }
    st.last_cycle = t;
  }
};

void write_stats_at_exit() {
  if (g_instance) g_instance->write_stats();
}

// Spike retires instructions in batches (up to 5,000 per step) and brings mcycle / minstret up
// to date only when a batch ends, so inside a batch an extension reads the cycle of the batch's
// start. An accelerator command must see the core's true time (else the core's own work between
// commands lands in one lump at the batch's end, after the accelerator has gone idle, instead of
// overlapping it): like Spike's counter CSRs, a command first ends the batch before it (Spike's
// "serialize before": the instruction is run again at the start of the next step) and runs then.
constexpr reg_t kSerializeBefore = 3;  // Spike's PC_SERIALIZE_BEFORE (an odd, invalid pc)
static bool serialize_before(state_t* s) {
  if (!s->serialized) return true;
  s->serialized = false;
  return false;
}

reg_t gemmini_custom3(processor_t* p, insn_t insn, reg_t pc) {
  auto* ext = g_instance;
  state_t* s = p->get_state();
  if (serialize_before(s)) return kSerializeBefore;
  reg_t rs1 = s->XPR[insn.rs1()], rs2 = s->XPR[insn.rs2()];
  unsigned funct = insn.funct7();
  unsigned funct3 = (insn.bits() >> 12) & 7;
  if ((funct3 & 3) != 3 && funct != 126) {
    fprintf(stderr, "gemmini: illegal instruction at pc 0x%llx: RoCC commands need both source registers (funct3 = 3 or 7)\n",
            (unsigned long long)pc);
    throw trap_illegal_instruction(insn.bits());
  }
  try {
    uint64_t r = ext->execute(p, funct, rs1, rs2);
    if ((funct3 & 4) && insn.rd() != 0) s->XPR.write(insn.rd(), r);
  } catch (const IllegalOperand& e) {
    ext->st.illegal++;
    fprintf(stderr, "gemmini: illegal instruction at pc 0x%llx (funct7 %u): %s\n", (unsigned long long)pc, funct, e.what());
    throw trap_illegal_instruction(insn.bits());
  }
  return pc + 4;
}

// A RISC-V `fence` waits for the accelerator (Gemmini software's gemmini_fence()).
reg_t gemmini_fence(processor_t* p, insn_t insn, reg_t pc) {
  (void)insn;
  if (serialize_before(p->get_state())) return kSerializeBefore;
  g_instance->fence(p);
  return pc + 4;
}

class gemmini_extension_t : public extension_t {
 public:
  gemmini_extension_t() {
    const char* cfg_path = getenv("SPIKE_SIM_GEMMINI_CONFIG");
    Config c;
    try {
      c = load_config(cfg_path);
    } catch (const std::exception& e) {
      fprintf(stderr, "gemmini: %s\n", e.what());
      exit(3);
    }
    if (!g_instance) {
      g_instance = new Gemmini(c);
      const char* sp = getenv("SPIKE_SIM_GEMMINI_STATS");
      if (sp) g_instance->stats_path = sp;
      const char* tp = getenv("SPIKE_SIM_GEMMINI_TRACE");
      if (tp && *tp) g_instance->tm.trace = fopen(tp, "w");
      atexit(write_stats_at_exit);
    }
  }
  const char* name() const override { return "gemmini"; }
  std::vector<insn_desc_t> get_instructions(const processor_t&) override {
    std::vector<insn_desc_t> v;
    push_custom_insn(v, ROCC_OPCODE3, ROCC_OPCODE_MASK, gemmini_custom3, gemmini_custom3);
    // FENCE (opcode MISC-MEM, funct3 0); fence.i (funct3 1) is left to Spike
    push_custom_insn(v, 0x0000000f, 0x0000707f, gemmini_fence, gemmini_fence);
    return v;
  }
  std::vector<disasm_insn_t*> get_disasms(const processor_t* = nullptr) override { return {}; }
};

}  // namespace

REGISTER_EXTENSION(gemmini, []() { return new gemmini_extension_t; })
