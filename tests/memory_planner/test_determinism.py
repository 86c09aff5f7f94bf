"""Plans do not depend on machine load: the solvers' limits are budgets of work."""

from memory_planner import plan
from memory_planner.graph import Graph


def _wide_graph() -> Graph:
    """Seven parallel chains merged at the end: too wide for a quick exact order, so the beam
    search and CP-SAT run, and the layout is above the greedy's bound."""
    g = Graph("wide")
    g.add_tensor("in", 64)
    g.mark_input("in")
    sizes = [16, 48, 128, 32, 64, 112, 80]
    ends, k = [], 0
    for c in range(7):
        t = "in"
        for d in range(6):
            k += 1
            name = f"t{k}"
            g.add_tensor(name, sizes[(c * 3 + d * 5) % len(sizes)])
            g.add_operator(f"op{k}", [t], [name])
            t = name
        ends.append(t)
    g.add_tensor("out", 16)
    g.add_operator("merge", ends, ["out"])
    g.mark_output("out")
    return g


def test_same_plan_on_every_run():
    first = plan(_wide_graph(), align=16, order_time_limit=0.2, layout_time_limit=0.1)
    for _ in range(2):
        again = plan(_wide_graph(), align=16, order_time_limit=0.2, layout_time_limit=0.1)
        assert again.order == first.order
        assert again.offsets == first.offsets
        assert again.arena_bytes == first.arena_bytes


def test_cpu_load_does_not_change_the_plan():
    """A busy CPU (simulated by burning the budget's wall time in another thread) gives the
    same plan as an idle one."""
    import threading

    quiet = plan(_wide_graph(), align=16, order_time_limit=0.2, layout_time_limit=0.1)
    stop = threading.Event()

    def burn():
        x = 0
        while not stop.is_set():
            x += 1

    workers = [threading.Thread(target=burn) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        busy = plan(_wide_graph(), align=16, order_time_limit=0.2, layout_time_limit=0.1)
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert (busy.order, busy.offsets, busy.arena_bytes) == (quiet.order, quiet.offsets, quiet.arena_bytes)
