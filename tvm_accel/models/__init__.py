"""Models the project generates itself (seeded, deterministic), e.g. the bundled default
keyword-spotting model used when no model is given."""

from tvm_accel.models.default_kws import build_default_kws, default_model_path

__all__ = ["build_default_kws", "default_model_path"]
