// Open MPI for data-parallel training. MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM and MPI_IN_PLACE are
// cast macros Swift cannot import, so the calls Sprout makes are wrapped here as static inline
// functions. Every function returns MPI's error code (MPI_SUCCESS = 0) unless noted.
#include <mpi.h>
#include <stdint.h>

/// MPI_Init_thread with MPI_THREAD_FUNNELED (only the main thread calls MPI).
static inline int sprout_mpi_init(void) {
    int initialized = 0, provided = 0;
    MPI_Initialized(&initialized);
    if (initialized) return 0;
    return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
}
static inline int sprout_mpi_rank(void) { int r = 0; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
static inline int sprout_mpi_size(void) { int n = 1; MPI_Comm_size(MPI_COMM_WORLD, &n); return n; }
/// In-place sum over all ranks.
static inline int sprout_mpi_allreduce_sum(float *buffer, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
/// In-place sum over all ranks, in double (batch-norm statistics).
static inline int sprout_mpi_allreduce_sum_double(double *buffer, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
/// Every rank's value, in rank order, into `out` (size() entries).
static inline int sprout_mpi_allgather_u64(uint64_t value, uint64_t *out) {
    return MPI_Allgather(&value, 1, MPI_UINT64_T, out, 1, MPI_UINT64_T, MPI_COMM_WORLD);
}
static inline int sprout_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static inline int sprout_mpi_finalize(void) { return MPI_Finalize(); }
/// Ends every rank of the job with `code`.
static inline void sprout_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
