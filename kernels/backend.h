// The compute backend: memory and the operations the transformer is made of.
//
// The model code (model/transformer.cpp) calls these operations in order; a backend either runs
// them at once (CPU) or enqueues them in order on its compute stream (CUDA). Operations do not
// return errors one by one: a backend records the first failure and reports it from
// synchronize() or the next copy to the host, so a failed request fails at its next check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/status.h"
#include "core/tensor.h"

namespace runahead {

enum class DeviceKind : uint8_t { kCpu, kCuda };

// How rotary embeddings pair the dimensions of a head.
enum class RopeStyle : uint8_t {
  kHalf,         // dimension i with i + rotary_dim/2 (Hugging Face Llama and Falcon, GPT-NeoX)
  kInterleaved,  // dimension 2i with 2i+1 (Meta's Llama checkpoints, GGUF)
};

// Causal attention of a slice of queries against a prefix of keys and values.
// Query row i sits at absolute position q_begin + i and sees key rows [0, q_begin + i].
// k and v hold at least q_begin + q.rows rows; heads are laid side by side in the columns.
struct AttentionArgs {
  Tensor q;    // [n_q, n_heads * head_dim]
  Tensor k;    // [>= q_begin + n_q, n_kv_heads * head_dim]
  Tensor v;    // like k
  Tensor out;  // [n_q, n_heads * head_dim]
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int64_t q_begin = 0;
  float scale = 1.0f;
};

struct RopeArgs {
  Tensor x;  // [n, n_heads * head_dim], rotated in place
  int n_heads = 0;
  int head_dim = 0;
  int rotary_dim = 0;          // leading dimensions of each head that rotate (<= head_dim)
  int64_t first_position = 0;  // absolute position of row 0
  Tensor inv_freq;             // [1, rotary_dim / 2] f32, from RopeConfig
  RopeStyle style = RopeStyle::kHalf;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string name() const = 0;  // "cpu", "cuda:0"
  virtual DeviceKind device_kind() const = 0;
  // The GPU's ordinal for a device backend; -1 for the CPU.
  virtual int device_index() const { return -1; }
  // The type activations, caches and (after upload) weights are held in.
  virtual DType compute_dtype() const = 0;
  virtual size_t free_memory_bytes() const = 0;
  // Whether attention() takes `n_heads` query heads of `head_dim` over `n_kv_heads` K/V heads;
  // an error names the dimension and the values that are supported. Models are checked with it
  // when their weights are loaded, so a shape no kernel computes is refused before any request.
  [[nodiscard]] virtual Status check_attention_shape(int n_heads, int n_kv_heads,
                                                     int head_dim) const;

  // --- memory ---
  [[nodiscard]] virtual Result<Buffer> allocate(size_t bytes) = 0;
  // Host memory for transfers to and from this backend (page-locked where that is faster).
  [[nodiscard]] virtual Result<Buffer> allocate_host(size_t bytes);
  // Copies host rows (contiguous, in dst.dtype) into dst, which may be strided; `src` (pageable
  // or from allocate_host) may be reused as soon as this returns.
  [[nodiscard]] virtual Status copy_from_host(const void* src, Tensor dst) = 0;
  // Copies src (may be strided) into contiguous host rows; waits for pending work first.
  [[nodiscard]] virtual Status copy_to_host(Tensor src, void* dst) = 0;
  // Waits for all enqueued work; reports the first failure since the last check.
  [[nodiscard]] virtual Status synchronize() = 0;

