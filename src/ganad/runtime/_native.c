/* Native CPU kernels of the frozen conv1d stacks (ganad.runtime.native): see that module's doc.
 *
 * Every layer of a stack is one or two *windowed passes* over one sample at a time, channels-last:
 *
 *     out[p * ostride + ooff + q] = act(b[q] + sum_{k < K} win_p[k] * W[k * N + q]),  q < N, p < P,
 *
 * where win_p is the K = taps * c floats of the input starting at row p * istride + ioff (rows of c
 * floats). A stride-2 convolution with kernel 4 is one pass (taps 4, istride 2, ioff -1); a transposed
 * one is an even and an odd pass (taps 2, istride 1, ioff -1 / 0), or one banded pass for narrow
 * outputs. Each layer's input sits in a buffer with a zero row before and after it, which supplies the
 * layers' zero padding, so every window is in bounds. The kernels keep a block of J positions x N
 * outputs in vector registers (GCC vector extensions), so one sample's whole stack runs in L1 cache
 * with one read of its input and one write of its outputs.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef float v4 __attribute__((vector_size(16), aligned(4)));
typedef int vi8 __attribute__((vector_size(32), aligned(4)));
typedef int vi4 __attribute__((vector_size(16), aligned(4)));

/* NV vectors of VW floats per position (N = NV * VW columns starting at column col of W), J positions */
#define BLOCKED(NAME, VT, VI, VW, NV, J)                                                                 \
    static inline void NAME##_run(const float *x, int c, int p, int istride, int ioff, int K,             \
                                  const float *W, int wstride, const VT *bias, int act, float slope,     \
                                  float *out, int ostride, int JJ)                                       \
    {                                                                                                    \
        VT acc[J][NV];                                                                                   \
        for (int j = 0; j < J; j++)                                                                      \
            for (int v = 0; v < NV; v++) acc[j][v] = bias[v];                                            \
        const float *xs = x + (ptrdiff_t)(p * istride + ioff) * c;                                       \
        ptrdiff_t js = (ptrdiff_t)istride * c;                                                           \
        for (int k = 0; k < K; k++) {                                                                    \
            VT w[NV];                                                                                    \
            for (int v = 0; v < NV; v++) memcpy(&w[v], W + (size_t)k * wstride + v * VW, sizeof(VT));   \
            for (int j = 0; j < J; j++) {                                                                \
                if (j >= JJ) break;                                                                      \
                float s = xs[j * js + k];                                                                \
                for (int v = 0; v < NV; v++) acc[j][v] += s * w[v];                                      \
            }                                                                                            \
        }                                                                                                \
        for (int j = 0; j < JJ; j++) {                                                                   \
            float *o = out + (size_t)(p + j) * ostride;                                                  \
            for (int v = 0; v < NV; v++) {                                                               \
                VT a = acc[j][v];                                                                        \
                if (act) {                                                                               \
                    VT ng = a * slope;                                                                   \
                    VI m = a > 0;                                                                        \
                    a = (VT)(((VI)a & m) | ((VI)ng & ~m));                                               \
                }                                                                                        \
                memcpy(o + v * VW, &a, sizeof(VT));                                                      \
            }                                                                                            \
        }                                                                                                \
    }                                                                                                    \
    static void NAME(const float *x, int c, int P, int istride, int ioff, int K, const float *W,         \
                     int wstride, const float *b, int act, float slope, float *out, int ostride)         \
    {                                                                                                    \
        VT bias[NV];                                                                                     \
        for (int v = 0; v < NV; v++)                                                                     \
            for (int l = 0; l < VW; l++) bias[v][l] = b ? b[v * VW + l] : 0.f;                           \
        int p = 0;                                                                                       \
        for (; p + J <= P; p += J)                                                                       \
            NAME##_run(x, c, p, istride, ioff, K, W, wstride, bias, act, slope, out, ostride, J);        \
        for (; p < P; p++)                                                                               \
            NAME##_run(x, c, p, istride, ioff, K, W, wstride, bias, act, slope, out, ostride, 1);        \
    }

BLOCKED(blk4, v4, vi4, 4, 1, 8)
BLOCKED(blk8, v8, vi8, 8, 1, 8)
#ifdef __AVX512F__
/* 512-bit registers (32 of them): wider blocks with more accumulators. Each output lane still sums
   its K products in the same order as in the 256-bit kernels (up to where fused multiply-adds are
   contracted); on
   cores with full-width AVX-512 units (AMD Zen 5, Intel server parts) a block runs about twice as
   fast (benchmarks/RESULTS.md, "512-bit native kernels"). */
typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int vi16 __attribute__((vector_size(64), aligned(4)));
BLOCKED(blk16, v16, vi16, 16, 1, 8)
BLOCKED(blk32, v16, vi16, 16, 2, 6)
BLOCKED(blk64, v16, vi16, 16, 4, 4)
#else
BLOCKED(blk16, v8, vi8, 8, 2, 4)
BLOCKED(blk32, v8, vi8, 8, 4, 2)
#endif

static void scalar_cols(const float *x, int c, int P, int istride, int ioff, int K, const float *W, int wstride,
                        const float *b, int ncol, int act, float slope, float *out, int ostride)
{
    for (int p = 0; p < P; p++) {
        const float *xs = x + (ptrdiff_t)(p * istride + ioff) * c;
        float *o = out + (size_t)p * ostride;
        for (int q = 0; q < ncol; q++) {
            float a = b ? b[q] : 0.f;
            for (int k = 0; k < K; k++) a += xs[k] * W[(size_t)k * wstride + q];
            o[q] = act ? (a > 0.f ? a : a * slope) : a;
        }
    }
}

/* one pass: N output columns in chunks of (64,) 32, 16, 8, 4 and single columns */
static void pass(const float *x, int c, int P, int istride, int ioff, int taps, const float *W, const float *b,
                 int N, int act, float slope, float *out, int ostride)
{
    int K = taps * c, col = 0;
#ifdef __AVX512F__
    while (N - col >= 64) { blk64(x, c, P, istride, ioff, K, W + col, N, b ? b + col : 0, act, slope, out + col, ostride); col += 64; }
#endif
    while (N - col >= 32) { blk32(x, c, P, istride, ioff, K, W + col, N, b ? b + col : 0, act, slope, out + col, ostride); col += 32; }
    if (N - col >= 16) { blk16(x, c, P, istride, ioff, K, W + col, N, b ? b + col : 0, act, slope, out + col, ostride); col += 16; }
    if (N - col >= 8) { blk8(x, c, P, istride, ioff, K, W + col, N, b ? b + col : 0, act, slope, out + col, ostride); col += 8; }
    if (N - col >= 4) { blk4(x, c, P, istride, ioff, K, W + col, N, b ? b + col : 0, act, slope, out + col, ostride); col += 4; }
    if (N > col) scalar_cols(x, c, P, istride, ioff, K, W + col, N, b ? b + col : 0, N - col, act, slope, out + col, ostride);
}

/* Run a stack over samples [s0, s1).
 *   x: n samples of in_rows x in_c floats (channels-last, contiguous);
 *   lay[3 * l]: number of passes, output rows, output channels of layer l;
 *   pas[8 * i]: taps, istride, ioff, N, ostride, ooff, P, act of pass i (all layers' passes in order);
 *   slopes[i], Ws[i] (taps * c rows of N), bs[i] (N or NULL) of pass i;
 *   out_last: n x (rows x channels of the last layer); keep >= 0: also layer keep's output into out_keep;
 *   scratch: 3 * half floats, half >= (rows + 2) x channels of every layer's input and output;
 *   masks (NULL, or nl pointers, each NULL or n x rows x channels of layer l's output): zero the
 *   layer's output where the mask is not > 0 (the backward pass of a ReLU, from its saved output);
 *   saves (NULL, or nl pointers, each NULL or n x rows x channels): a copy of layer l's output.
 */
