# Common part of the Cortex-M toolchain files (arm-none-eabi-gcc, newlib-nano, bare metal).
# Each <cpu>.cmake sets TVM_ACCEL_CPU_FLAGS and includes this file.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_OBJCOPY arm-none-eabi-objcopy)
set(CMAKE_SIZE arm-none-eabi-size)
# No host executables can run: test the compiler with a static library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_FLAGS_INIT "${TVM_ACCEL_CPU_FLAGS} -mthumb")
set(CMAKE_CXX_FLAGS_INIT "${TVM_ACCEL_CPU_FLAGS} -mthumb")
set(CMAKE_ASM_FLAGS_INIT "${TVM_ACCEL_CPU_FLAGS} -mthumb")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${TVM_ACCEL_CPU_FLAGS} -mthumb --specs=nano.specs -nostartfiles")
set(TVM_ACCEL_CROSS_CORTEX_M ON)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
