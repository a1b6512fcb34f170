// The CUDA backend: implements every metanas::Backend kernel on one GPU by
// forwarding to the launchers of kernels/cuda/*.cu (forwarders generated from
// the op table, beside the CPU ones in kernels/cpu/cpu_backend.cpp), owns the stream, the
// cuBLAS/cuDNN handles and the caching allocator, and provides
// cuda_backend_create(), which the engine calls once on first use of
// Device::CUDA (returning nullptr and a reason when no driver or GPU is usable).
// Kernels run in order on the calling thread's current stream: the default
// non-blocking stream, or a stream of create_stream() with its own cuBLAS and
// cuDNN handles, cuBLAS workspace and allocator pool (per-task streams).
// Uploads go through a pinned staging ring (staging_ring.h) and return at
// once, so only copy_to_host, synchronize() and an upload that finds the ring
// busy (or is larger than it) wait for the device (only for the current
// stream); each such wait is counted (Backend::host_syncs). begin_capture /
// end_capture record the current stream's work as a CUDA graph (thread-local
// capture mode, temporaries from the graph's private allocator pool);
// replay() launches it. Compiled, not yet run on a GPU (docs/results.md).
#include <unistd.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/staging_ring.h"
#include "kernels/cuda/step_state.h"
#include "metanas/engine/backend.h"
#include "metanas/engine/error.h"

namespace metanas {

namespace kernels::cuda {
namespace {

__global__ void probe_kernel(int* p) { *p = 42; }

constexpr size_t kCublasWorkspace = size_t(32) << 20;  // fixed workspace: reproducible, capturable

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int dev) {
    try {
      init(dev);
    } catch (...) {
      release();
      throw;
    }
  }
  // The registry keeps the backend for the whole process and never deletes
  // it: at exit the CUDA runtime may already be torn down.
  ~CudaBackend() override { release(); }

  Context& context() { return cur(); }
  Device device() const override { return Device::CUDA; }

  // ---- memory ----
  void* allocate(size_t bytes) override { return alloc_.allocate(bytes); }
  void deallocate(void* p, size_t) override { alloc_.deallocate(p); }
  void copy_from_host(void* dst, const void* src, size_t bytes) override {
    if (!bytes) return;
    count_upload();
    no_capture("an upload (copy_from_host)");
    // The ring copies src before returning, so the caller may reuse it.
    if (staging_.upload(dst, src, bytes, cur().stream)) count_sync();
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    if (!bytes) return;
    no_capture("a readback (copy_to_host)");
    count_sync();
    MN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cur().stream));
    MN_CUDA_CHECK(cudaStreamSynchronize(cur().stream));
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (!bytes || dst == src) return;
    MN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cur().stream));
  }
  void memset_zero(void* p, size_t bytes) override {
    if (!bytes) return;
    MN_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cur().stream));
  }
  void synchronize() override {
    no_capture("synchronize()");
    count_sync();
    MN_CUDA_CHECK(cudaStreamSynchronize(cur().stream));
  }

  // ---- device-resident step state (backend.h; launchers in step_state.h) ----
  void adam_count(int32_t* step2, float beta1, float beta2, float* bias2) override {
    cuda::adam_count(cur(), step2, beta1, beta2, bias2);
  }
  void adam_step_biased(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                        float eps, float weight_decay, const float* bias2, const float* grad_scale) override {
    cuda::adam_step_biased(cur(), p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, bias2, grad_scale);
  }
  void drop_path_scales_at(const int32_t* key3, uint32_t step, uint32_t op, float p, float* scale,
                           int64_t n) override {
    cuda::drop_path_scales_at(cur(), key3, step, op, p, scale, n);
  }

  // ---- compute kernels: generated from the op table ----
#define MN_UNPAREN(...) __VA_ARGS__
#define MN_KERNEL(name, params, args) \
  void name params override { cuda::name(cur(), MN_UNPAREN args); }
