/* The few I/O services a model's test harness needs: files, text out, exit.
 * Cortex-M: Arm semihosting (semihost.c; QEMU -semihosting). Host: stdio (host_io.c). */
#ifndef TVM_ACCEL_PLATFORM_H_
#define TVM_ACCEL_PLATFORM_H_
#ifdef __cplusplus
extern "C" {
#endif
/* Opens a file of the host's current directory; write != 0 creates/truncates it. -1 on error. */
int tva_open(const char *name, int write);
/* Bytes read (0 at end of file), or -1. */
long tva_read(int handle, void *buf, unsigned long n);
/* 0 when all n bytes were written, else -1. */
int tva_write(int handle, const void *buf, unsigned long n);
void tva_close(int handle);
void tva_puts(const char *s);
void tva_put_uint(unsigned long v);
void tva_exit(int code) __attribute__((noreturn));
#ifdef __cplusplus
}
#endif
#endif
