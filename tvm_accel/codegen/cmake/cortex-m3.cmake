# Cortex-M3 (Armv7-M, no FPU): mps2-an385.
set(TVM_ACCEL_CPU_FLAGS "-mcpu=cortex-m3 -mfloat-abi=soft")
set(TVM_ACCEL_HAS_FPU OFF)
include(${CMAKE_CURRENT_LIST_DIR}/arm-none-eabi.cmake)
