#define _GNU_SOURCE
#include "sprout_kernels.h"
#include <cpuid.h>
#include <dlfcn.h>
#include <sched.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

uint32_t sprout_cpu_features(void) {
    unsigned int a, b, c, d;
    uint32_t f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (c & bit_SSE4_2) f |= SPROUT_CPU_SSE42;
    int osxsave = (c & bit_OSXSAVE) != 0;
    int avx_os = osxsave && ((read_xcr0() & 0x6) == 0x6);
    int avx512_os = osxsave && ((read_xcr0() & 0xe6) == 0xe6);
    if ((c & bit_AVX) && avx_os) f |= SPROUT_CPU_AVX;
    if ((c & bit_FMA) && avx_os) f |= SPROUT_CPU_FMA;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        if ((b & bit_AVX2) && avx_os) f |= SPROUT_CPU_AVX2;
        if ((b & bit_AVX512F) && avx512_os) f |= SPROUT_CPU_AVX512F;
    }
    return f;
}

void sprout_cpu_brand(char *out, size_t capacity) {
    unsigned int regs[12];
    if (capacity == 0) return;
    out[0] = 0;
    if (__get_cpuid_max(0x80000000, NULL) < 0x80000004) return;
    for (unsigned int i = 0; i < 3; i++)
        __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    char brand[49];
    memcpy(brand, regs, 48);
    brand[48] = 0;
    const char *start = brand;
    while (*start == ' ') start++;
    strncpy(out, start, capacity - 1);
    out[capacity - 1] = 0;
}

void sprout_set_omp_threads(int threads) {
    // oneDNN brings libgomp in as its own dependency; look the symbol up rather than
    // linking libgomp ourselves (Debian ships no unversioned libgomp.so link).
    void (*set_threads)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (set_threads) set_threads(threads);
}

int sprout_available_cores(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void sprout_line_buffer_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

// ---- Sprout's loops on OpenMP's pool --------------------------------------------------
// oneDNN runs on libgomp's threads, which spin for a while after each parallel region.
// When Sprout's own loops ran on a second pool (libdispatch), those spinning threads took
// the cores from them: mnist-cnn trained 20-27% faster with OMP_WAIT_POLICY=passive, but
// passive waiting made batch-1 inference 1.4-1.7x slower. Running Sprout's loops on the same
// OpenMP pool (libgomp's GOMP_parallel entry point, found at run time like omp_set_num_threads)
// removes the fight and keeps the spinning that makes small calls fast.
typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
typedef int (*omp_int_fn)(void);

static gomp_parallel_fn gomp_parallel;
static omp_int_fn omp_thread_num, omp_num_threads;

__attribute__((constructor)) static void find_openmp(void) {
    gomp_parallel = (gomp_parallel_fn)dlsym(RTLD_DEFAULT, "GOMP_parallel");
    omp_thread_num = (omp_int_fn)dlsym(RTLD_DEFAULT, "omp_get_thread_num");
    omp_num_threads = (omp_int_fn)dlsym(RTLD_DEFAULT, "omp_get_num_threads");
    if (!omp_thread_num || !omp_num_threads) gomp_parallel = 0;
}

int sprout_openmp_pool_available(void) { return gomp_parallel != 0; }

typedef struct {
    void (*body)(void *, long, long);
    void *context;
    long count, chunks;
} parallel_job;

static void run_chunks(void *data) {
    const parallel_job *job = data;
    long t = omp_thread_num(), nt = omp_num_threads();
    for (long c = t; c < job->chunks; c += nt) {
        long begin = c * job->count / job->chunks, end = (c + 1) * job->count / job->chunks;
        if (begin < end) job->body(job->context, begin, end);
    }
}

void sprout_openmp_parallel(long count, long chunks, void (*body)(void *, long, long), void *context) {
    parallel_job job = {body, context, count, chunks};
    gomp_parallel(run_chunks, &job, (unsigned)chunks, 0);
}

// ---- Per-thread thread count (ExecutionContext) ------------------------------------
static __thread int t_threads;
void sprout_thread_set_threads(int threads) { t_threads = threads; }
int sprout_thread_threads(void) { return t_threads; }