#include "metanas/kernels/op_table.def"
#undef MN_UNPAREN

  // ---- graphs ----
  bool supports_graphs() const override { return true; }
  void begin_capture() override {
    const int sid = current_stream();
    MN_CHECK(!capturing_[sid], "CUDA backend: stream ", sid, " is already capturing a graph");
    auto g = std::make_unique<Graph>();
    g->stream_id = sid;
    MN_CUDA_CHECK(cudaStreamBeginCapture(cur().stream, cudaStreamCaptureModeThreadLocal));
    // The graph's pool key: its own object (never a stream's address).
    CachingAllocator::set_thread_pool(g.get());
    capturing_[sid] = std::move(g);
  }
  int end_capture() override {
    const int sid = current_stream();
    MN_CHECK(capturing_[sid], "CUDA backend: end_capture without begin_capture on stream ", sid);
    std::unique_ptr<Graph> g = std::move(capturing_[sid]);
    CachingAllocator::set_thread_pool(pool_of(sid));
    const cudaError_t e = cudaStreamEndCapture(cur().stream, &g->graph);
    if (e != cudaSuccess) {
      alloc_.retire_pool(g.get());
      throw_cuda(e, "cudaStreamEndCapture", __FILE__, __LINE__);
    }
    const cudaError_t ie = cudaGraphInstantiate(&g->exec, g->graph, 0);
    if (ie != cudaSuccess) {
      (void)cudaGraphDestroy(g->graph);
      alloc_.retire_pool(g.get());
      throw_cuda(ie, "cudaGraphInstantiate", __FILE__, __LINE__);
    }
    std::lock_guard<std::mutex> lock(graphs_mu_);
    const int id = next_graph_++;
    graphs_[id] = std::move(g);
    return id;
  }
  void abort_capture() override {
    const int sid = current_stream();
    if (!capturing_[sid]) return;
    std::unique_ptr<Graph> g = std::move(capturing_[sid]);
    CachingAllocator::set_thread_pool(pool_of(sid));
    cudaGraph_t partial = nullptr;
    (void)cudaStreamEndCapture(cur().stream, &partial);
    (void)cudaGetLastError();
    if (partial) (void)cudaGraphDestroy(partial);
    alloc_.retire_pool(g.get());  // nothing of it ran
  }
  void replay(int id) override {
    Graph* g = find_graph(id);
    MN_CHECK(g->stream_id == current_stream(), "CUDA backend: graph ", id, " was captured on stream ",
             g->stream_id, " and is replayed on stream ", current_stream(),
             " (its private pool is ordered by its stream)");
    MN_CUDA_CHECK(cudaGraphLaunch(g->exec, cur().stream));
  }
  void destroy_graph(int id) override {
    std::unique_ptr<Graph> g;
    {
      std::lock_guard<std::mutex> lock(graphs_mu_);
      auto it = graphs_.find(id);
      MN_CHECK(it != graphs_.end(), "CUDA backend: no graph ", id);
      g = std::move(it->second);
      graphs_.erase(it);
    }
    // Its replays must finish before its pool is shared (a destroyed stream
    // was synchronised when it went).
    if (Context* c = ctxs_[g->stream_id]) {
      count_sync();
      MN_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    }
    MN_CUDA_CHECK(cudaGraphExecDestroy(g->exec));
    MN_CUDA_CHECK(cudaGraphDestroy(g->graph));
    alloc_.retire_pool(g.get());
  }

 protected:
  // ---- streams: one Context (stream, handles, workspace) per id ----
  void on_stream_created(int id) override {
    auto s = std::make_unique<StreamCtx>();
    Context& c = s->ctx;
    c = ctx_;  // device, SM count, allocator, conv cache (shared, locked)
    c.stream = nullptr;
    c.cublas = nullptr;
    c.cudnn = nullptr;
    try {
      MN_CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
      MN_CUDA_CHECK(cudaEventCreateWithFlags(&s->event, cudaEventDisableTiming));
      MN_CUBLAS_CHECK(cublasCreate(&c.cublas));
      MN_CUBLAS_CHECK(cublasSetStream(c.cublas, c.stream));
      MN_CUBLAS_CHECK(cublasSetPointerMode(c.cublas, CUBLAS_POINTER_MODE_HOST));
      MN_CUBLAS_CHECK(cublasSetMathMode(c.cublas, CUBLAS_DEFAULT_MATH));
      s->cublas_ws = alloc_.allocate_in(kCublasWorkspace, nullptr);
      MN_CUBLAS_CHECK(cublasSetWorkspace(c.cublas, s->cublas_ws, kCublasWorkspace));
      MN_CUDNN_CHECK(cudnnCreate(&c.cudnn));
      MN_CUDNN_CHECK(cudnnSetStream(c.cudnn, c.stream));
    } catch (...) {
      destroy_ctx(*s);
      throw;
    }
    streams_[id] = std::move(s);
    ctxs_[id] = &streams_[id]->ctx;
  }
  void on_stream_destroyed(int id) override {
    std::unique_ptr<StreamCtx> s = std::move(streams_[id]);
    ctxs_[id] = nullptr;
    if (!s) return;
    count_sync();
    (void)cudaStreamSynchronize(s->ctx.stream);
    alloc_.retire_pool(s->ctx.stream);
    destroy_ctx(*s);
  }
  void on_stream_set(int id) override {
    if (!capturing_[id]) CachingAllocator::set_thread_pool(pool_of(id));
  }
  void on_stream_wait(int waiter, int producer) override {
    cudaEvent_t ev = producer == 0 ? default_event_ : streams_[producer]->event;
    MN_CUDA_CHECK(cudaEventRecord(ev, ctxs_[producer]->stream));
    MN_CUDA_CHECK(cudaStreamWaitEvent(ctxs_[waiter]->stream, ev, 0));
  }

 private:
  struct StreamCtx {
    Context ctx;
    cudaEvent_t event = nullptr;
    void* cublas_ws = nullptr;
  };
  struct Graph {
    int stream_id = 0;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
  };

  Context& cur() { return *ctxs_[current_stream()]; }
  // The default stream's pool is null (threads start there).
  const void* pool_of(int id) const { return id == 0 ? nullptr : static_cast<const void*>(ctxs_[id]->stream); }
  void no_capture(const char* what) {
    MN_CHECK(!capturing_[current_stream()], "CUDA backend: ", what,
             " inside a graph capture (a captured step must not synchronise or upload)");
  }
  Graph* find_graph(int id) {
    std::lock_guard<std::mutex> lock(graphs_mu_);
    auto it = graphs_.find(id);
    MN_CHECK(it != graphs_.end(), "CUDA backend: no graph ", id);
    return it->second.get();
  }
  void destroy_ctx(StreamCtx& s) {
    if (s.ctx.cudnn) cudnnDestroy(s.ctx.cudnn);
    if (s.ctx.cublas) cublasDestroy(s.ctx.cublas);
    if (s.cublas_ws) {
      try {
        alloc_.deallocate(s.cublas_ws);
      } catch (...) {
      }
    }
    if (s.event) cudaEventDestroy(s.event);
    if (s.ctx.stream) cudaStreamDestroy(s.ctx.stream);
    s = StreamCtx{};
  }

  void init(int dev) {
    ctx_.device = dev;
    MN_CUDA_CHECK(cudaSetDevice(dev));
    int major = 0, minor = 0;
    MN_CUDA_CHECK(cudaDeviceGetAttribute(&ctx_.sm_count, cudaDevAttrMultiProcessorCount, dev));
    MN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    MN_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    MN_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx_.stream, cudaStreamNonBlocking));
    MN_CUDA_CHECK(cudaEventCreateWithFlags(&default_event_, cudaEventDisableTiming));
    ctx_.alloc = &alloc_;
    ctxs_.fill(nullptr);
    ctxs_[0] = &ctx_;

    // A kernel of this build must run on this GPU (catches a missing sm_XX).
    int* probe = static_cast<int*>(alloc_.allocate(sizeof(int)));
    probe_kernel<<<1, 1, 0, ctx_.stream>>>(probe);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaStreamSynchronize(ctx_.stream);
    alloc_.deallocate(probe);
    if (e != cudaSuccess)
      MN_THROW("a test kernel does not run on GPU ", dev, " (compute capability ", major, ".", minor, "): ",
               cudaGetErrorString(e), "; rebuild with -DCMAKE_CUDA_ARCHITECTURES=", major, minor);

    MN_CUBLAS_CHECK(cublasCreate(&ctx_.cublas));
    MN_CUBLAS_CHECK(cublasSetStream(ctx_.cublas, ctx_.stream));
    MN_CUBLAS_CHECK(cublasSetPointerMode(ctx_.cublas, CUBLAS_POINTER_MODE_HOST));
    MN_CUBLAS_CHECK(cublasSetMathMode(ctx_.cublas, CUBLAS_DEFAULT_MATH));  // FP32, no TF32
    cublas_ws_ = alloc_.allocate(kCublasWorkspace);
    MN_CUBLAS_CHECK(cublasSetWorkspace(ctx_.cublas, cublas_ws_, kCublasWorkspace));

    MN_CUDNN_CHECK(cudnnCreate(&ctx_.cudnn));
    MN_CUDNN_CHECK(cudnnSetStream(ctx_.cudnn, ctx_.stream));
    ctx_.conv_cache = conv_cache_create();
    staging_.init(kUploadStagingBytes);
  }

  void release() {
    staging_.release();
    if (ctx_.conv_cache) conv_cache_destroy(ctx_.conv_cache);
    if (ctx_.cudnn) cudnnDestroy(ctx_.cudnn);
    if (ctx_.cublas) cublasDestroy(ctx_.cublas);
    if (cublas_ws_) {
      try {
        alloc_.deallocate(cublas_ws_);
      } catch (...) {
      }
    }
    if (default_event_) cudaEventDestroy(default_event_);
    default_event_ = nullptr;
    if (ctx_.stream) cudaStreamDestroy(ctx_.stream);
    ctx_ = Context{};
    cublas_ws_ = nullptr;
  }

  CachingAllocator alloc_;
  StagingRing staging_;
  Context ctx_;  // the default stream's
  void* cublas_ws_ = nullptr;
  cudaEvent_t default_event_ = nullptr;
  // Index = stream id; [0] = &ctx_. Written only while the base class holds
  // its stream lock, before the id becomes live.
  std::array<Context*, kMaxStreams> ctxs_{};
  std::array<std::unique_ptr<StreamCtx>, kMaxStreams> streams_;
  std::array<std::unique_ptr<Graph>, kMaxStreams> capturing_;  // per stream id
  std::mutex graphs_mu_;
  std::unordered_map<int, std::unique_ptr<Graph>> graphs_;
  int next_graph_ = 1;
};

}  // namespace

