# Cortex-M33 with single-precision FPU and DSP (Armv8-M Mainline): stm32u5, mps2-an505.
set(TVM_ACCEL_CPU_FLAGS "-mcpu=cortex-m33 -mfloat-abi=hard -mfpu=fpv5-sp-d16")
set(TVM_ACCEL_HAS_FPU ON)
include(${CMAKE_CURRENT_LIST_DIR}/arm-none-eabi.cmake)
