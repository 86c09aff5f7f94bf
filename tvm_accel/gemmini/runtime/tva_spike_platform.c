/* The platform services of tvm_accel_platform.h on Spike (spike_sim's bare-metal runtime,
 * picolibc's stdio on the HTIF console), shared by the model harness (tva_spike_harness.c) and
 * the one-layer harness (tva_layer_harness.c). No file system: tva_open fails. */
#include <stdio.h>
#include <stdlib.h>

#include "tvm_accel_platform.h"

void tva_puts(const char *s) { fputs(s, stdout); }
void tva_put_uint(unsigned long v) { printf("%lu", v); }
void tva_exit(int code) { exit(code); }
int tva_open(const char *name, int write) { (void)name; (void)write; return -1; }
long tva_read(int handle, void *buf, unsigned long n) { (void)handle; (void)buf; (void)n; return -1; }
int tva_write(int handle, const void *buf, unsigned long n) { (void)handle; (void)buf; (void)n; return -1; }
void tva_close(int handle) { (void)handle; }