void ganad_stack(const float *x, long s0, long s1, int in_rows, int in_c, int nl, const int *lay, const int *pas,
                 const float *slopes, const float *const *Ws, const float *const *bs, float *out_last, int keep,
                 float *out_keep, float *scratch, long half, const float *const *masks, float *const *saves)
{
    size_t in_sz = (size_t)in_rows * in_c;
    size_t last_sz = (size_t)lay[3 * (nl - 1) + 1] * lay[3 * (nl - 1) + 2];
    size_t keep_sz = keep >= 0 ? (size_t)lay[3 * keep + 1] * lay[3 * keep + 2] : 0;
    float *pin = scratch + 2 * half;
    for (long s = s0; s < s1; s++) {
        memset(pin, 0, in_c * sizeof(float));
        memcpy(pin + in_c, x + (size_t)s * in_sz, in_sz * sizeof(float));
        memset(pin + in_c + in_sz, 0, in_c * sizeof(float));
        const float *h = pin + in_c;
        int c = in_c, ip = 0;
        for (int l = 0; l < nl; l++) {
            int np = lay[3 * l], rows = lay[3 * l + 1], co = lay[3 * l + 2];
            float *dst;
            if (l == nl - 1) {
                dst = out_last + (size_t)s * last_sz;
            } else {
                float *buf = scratch + (size_t)(l & 1) * half;
                memset(buf, 0, co * sizeof(float));
                memset(buf + (size_t)(rows + 1) * co, 0, co * sizeof(float));
                dst = buf + co;
            }
            for (int i = 0; i < np; i++, ip++) {
                const int *q = pas + 8 * ip;
                pass(h, c, q[6], q[1], q[2], q[0], Ws[ip], bs[ip], q[3], q[7], slopes[ip], dst + q[5], q[4]);
            }
            size_t sz = (size_t)rows * co;
            if (masks && masks[l]) {
                const float *m = masks[l] + (size_t)s * sz;
                for (size_t k = 0; k < sz; k++)
                    if (!(m[k] > 0.f)) dst[k] = 0.f;
            }
            if (saves && saves[l]) memcpy(saves[l] + (size_t)s * sz, dst, sz * sizeof(float));
            if (l == keep && l != nl - 1) memcpy(out_keep + (size_t)s * keep_sz, dst, keep_sz * sizeof(float));
            h = dst;
            c = co;
        }
    }
}

/* One stack run over a batch, for ganad_run. */
typedef struct {
    const float *x;
    int in_rows, in_c, nl;
    const int *lay, *pas;
    const float *slopes;
    const float *const *Ws, *const *bs;
    float *out;
    int keep;
    float *out_keep;
    long half;
    const float *const *masks;
    float *const *saves;
} ganad_step;

/* 1 where this library was compiled with OpenMP (ganad_run then uses the process's OpenMP threads:
   PyTorch's own, when its libgomp is the one loaded) */
int ganad_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Run the steps over samples [0, n) in `pieces` pieces: each thread takes the next piece and runs
   every step on it in order (a step may read what an earlier one wrote for the same samples). */
int ganad_run(const ganad_step *steps, int nsteps, long n, int pieces)
{
    long maxhalf = 0;
    for (int i = 0; i < nsteps; i++)
        if (steps[i].half > maxhalf) maxhalf = steps[i].half;
    long step = (n + pieces - 1) / pieces;
    int failed = 0;
#ifdef _OPENMP
    /* no more threads than pieces: a one-piece call wakes no idle thread (on a busy machine a
       woken thread may wait for a core, and the call for it) */
    int team = omp_get_max_threads() < pieces ? omp_get_max_threads() : pieces;
#endif
#pragma omp parallel num_threads(team)
    {
        float *scratch = malloc((size_t)3 * maxhalf * sizeof(float));
        if (!scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < pieces; k++) {
            long s0 = (long)k * step, s1 = s0 + step < n ? s0 + step : n;
            if (!scratch || s0 >= s1) continue;
            for (int i = 0; i < nsteps; i++) {
                const ganad_step *st = steps + i;
                ganad_stack(st->x, s0, s1, st->in_rows, st->in_c, st->nl, st->lay, st->pas, st->slopes, st->Ws,
                            st->bs, st->out, st->keep, st->out_keep, scratch, st->half, st->masks, st->saves);
            }
        }
        free(scratch);
    }
    return failed;
}

/* out (M x N, row-major) = x (M x K, row-major) @ W (K x N, row-major): the one-tap windowed pass,
   rows split into `pieces` over the OpenMP threads. For the narrow products of training (K and N
   of 4-64 channels, M = batch x steps), where MKL runs far below the memory rate. */
void ganad_gemm(const float *x, long M, int K, const float *W, int N, float *out, int pieces)
{
    /* pieces of whole blocks of 24 rows (a multiple of every kernel's J): each row goes through the
       same blocked or tail code whatever the number of pieces, so the result does not depend on it */
    long step = ((M + pieces - 1) / pieces + 23) / 24 * 24;
#ifdef _OPENMP
    int team = omp_get_max_threads() < pieces ? omp_get_max_threads() : pieces;
#endif
#pragma omp parallel for schedule(static, 1) num_threads(team)
    for (int k = 0; k < pieces; k++) {
        long s0 = (long)k * step, s1 = s0 + step < M ? s0 + step : M;
        if (s0 < s1)
            pass(x + (size_t)s0 * K, K, (int)(s1 - s0), 1, 0, 1, W, 0, N, 0, 0.f, out + (size_t)s0 * N, N);
    }
}