  // --- asynchronous copies (K/V staged through host memory, in chunks) ---
  // Runs once per copy that was issued, when it finished (ok) or failed: on a thread of the
  // backend's choosing (the caller's, for backends that copy at once). It must not call into
  // the backend.
  using CopyDone = std::function<void(Status)>;
  // Copies src (may be strided) into contiguous host rows at dst once the work enqueued so far
  // has finished, without waiting for it and without holding up work enqueued later. src and
  // dst must stay valid and unchanged until `done` ran. An error here means nothing was issued
  // and `done` will not run. Callable from any thread.
  [[nodiscard]] virtual Status copy_to_host_async(Tensor src, void* dst, CopyDone done);
  // Copies contiguous host rows into dst, not ordered with the enqueued work: dst must not be in
  // use by it, and work that reads dst may be enqueued once `done` ran. Otherwise as above.
  [[nodiscard]] virtual Status copy_from_host_async(const void* src, Tensor dst, CopyDone done);
  // The index of the largest value of a one-row tensor, the first on ties (as argmax() of
  // model/transformer.h on the row copied to the host); only the index leaves the backend.
  // Waits for pending work and reports failures as copy_to_host() does.
  [[nodiscard]] virtual Result<int32_t> argmax(Tensor row) = 0;
  // Fills dst (compute type or f32) in place with uniform_value(seed, i, scale, offset) of
  // kernels/random_uniform.h for element i in row-major order, so large random models need no
  // host generation or upload. Backends whose memory the host writes directly need no such
  // fill and answer kUnsupported (the default).
  [[nodiscard]] virtual Status fill_uniform(Tensor /*dst*/, uint64_t /*seed*/, float /*scale*/,
                                            float /*offset*/) {
    return make_error(ErrorCode::kUnsupported, name() + ": no in-place random fill");
  }

  // --- operations; shapes are checked by the caller (the model) ---
  // out[i] = table[tokens[i]]; `tokens` is host memory of out.rows ids already range-checked.
  virtual void embed(Tensor table, const int32_t* tokens, Tensor out) = 0;
  virtual void rms_norm(Tensor x, Tensor weight, float eps, Tensor out) = 0;
  virtual void layer_norm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) = 0;
  // residual += delta, then out = rms_norm(residual) in one pass over the rows; the norm reads
  // the sum as stored (in the compute type), so the result equals add() then rms_norm().
  virtual void add_rms_norm(Tensor residual, Tensor delta, Tensor weight, float eps,
                            Tensor out) = 0;
  // residual += delta, then out = layer_norm(residual) (`bias` may be empty), likewise.
  virtual void add_layer_norm(Tensor residual, Tensor delta, Tensor weight, Tensor bias, float eps,
                              Tensor out) = 0;
  // out = x @ w^T (+ bias when bias is not empty). x [n, k], w [m, k], out [n, m].
  virtual void matmul(Tensor x, Tensor w, Tensor bias, Tensor out) = 0;
  virtual void rope(const RopeArgs& args) = 0;
  // Rotary embedding of a decoding batch: row r of args.x at positions[r] (host memory, one per
  // row; args.first_position is ignored). The default calls rope() once per row.
  virtual void rope_rows(const RopeArgs& args, std::span<const int64_t> positions);
  virtual void attention(const AttentionArgs& args) = 0;
  // Attention of a decoding batch: one query row per request, each over its own cache (each
  // entry as attention() takes it, with q of one row). Each row's result equals attention() on
  // it alone. The default calls attention() once per row.
  virtual void decode_attention(std::span<const AttentionArgs> rows);
  // out = silu(gate) * up, where gate_up = [gate | up] along the columns.
  virtual void swiglu(Tensor gate_up, Tensor out) = 0;
  // out = gelu(x), the exact (erf) form.
  virtual void gelu(Tensor x, Tensor out) = 0;
  // out = a + b; out may alias a or b.
  virtual void add(Tensor a, Tensor b, Tensor out) = 0;
  // dst = src, both in this backend's memory, possibly strided.
  virtual void copy(Tensor src, Tensor dst) = 0;
};

// The fp32 reference backend (OpenBLAS, all cores).
std::unique_ptr<Backend> make_cpu_backend();
// Threads the CPU backend uses in this process (OpenMP and OpenBLAS); 0 keeps the default of
// one per core. Several workers on one machine each take their share.
void set_cpu_threads(int threads);

}  // namespace runahead
