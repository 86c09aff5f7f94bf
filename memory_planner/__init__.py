"""Static memory planning for one inference: operator order for minimum peak memory, and an
offset for every buffer in one arena. Pure Python on a small graph model; knows no TVM.

    from memory_planner import Graph, plan
    g = Graph("net")
    g.add_tensor("x", 1024); g.add_tensor("y", 512); g.mark_input("x"); g.mark_output("y")
    g.add_operator("conv", ["x"], ["y"], kind="conv2d")
    p = plan(g, order="optimal", layout="optimal", align=16)
    p.arena_bytes, p.offsets, p.order, p.lower_bound, p.method
"""

from .errors import PlanningError
from .graph import Graph, Operator, Storage, Tensor, box_byte_range, live_bytes, peak_of_order, storages
from .layout import LAYOUT_METHODS
from .plan import Plan, PlannedBuffer, plan, tflm_baseline
from .schedule import ORDER_METHODS
from .verify import verify, violations

__all__ = [
    "Graph", "Operator", "Tensor", "Storage", "Plan", "PlannedBuffer", "PlanningError",
    "plan", "tflm_baseline", "verify", "violations", "storages", "live_bytes", "peak_of_order",
    "box_byte_range", "ORDER_METHODS", "LAYOUT_METHODS",
]
