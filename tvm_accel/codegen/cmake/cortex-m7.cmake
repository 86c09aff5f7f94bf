# Cortex-M7 with double-precision FPU (Armv7E-M): nucleo-h743zi, mps2-an500.
set(TVM_ACCEL_CPU_FLAGS "-mcpu=cortex-m7 -mfloat-abi=hard -mfpu=fpv5-d16")
set(TVM_ACCEL_HAS_FPU ON)
include(${CMAKE_CURRENT_LIST_DIR}/arm-none-eabi.cmake)