/* out[k0 + j][n0 .. n0 + VW) = sum over rows m in [m0, m1) of a[m][k0 + j] * b[m][n0 ..], j < kk <= 8 */
#define ATB(NAME, VT, VW)                                                                                \
    static inline __attribute__((always_inline)) void NAME(const float *a, int K, const float *b, int N, \
                                                           long m0, long m1, int k0, int kk, int n0,     \
                                                           float *out)                                   \
    {                                                                                                    \
        VT acc[8];                                                                                       \
        for (int j = 0; j < 8; j++)                                                                      \
            for (int l = 0; l < VW; l++) acc[j][l] = 0.f;                                                \
        for (long m = m0; m < m1; m++) {                                                                 \
            VT w;                                                                                        \
            memcpy(&w, b + (size_t)m * N + n0, sizeof(VT));                                              \
            const float *am = a + (size_t)m * K + k0;                                                    \
            for (int j = 0; j < 8; j++) {                                                                \
                if (j >= kk) break;                                                                      \
                acc[j] += am[j] * w;                                                                     \
            }                                                                                            \
        }                                                                                                \
        for (int j = 0; j < kk; j++) memcpy(out + (size_t)(k0 + j) * N + n0, &acc[j], sizeof(VT));       \
    }

ATB(atb4, v4, 4)
ATB(atb8, v8, 8)
#ifdef __AVX512F__
ATB(atb16, v16, 16)
#endif

/* one chunk of rows: out (K x N) = a[m0:m1]' b[m0:m1] */
static void atb_chunk(const float *a, int K, const float *b, int N, long m0, long m1, float *out)
{
    for (int k0 = 0; k0 < K; k0 += 8) {
        int kk = K - k0 < 8 ? K - k0 : 8, n0 = 0;
#ifdef __AVX512F__
        for (; N - n0 >= 16; n0 += 16) {
            if (kk == 8) atb16(a, K, b, N, m0, m1, k0, 8, n0, out);
            else atb16(a, K, b, N, m0, m1, k0, kk, n0, out);
        }
#endif
        for (; N - n0 >= 8; n0 += 8) {
            if (kk == 8) atb8(a, K, b, N, m0, m1, k0, 8, n0, out);
            else atb8(a, K, b, N, m0, m1, k0, kk, n0, out);
        }
        for (; N - n0 >= 4; n0 += 4) {
            if (kk == 8) atb4(a, K, b, N, m0, m1, k0, 8, n0, out);
            else atb4(a, K, b, N, m0, m1, k0, kk, n0, out);
        }
        for (; n0 < N; n0++)
            for (int j = 0; j < kk; j++) {
                float s = 0.f;
                for (long m = m0; m < m1; m++) s += a[(size_t)m * K + k0 + j] * b[(size_t)m * N + n0];
                out[(size_t)(k0 + j) * N + n0] = s;
            }
    }
}

/* out (K x N) = a (M x K)' b (M x N), both row-major: the weight gradients of training's narrow
   products. Chunks of `chunk` rows, each summed into its own part of `partial` (nchunks x K x N) on
   at most `threads` OpenMP threads (torch's count: a thread's own OpenMP setting may be another, e.g.
   OMP_NUM_THREADS in a thread that has not run a PyTorch operation yet), then the parts added in chunk
   order: the result does not depend on the threads. */
void ganad_gemm_tn(const float *a, const float *b, long M, int K, int N, long chunk, float *partial, float *out,
                   int threads)
{
    long nch = (M + chunk - 1) / chunk;
    size_t kn = (size_t)K * N;
#ifdef _OPENMP
    int team = threads < nch ? threads : (int)nch;
#endif
#pragma omp parallel for schedule(static, 1) num_threads(team)
    for (long c = 0; c < nch; c++) {
        long m0 = c * chunk, m1 = m0 + chunk < M ? m0 + chunk : M;
        atb_chunk(a, K, b, N, m0, m1, partial + (size_t)c * kn);
    }
    memcpy(out, partial, kn * sizeof(float));
    for (long c = 1; c < nch; c++)
        for (size_t i = 0; i < kn; i++) out[i] += partial[(size_t)c * kn + i];
}
