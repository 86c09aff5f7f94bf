/* The harness services on the host: stdio. */
#include <stdio.h>
#include <stdlib.h>
#include "tvm_accel_platform.h"

#define MAX_FILES 8
static FILE *files[MAX_FILES];

int tva_open(const char *name, int write) {
  for (int h = 0; h < MAX_FILES; ++h) {
    if (!files[h]) {
      files[h] = fopen(name, write ? "wb" : "rb");
      return files[h] ? h : -1;
    }
  }
  return -1;
}

long tva_read(int handle, void *buf, unsigned long n) {
  size_t got = fread(buf, 1, n, files[handle]);
  return ferror(files[handle]) ? -1 : (long)got;
}

int tva_write(int handle, const void *buf, unsigned long n) {
  return fwrite(buf, 1, n, files[handle]) == n ? 0 : -1;
}

void tva_close(int handle) {
  fclose(files[handle]);
  files[handle] = NULL;
}

void tva_puts(const char *s) { fputs(s, stdout); }
void tva_put_uint(unsigned long v) { printf("%lu", v); }
void tva_exit(int code) {
  fflush(stdout);
  exit(code);
}
