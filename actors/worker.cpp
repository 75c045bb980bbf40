#include "actors/worker.h"

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>

#include "actors/compute_queue.h"
#include "actors/coordinator_link.h"
#include "actors/worker_actor.h"
#include "core/log.h"
#include "kernels/backend_factory.h"
#include "kernels/fault_injecting_backend.h"
#include "model/model_hash.h"
#include "model/random_model.h"
#include "net/control/control_client.h"
#include "net/data/direct_write_data_plane.h"
#include "net/data/peer_memory_access.h"
#include "net/data/shaped_link_data_plane.h"
#include "net/data/ucx_data_plane.h"
#include "planner/cost_probe.h"

namespace runahead {

class Worker::Impl {
 public:
  // The UCX plane, with direct writes into the caches of workers on GPUs of this host.
  Result<std::unique_ptr<net::Transport>> with_peer_copies(std::unique_ptr<net::Transport> ucx) {
    RUNAHEAD_ASSIGN_OR_RETURN(auto memory,
                              net::make_cuda_ipc_peer_memory_access(backend->device_index()));
    net::DirectWriteOptions direct;
    direct.name = options.name;
    direct.enabled = options.gpu_peer_copy;
    return net::make_direct_write_data_plane(std::move(ucx), std::move(memory), direct);
  }

  // The backend of options.device, wrapped when a fault is to be injected.
  Result<std::unique_ptr<Backend>> make_device() {
    RUNAHEAD_ASSIGN_OR_RETURN(std::unique_ptr<Backend> device, make_backend(options.device));
    if (options.inject_device_fault_after_matmuls <= 0) return device;
    auto faulty =
        FaultInjectingBackend::wrap(std::move(device), options.inject_device_fault_after_matmuls);
    fault_injection = faulty.get();
    return std::unique_ptr<Backend>(std::move(faulty));
  }

  explicit Impl(WorkerOptions worker_options) : options(std::move(worker_options)) {}
  ~Impl() { shutdown(); }

  Status start() {
    auto log = logger("worker");
    // The key first: a bad key file fails before minutes of model loading.
    if (!options.cluster_key_file.empty()) {
      auto key = net::ControlKey::load(options.cluster_key_file);
      if (!key) return make_error(key.error().code, options.name + ": " + key.error().message);
      cluster_key = std::move(key).value();
    }
    set_cpu_threads(options.cpu_threads);
    if (is_random_model_path(options.model)) {
      // Generated on the device where the backend can (no host copy of a 7B model).
      RUNAHEAD_ASSIGN_OR_RETURN(backend, make_device());
      RUNAHEAD_ASSIGN_OR_RETURN(RandomWeights random, load_random_weights(options.model, *backend));
      weights = std::make_unique<ModelWeights>(std::move(random.weights));
      hash = std::move(random.hash);
    } else {
      // Every byte of the checkpoint's files is hashed beside the loading (which reads the same
      // pages), on all cores, or taken from the files' digest records.
      const auto hash_started = std::chrono::steady_clock::now();
      auto hashing =
          std::async(std::launch::async, [path = options.model] { return model_path_hash(path); });
      RUNAHEAD_ASSIGN_OR_RETURN(HostModel host, load_model(options.model));
      RUNAHEAD_ASSIGN_OR_RETURN(backend, make_device());
      RUNAHEAD_ASSIGN_OR_RETURN(ModelWeights uploaded, upload_weights(host, *backend));
      weights = std::make_unique<ModelWeights>(std::move(uploaded));
      RUNAHEAD_ASSIGN_OR_RETURN(hash, hashing.get());
      log->info(
          "{}: model {} hashed in {:.2f} s (with loading)", options.name, options.model,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - hash_started).count());
    }  // the backend holds the weights now; the host copy is released
    transformer = std::make_unique<Transformer>(*weights, *backend);
    const int64_t probe_tokens = options.probe_tokens >= 0
                                     ? options.probe_tokens
                                     : (backend->device_kind() == DeviceKind::kCpu ? 32 : 2048);
    if (probe_tokens > 0) {
      RUNAHEAD_ASSIGN_OR_RETURN(cost, measure_slice_cost(*transformer, probe_tokens));
    }
    if (fault_injection != nullptr) {
      fault_injection->start_counting();  // nothing computes again before the first request
      log->warn("{}: the device will fail after {} matrix products (injected fault)", options.name,
                options.inject_device_fault_after_matmuls);
    }
    log->info("{}: model {} (hash {}) on {}; cost per token {:.3g} s, per key {:.3g} s",
              options.name, options.model, hash, backend->name(), cost.per_token, cost.per_key);

    net::UcxDataPlaneOptions plane_options;
    plane_options.name = options.name;
    plane_options.transports = options.transports;
    RUNAHEAD_ASSIGN_OR_RETURN(auto plane, net::UcxDataPlane::create(plane_options));
    data_plane = std::move(plane);
    if (backend->device_kind() == DeviceKind::kCuda) {
      RUNAHEAD_ASSIGN_OR_RETURN(data_plane, with_peer_copies(std::move(data_plane)));
    }
    const net::LinkShape shape{.bytes_per_second = options.link_gbytes_per_second * 1e9,
                               .max_jitter = options.link_jitter,
                               .seed = std::hash<std::string>{}(options.name)};
    if (shape.active()) {
      RUNAHEAD_ASSIGN_OR_RETURN(data_plane,
                                net::make_shaped_link_data_plane(std::move(data_plane), shape));
    }
    compute = std::make_unique<ComputeQueue>(options.name);

