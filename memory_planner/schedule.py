"""Operator order for minimum peak memory.

``schedule(graph, bufs, align, method)`` returns an order and says which method decided it:

- ``original``: the model's own order.
- ``series-parallel``: the exact algorithm for series-parallel graphs (``series_parallel``).
- ``exact-dp``: exact search over the downsets of the graph (the sets of operators that can
  have run), keeping for each the smallest peak that reaches it; exponential only in the
  graph's width, so exact and fast on real networks. Used when the graph is not
  series-parallel and the number of downsets stays under a limit.
- ``cp-sat``: an exact CP-SAT model (one boolean "done by step t" per operator and step,
  live bytes per step, minimise the largest), with a time limit, warm-started from the best
  order known; ``optimal`` is False if the time limit stopped it.

The peak of an order is always measured by ``graph.live_bytes``, the single definition.
When operators read byte ranges (dead prefixes, see ``graph``) or gather pieces into their
output, the downset search counts that exactly; series-parallel and CP-SAT count whole
buffers, so their orders are then candidates, proven optimal only when they meet the lower
bound.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Sequence

from .cpsat import solve_deterministic
from .errors import PlanningError
from .graph import Graph, Storage, live_bytes
from .series_parallel import sp_order


@dataclass
class Schedule:
    order: list[int]
    peak: int  # live-bytes peak of this order
    method: str
    optimal: bool  # proven minimum over all orders
    best_bound: int  # lower bound on the peak of every order (== peak when optimal)
    seconds: float = 0.0


def local_lower_bound(graph: Graph, bufs: Sequence[Storage], align: int) -> int:
    """A bound every order obeys: an operator's inputs, outputs and workspace are alive
    together, and so are all model inputs (step 0) and all model outputs (last step)."""
    n = len(graph.operators)
    per_op = [0] * n
    first = last = 0
    for b in bufs:
        s = b.padded(align)
        for u in b.users:  # a reader needs the buffer from the first byte it reads on
            if not b.inside:  # (a gathered piece is inside its reader's output)
                per_op[u] += s - b.read_start.get(u, 0) // align * align
        if b.producer is not None:
            per_op[b.producer] += s
        if b.is_input:
            first += s - min((b.read_start.get(u, 0) for u in b.users), default=0) // align * align
        if b.is_output:
            last += s
    return max(max(per_op), first, last)


def _order_peak(bufs: Sequence[Storage], order: Sequence[int], align: int) -> int:
    return max(live_bytes(bufs, order, align))


#: Elementary steps of dp_order per second of budget (about what CPython visits per second on
#: the development machine; on a slower or busier one the same budget takes longer, same result).
WORK_PER_SECOND = 6.0e6


def dp_order(graph: Graph, bufs: Sequence[Storage], align: int, state_limit: int = 20000,
             time_limit: float | None = None, beam: int | None = None):
    """Exact minimum-peak order by search over downsets; None if a layer holds more than
    ``state_limit`` downsets or the work of ``time_limit`` seconds is spent. With ``beam``, a
    heuristic instead: each layer keeps only the ``beam`` downsets of smallest (peak, live bytes).

    The limit counts work (buffers and operators visited, ``WORK_PER_SECOND`` of them per
    second of budget) instead of reading the clock, so the result does not depend on load."""
    work_limit = None if time_limit is None else time_limit * WORK_PER_SECOND
    work = 0
    n = len(graph.operators)
    pred_mask = [sum(1 << p for p in ps) for ps in graph.predecessors]
    size = [b.padded(align) for b in bufs]
    prod_bit = [0 if b.producer is None else 1 << b.producer for b in bufs]
    users = [sum(1 << u for u in b.users) for b in bufs]
    keep = [b.is_output for b in bufs]
    # dead prefixes: (reader bit, first byte it reads) of the buffers read in part
    partial = [[(1 << u, lo) for u, lo in b.read_start.items()] for b in bufs]
    whole = [sum(1 << u for u in b.users if u not in b.read_start) for b in bufs]
    produced_by: list[list[int]] = [[] for _ in range(n)]
    for i, b in enumerate(bufs):
        if b.producer is not None:
            produced_by[b.producer].append(i)
    alloc = [sum(size[i] for i in produced_by[v]) for v in range(n)]
    for b, s in zip(bufs, size):  # a gathered piece is inside the output of its reader
        if b.inside:
            alloc[next(iter(b.users))] -= s

    def mem(S: int) -> int:
        total = 0
        for i in range(len(bufs)):
            pb = prod_bit[i]
            if pb and not (S & pb):
                continue  # not produced yet
            if S and not keep[i] and not (users[i] & ~S):
                continue  # every reader has run: freed
            total += size[i]
            if partial[i] and not keep[i] and not (whole[i] & ~S) and (not pb or S & pb):
                # only range readers left: the bytes below the lowest they read are dead
                total -= min(lo for bit, lo in partial[i] if not S & bit) // align * align
        return total

    layer = {0: (0, None, -1)}  # downset -> (peak so far, parent downset, last operator)
    history = [layer]
    for _ in range(n):
        nxt: dict[int, tuple[int, int, int]] = {}
        for S, (peak, _, _) in layer.items():
            work += len(bufs) + n
            if work_limit is not None and work > work_limit:
                return None
            base = mem(S)
            for v in range(n):
                bit = 1 << v
                if S & bit or (pred_mask[v] & ~S):
                    continue
                cand = max(peak, base + alloc[v])
                T = S | bit
                old = nxt.get(T)
                if old is None or cand < old[0]:
                    nxt[T] = (cand, S, v)
        if beam is not None and len(nxt) > beam:
            ranked = sorted(nxt.items(), key=lambda kv: (kv[1][0], mem(kv[0])))
            nxt = dict(ranked[:beam])
        elif len(nxt) > state_limit:
            return None
        layer = nxt
        history.append(layer)
    full = (1 << n) - 1
    order = []
    S = full
    for k in range(n, 0, -1):
        _, parent, v = history[k][S]
        order.append(v)
        S = parent
    order.reverse()
    return order


def cpsat_order(graph: Graph, bufs: Sequence[Storage], align: int, time_limit: float,
                hint: Sequence[int], lower_bound: int = 0, workers: int = 1):
    """Exact CP-SAT model; returns (order, proven_optimal, best_bound) or None."""
    from ortools.sat.python import cp_model

    n = len(graph.operators)
    m = cp_model.CpModel()
    done = [[m.NewBoolVar(f"d{v}_{t}") for t in range(n)] for v in range(n)]
    for t in range(n):
        m.Add(sum(done[v][t] for v in range(n)) == t + 1)
    for v in range(n):
        for t in range(n - 1):
            m.AddImplication(done[v][t], done[v][t + 1])
        for p in graph.predecessors[v]:
            m.Add(done[v][0] == 0)
            for t in range(1, n):
                m.AddImplication(done[v][t], done[p][t - 1])

    def running(v: int, t: int):
        return done[v][t] - (done[v][t - 1] if t else 0)

    terms: list[list] = [[] for _ in range(n)]
    for bi, b in enumerate(bufs):
        s = b.padded(align)
        if not s:
            continue
        if b.producer is not None and not b.users and not b.is_output:
            for t in range(n):
                terms[t].append(s * running(b.producer, t))
            continue
        for t in range(n):
            if b.is_output and b.producer is None:
                terms[t].append(s)
                continue
            alive = m.NewBoolVar(f"a{bi}_{t}")
            made = done[b.producer][t] if b.producer is not None else 1
            if b.is_output:
                m.Add(alive >= made)
            for u in b.users:
                before = done[u][t - 1] if t else 0
                m.Add(alive >= made - before)
            terms[t].append(s * alive)
    whole = [dataclasses.replace(b, read_start={}, inside=None) for b in bufs]  # the model counts whole buffers
    upper = _order_peak(whole, hint, align)
    peak = m.NewIntVar(min(lower_bound, upper), upper, "peak")
    for t in range(n):
        m.Add(peak >= sum(terms[t]))
    m.Minimize(peak)
    pos = {v: i for i, v in enumerate(hint)}
    for v in range(n):
        for t in range(n):
            m.AddHint(done[v][t], int(pos[v] <= t))
    status, solver = solve_deterministic(m, time_limit, workers)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    finish = {v: next(t for t in range(n) if solver.Value(done[v][t])) for v in range(n)}
    order = sorted(range(n), key=lambda v: finish[v])
    return order, status == cp_model.OPTIMAL, int(solver.BestObjectiveBound())


def exhaustive_order(graph: Graph, bufs: Sequence[Storage], align: int, max_orders: int = 200000):
    """Brute force over every topological order (for tests and tiny graphs)."""
    n = len(graph.operators)
    preds = graph.predecessors
    best: tuple[int, list[int]] | None = None
    count = 0

    def rec(prefix: list[int], placed: set[int]):
        nonlocal best, count
        if len(prefix) == n:
            count += 1
            if count > max_orders:
                raise PlanningError(f"more than {max_orders} orders: too many for brute force")
            p = _order_peak(bufs, prefix, align)
            if best is None or p < best[0]:
                best = (p, list(prefix))
            return
        for v in range(n):
            if v not in placed and preds[v] <= placed:
                placed.add(v)
                prefix.append(v)
                rec(prefix, placed)
                prefix.pop()
                placed.discard(v)

    rec([], set())
    assert best is not None
    return best[1], best[0]


ORDER_METHODS = ("original", "optimal")


def schedule(graph: Graph, bufs: Sequence[Storage], align: int = 16, method: str = "optimal",
             time_limit: float = 1.0, dp_state_limit: int = 20000) -> Schedule:
    """Order the operators. ``method``: 'original', 'optimal', or an explicit order
    (a list of operator names) which is checked and kept."""
    t0 = time.perf_counter()
    n = len(graph.operators)
    original = list(range(n))
    bound = local_lower_bound(graph, bufs, align)
    if not isinstance(method, str):
        names = list(method)
        idx = [graph.op_index(x) for x in names]
        if not graph.is_topological(idx):
            raise PlanningError("the given operator order is not a valid execution order")
        peak = _order_peak(bufs, idx, align)
        return Schedule(idx, peak, "given", peak <= bound, bound, time.perf_counter() - t0)
    if method not in ORDER_METHODS:
        raise PlanningError(f"unknown order method {method!r} (choose from {', '.join(ORDER_METHODS)})")
    orig_peak = _order_peak(bufs, original, align)
    if method == "original":
        return Schedule(original, orig_peak, "original", orig_peak <= bound, bound,
                        time.perf_counter() - t0)
    if orig_peak <= bound:  # the model's order already meets a bound of every order
        return Schedule(original, orig_peak, "original (meets the lower bound)", True, orig_peak,
                        time.perf_counter() - t0)
    # dead prefixes: series-parallel and CP-SAT model whole buffers, so their orders are only
    # candidates (the downset search counts dead prefixes and stays exact)
    whole = not any(b.read_start or b.inside for b in bufs)
    best, best_peak, method = original, orig_peak, "original (no better order found in time)"
    order = sp_order(graph, bufs, align)
    if order is not None:
        peak = _order_peak(bufs, order, align)
        if whole:
            return Schedule(order, peak, "series-parallel", True, peak, time.perf_counter() - t0)
        if peak < best_peak:
            best, best_peak, method = order, peak, "series-parallel of whole buffers (not proven)"
            if peak <= bound:
                return Schedule(order, peak, "series-parallel (meets the lower bound)", True, peak,
                                time.perf_counter() - t0)
    order = dp_order(graph, bufs, align, dp_state_limit, time_limit=0.35 * time_limit)
    if order is not None:
        peak = _order_peak(bufs, order, align)
        return Schedule(order, peak, "exact-dp", True, peak, time.perf_counter() - t0)
    # too wide for the exact search: a beam search gives a good order, CP-SAT tries to
    # improve it and prove a bound
    beam_order = dp_order(graph, bufs, align, beam=64, time_limit=0.15 * time_limit)
    if beam_order is not None:
        p = _order_peak(bufs, beam_order, align)
        if p < best_peak:
            best, best_peak, method = beam_order, p, "beam search (not proven)"
    res = cpsat_order(graph, bufs, align, 0.5 * time_limit, best, bound)
    if res is not None:
        order, optimal, best_bound = res
        peak = _order_peak(bufs, order, align)
        if whole:
            bound = max(bound, best_bound)
        else:  # optimal for whole buffers only
            optimal = peak <= bound
        if peak < best_peak or optimal:
            return Schedule(order, peak, "cp-sat" + ("" if optimal else " (time limit)" if whole else
                                                     " of whole buffers (not proven)"), optimal,
                            bound, time.perf_counter() - t0)
    return Schedule(best, best_peak, method, best_peak <= bound, bound, time.perf_counter() - t0)


__all__ = ["Schedule", "schedule", "sp_order", "dp_order", "cpsat_order", "exhaustive_order",
           "local_lower_bound", "ORDER_METHODS"]
