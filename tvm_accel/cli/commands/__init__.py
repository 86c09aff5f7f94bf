"""Sub-commands of ``tvm-accel``; one module each, discovered by ``tvm_accel.cli``."""