    WorkerContext context;
    context.options = options;
    context.transformer = transformer.get();
    context.data_plane = data_plane.get();
    context.compute = compute.get();
    context.send_to_coordinator = [this](const net::ToCoordinator& message) -> Status {
      return link->send(message);
    };
    // The actor let go of its requests after losing the coordinator: join again.
    context.on_coordinator_lost = [this](Status reason) { link->rejoin(reason); };
    context.drop_coordinator = [this](Status reason) { link->drop(std::move(reason)); };
    context.on_device_failure = [this](Status reason) { finish(std::move(reason)); };
    Backend* device = backend.get();
    host_staging = std::make_unique<BufferPool>(
        [device](size_t bytes) { return device->allocate_host(bytes); });
    // Caches reused keep the peer mappings of their predecessors valid; rounding to 64 MiB lets
    // requests of similar length share them.
    kv_caches = std::make_unique<BufferPool>(
        [device](size_t bytes) { return device->allocate(bytes); }, 2, size_t{64} << 20);
    // Host staging is allocated off the actor's thread (WorkerCompute), which answers heartbeats.
    context.buffers = SliceBuffers{.host_staging = host_staging.get(),
                                   .kv_caches = kv_caches.get(),
                                   .defer_host_staging = true};
    system.start();
    RUNAHEAD_ASSIGN_OR_RETURN(actor, system.spawn<WorkerActor>(options.name, std::move(context)));

    CoordinatorLinkOptions link_options;
    link_options.address = options.coordinator;
    link_options.name = options.name;
    link_options.connect_timeout = options.connect_timeout;
    link_options.backoff.initial = options.reconnect_initial_backoff;
    link_options.backoff.max = options.reconnect_max_backoff;
    link_options.give_up_after = options.reconnect_give_up;
    link_options.cluster_key = cluster_key;
    CoordinatorLinkCallbacks callbacks;
    callbacks.hello = [this] { return hello(); };
    callbacks.sink = net::deliver_to<net::ToWorker>(actor);
    callbacks.joined = [this](uint64_t worker_id, net::ConnectionId connection, bool rejoined) {
      id = worker_id;
      // Queued before any message the coordinator sends after its HelloAck.
      (void)actor.tell(Joined{worker_id, connection, rejoined});
    };
    callbacks.gave_up = [this](Status why) { finish(std::move(why)); };
    link = std::make_unique<CoordinatorLink>(system.io(), std::move(link_options),
                                             std::move(callbacks));
    return link->join();
  }

  // What this worker says of itself at each join.
  net::Hello hello() const {
    net::Hello hello;
    hello.role = net::PeerRole::kWorker;
    hello.name = options.name;
    hello.worker.data_plane_address = data_plane->local_address();
    hello.worker.backend = backend->name();
    hello.worker.free_memory_bytes = backend->free_memory_bytes();
    hello.worker.model_hash = hash;
    hello.worker.per_token_seconds = cost.per_token;
    hello.worker.per_key_seconds = cost.per_key;
    hello.worker.sliding_window = static_cast<uint32_t>(transformer->config().sliding_window);
    hello.worker.max_positions = static_cast<uint32_t>(transformer->config().max_positions);
    hello.worker.vocab_size = static_cast<uint32_t>(transformer->config().vocab_size);
    return hello;
  }

  void finish(Status reason) {
    std::lock_guard lock(mutex);
    if (!stopped) stopped = std::move(reason);
    stopped_changed.notify_all();
  }

  Status wait() {
    std::unique_lock lock(mutex);
    stopped_changed.wait(lock, [&] { return stopped.has_value(); });
    return *stopped;
  }

  // Idempotent and safe from several threads at once (a signal thread and the main thread both
  // stop a worker process): a second caller waits until the first has finished.
  void shutdown() {
    std::call_once(shut_down, [this] { shut_down_once(); });
  }

  void shut_down_once() {
    finish(make_error(ErrorCode::kCancelled, options.name + " stopped"));
    // No rejoining from here on; the connection closes after what is queued.
    if (link) link->stop();
    // The actor's on_stop cancels the slice runs, so that the compute thread can be joined.
    system.stop(runtime::StopMode::kDrop);
    if (compute) compute->stop();
  }

  WorkerOptions options;
  std::optional<net::ControlKey> cluster_key;
  std::unique_ptr<Backend> backend;
  // The backend, when it injects a fault.
  FaultInjectingBackend* fault_injection = nullptr;
  std::unique_ptr<BufferPool> host_staging;  // after the backend: destroyed before it
  std::unique_ptr<BufferPool> kv_caches;
  std::unique_ptr<ModelWeights> weights;
  std::unique_ptr<Transformer> transformer;
  std::string hash;
  SliceCost cost;
  std::unique_ptr<net::Transport> data_plane;
  std::unique_ptr<ComputeQueue> compute;
  runtime::ActorSystem system{runtime::ActorSystemOptions{.threads = 1}};
  runtime::ActorRef<WorkerMessage> actor;
  std::atomic<uint64_t> id{0};
  std::unique_ptr<CoordinatorLink> link;  // after the system: stopped and destroyed before it
  std::once_flag shut_down;

  std::mutex mutex;
  std::condition_variable stopped_changed;
  std::optional<Status> stopped;
};

Result<std::unique_ptr<Worker>> Worker::start(const WorkerOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  RUNAHEAD_RETURN_IF_ERROR(impl->start());
  return std::unique_ptr<Worker>(new Worker(std::move(impl)));
}

Worker::Worker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Worker::~Worker() {
  stop();
}
uint64_t Worker::id() const {
  return impl_->id;
}
Status Worker::wait() {
  return impl_->wait();
}
void Worker::stop() {
  if (impl_) impl_->shutdown();
}

}  // namespace runahead
