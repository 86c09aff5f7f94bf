"""Random graphs for the property tests (a hypothesis strategy)."""

from __future__ import annotations

from hypothesis import strategies as st

from memory_planner import Graph


@st.composite
def graphs(draw, min_ops: int = 1, max_ops: int = 7, max_size: int = 300, ranges: bool = False):
    """Random DAGs; with ``ranges``, operators that are neither views nor in place read some of
    their inputs over a random byte range (slices: progressive release), and some operators
    gather fresh tensors (a contiguous concatenation)."""
    n_inputs = draw(st.integers(1, 2))
    g = Graph("random")
    available: list[str] = []
    unread: set[str] = set()
    for i in range(n_inputs):
        t = g.add_tensor(f"in{i}", draw(st.integers(1, max_size)))
        g.mark_input(t)
        available.append(t)
        unread.add(t)
    n_ops = draw(st.integers(min_ops, max_ops))
    for k in range(n_ops):
        alias = len(available) > 0 and draw(st.integers(0, 5)) == 0
        if alias:
            src = draw(st.sampled_from(available))
            out = g.add_tensor(f"t{k}_0", g.tensors[src].size - draw(st.integers(0, g.tensors[src].size)))
            g.add_operator(f"op{k}", [src], [out], alias=True, kind="reshape")
            unread.discard(src)
            available.append(out)
            unread.add(out)
            continue
        fresh = [t for t in sorted(unread) if t not in g.inputs]
        if ranges and len(fresh) >= 2 and draw(st.integers(0, 3)) == 0:
            # a gather: pieces one after the other in its output (stored there if the planner may)
            pieces = fresh[:draw(st.integers(2, len(fresh)))]
            out = g.add_tensor(f"t{k}_0", sum(g.tensors[t].size for t in pieces))
            g.add_operator(f"op{k}", pieces, [out], kind="concat", gather=True)
            for t in pieces:
                unread.discard(t)
            available.append(out)
            unread.add(out)
            continue
        # read a still-unread tensor first (so inputs get used), then a few random ones
        ins = [sorted(unread)[0]] if unread and draw(st.booleans()) else []
        ins += draw(st.lists(st.sampled_from(available), min_size=0 if ins else 1, max_size=2))
        ins = list(dict.fromkeys(ins))
        n_out = draw(st.integers(1, 2))
        outs = [g.add_tensor(f"t{k}_{j}", draw(st.integers(1, max_size))) for j in range(n_out)]
        ws = draw(st.sampled_from([0, 0, 0, draw(st.integers(1, max_size))]))
        inplace = draw(st.integers(0, 3)) == 0
        # an accumulating operator names the inputs it may overwrite (else: any input)
        named = draw(st.lists(st.sampled_from(ins), max_size=1, unique=True)) if inplace else []
        reads = {}
        if ranges and not inplace:
            for t in ins:
                size = g.tensors[t].size
                if size > 1 and draw(st.integers(0, 2)) > 0:
                    lo = draw(st.integers(0, size - 1))
                    reads[t] = (lo, draw(st.integers(lo + 1, size)))
        g.add_operator(f"op{k}", ins, outs, workspace=ws, kind="op", inplace=inplace, inplace_inputs=named,
                       reads=reads)
        for t in ins:
            unread.discard(t)
        available += outs
        unread.update(outs)
    for t in sorted(unread):
        if t in g.inputs:  # an input nobody reads: give it a reader
            out = g.add_tensor(f"t_use_{t}", draw(st.integers(1, max_size)))
            g.add_operator(f"use_{t}", [t], [out], kind="op")
            g.mark_output(out)
        elif draw(st.integers(0, 3)) > 0:
            g.mark_output(t)
    return g.check()