Context& backend_context() {
  auto* b = dynamic_cast<CudaBackend*>(&metanas::backend(Device::CUDA));
  MN_CHECK(b, "the registered CUDA backend is not metanas's own CudaBackend");
  return b->context();
}

}  // namespace kernels::cuda

// Called once by the backend registry (engine/src/backend.cpp).
Backend* cuda_backend_create(std::string* why, bool* gpu_visible) {
  std::string reason;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    if (e == cudaErrorInsufficientDriver)
      reason = "no CUDA driver (or one too old for this build's CUDA runtime)";
    else if (e == cudaErrorNoDevice)
      reason = "no GPU visible";
    else
      reason = str_cat("cudaGetDeviceCount failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
    // A driver that is too old or broken still leaves the GPU's device node:
    // that GPU is there and the backend failed on it (a harness must fail,
    // not skip).
    if (e != cudaErrorNoDevice && gpu_visible && access("/dev/nvidia0", F_OK) == 0) *gpu_visible = true;
  } else if (count <= 0) {
    reason = "no GPU visible";
  } else {
    if (gpu_visible) *gpu_visible = true;
    try {
      return new kernels::cuda::CudaBackend(0);
    } catch (const std::exception& ex) {
      reason = str_cat("CUDA backend initialisation failed: ", ex.what());
    }
  }
  if (why) *why = reason;
  return nullptr;
}

}  // namespace metanas
