#include "net/data/ucx_data_plane.h"

#include <ucp/api/ucp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/log.h"
#include "net/data/refusal_log.h"
#include "net/data/ucx_wire.h"

namespace runahead::net {
namespace {

using Clock = std::chrono::steady_clock;

using ucx_wire::kKvBlockAmId;
using WireHeader = ucx_wire::BlockHeader;

constexpr auto kTimeoutScanPeriod = std::chrono::milliseconds(50);
constexpr auto kShutdownGrace = std::chrono::milliseconds(1000);

// ucs_status_t has many more values than matter here; if-chain rather than switch-enum.
ErrorCode error_code_of(ucs_status_t status) {
  if (status == UCS_ERR_REJECTED) return ErrorCode::kProtocol;
  if (status == UCS_ERR_TIMED_OUT || status == UCS_ERR_ENDPOINT_TIMEOUT) return ErrorCode::kTimeout;
  if (status == UCS_ERR_CANCELED) return ErrorCode::kCancelled;
  if (status == UCS_ERR_NO_MEMORY || status == UCS_ERR_NO_RESOURCE ||
      status == UCS_ERR_EXCEEDS_LIMIT) {
    return ErrorCode::kResourceExhausted;
  }
  return ErrorCode::kUnavailable;
}

// Whether a UCX_TLS list names only shared-memory transports, which in UCX 1.13 cannot detect
// a dead peer. An empty list, "all" or any network transport: false.
bool only_shared_memory(const std::string& transports) {
  static const std::set<std::string> kSharedMemory = {"posix", "sysv", "self", "shm",  "sm",
                                                      "mm",    "cma",  "knem", "xpmem"};
  std::string list = transports;
  if (!list.empty() && list[0] == '^') return false;  // an exclusion list keeps tcp
  bool any = false;
  size_t begin = 0;
  while (begin <= list.size()) {
    size_t end = list.find(',', begin);
    if (end == std::string::npos) end = list.size();
    std::string name = list.substr(begin, end - begin);
    if (const size_t colon = name.find(':'); colon != std::string::npos) name.resize(colon);
    if (!name.empty()) {
      if (!kSharedMemory.contains(name)) return false;
      any = true;
    }
    begin = end + 1;
  }
  return any;
}

}  // namespace

struct UcxDataPlane::Impl {
  struct Peer {
    PeerId id = 0;
    std::string name;
    ucp_ep_h ep = nullptr;
    std::optional<Status> failure;  // set once; later sends fail with it
    Impl* owner = nullptr;
    std::string label() const { return fmt::format("peer {} ({})", id, name); }
  };

  struct SendRecord {
    SendHandle handle = 0;
    PeerId peer = 0;
    std::string target;  // the peer's label when posted
    WireHeader wire{};   // UCX reads the AM header until the send completes
    void* request = nullptr;
    SendState state = SendState::kInFlight;
    ucs_status_t ucs_status = UCS_OK;
    bool released = false;
    Clock::time_point posted;
    Impl* owner = nullptr;
  };

  struct ReceiveRecord {
    KvBlockHeader header;
    std::string from;
    void* request = nullptr;
    Impl* owner = nullptr;
  };

  UcxDataPlaneOptions options;
  std::shared_ptr<spdlog::logger> log = logger("data_plane");
  uint64_t instance = 0;
  ucp_context_h context = nullptr;
  ucp_worker_h worker = nullptr;
  int efd = -1;
  std::vector<uint8_t> address;

  std::unordered_map<PeerId, std::unique_ptr<Peer>> peers;
  // Peers no longer reachable by id whose endpoint UCX may still mention in a callback.
  std::vector<std::unique_ptr<Peer>> retired_peers;
  std::vector<Peer*> peers_to_close;  // failed, endpoint not closed yet
  std::vector<void*> closing;         // ucp_ep_close_nbx requests in flight

  std::unordered_map<SendHandle, std::unique_ptr<SendRecord>> sends;
  SendHandle next_handle = 1;
  std::unordered_map<ReceiveRecord*, std::unique_ptr<ReceiveRecord>> receives;
  std::vector<std::pair<KvBlockHeader, Status>> completions;  // run at the end of progress()
  Clock::time_point next_timeout_scan;

  Resolver resolve;
  Completion complete;
  BlockLimits limits;
  std::unique_ptr<RefusalLog> refusals;  // created with the plane's name
  // Whether endpoints go without peer error handling: every transport allowed is one without
  // peer failure detection (UCX would refuse the endpoint, after logging an error).
  bool without_error_handling = false;

  ~Impl() { shut_down(); }

  std::string self_label() const { return fmt::format("ucx {}", options.name); }

  Status start() {
    ucp_config_t* config = nullptr;
    ucs_status_t status = ucp_config_read(nullptr, nullptr, &config);
    if (status != UCS_OK) {
      return make_error(
          ErrorCode::kUnavailable,
          fmt::format("{}: ucp_config_read failed: {}", self_label(), ucs_status_string(status)));
    }
    if (!options.transports.empty()) {
      status = ucp_config_modify(config, "TLS", options.transports.c_str());
      if (status != UCS_OK) {
        ucp_config_release(config);
        return make_error(ErrorCode::kInvalidArgument,
                          fmt::format("{}: UCX refused transports '{}': {}", self_label(),
                                      options.transports, ucs_status_string(status)));
      }
    }
    if (options.keepalive_interval.count() > 0) {
      const std::string interval = fmt::format("{}ms", options.keepalive_interval.count());
      status = ucp_config_modify(config, "KEEPALIVE_INTERVAL", interval.c_str());
      if (status != UCS_OK) {
        ucp_config_release(config);
        return make_error(ErrorCode::kInvalidArgument,
                          fmt::format("{}: UCX refused keepalive interval {}: {}", self_label(),
                                      interval, ucs_status_string(status)));
      }
    }
    without_error_handling = only_shared_memory(
        !options.transports.empty() ? options.transports
                                    : (std::getenv("UCX_TLS") ? std::getenv("UCX_TLS") : ""));
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
    status = ucp_init(&params, config, &context);
    ucp_config_release(config);
    if (status != UCS_OK) {
      context = nullptr;
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("{}: ucp_init failed (transports '{}'): {}", self_label(),
                                    options.transports, ucs_status_string(status)));
    }
    ucp_worker_params_t worker_params{};
    worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    worker_params.thread_mode = UCS_THREAD_MODE_SINGLE;
    status = ucp_worker_create(context, &worker_params, &worker);
    if (status != UCS_OK) {
      worker = nullptr;
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("{}: ucp_worker_create failed (transports '{}'): {}",
                                    self_label(), options.transports, ucs_status_string(status)));
    }
    status = ucp_worker_get_efd(worker, &efd);
    if (status != UCS_OK) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("{}: ucp_worker_get_efd failed: {}", self_label(),
                                    ucs_status_string(status)));
    }
    ucp_am_handler_param_t handler{};
    handler.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_FLAGS |
                         UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG;
    handler.id = kKvBlockAmId;
    handler.flags = UCP_AM_FLAG_WHOLE_MSG;
    handler.cb = &Impl::on_active_message;
    handler.arg = this;
    status = ucp_worker_set_am_recv_handler(worker, &handler);
    if (status != UCS_OK) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("{}: ucp_worker_set_am_recv_handler failed: {}", self_label(),
                                    ucs_status_string(status)));
    }
    ucp_address_t* worker_address = nullptr;
    size_t worker_address_bytes = 0;
    status = ucp_worker_get_address(worker, &worker_address, &worker_address_bytes);
    if (status != UCS_OK) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("{}: ucp_worker_get_address failed: {}", self_label(),
                                    ucs_status_string(status)));
    }
    std::random_device entropy;
    instance = (uint64_t{entropy()} << 32) ^ entropy();
    const auto* raw = reinterpret_cast<const uint8_t*>(worker_address);
    address = ucx_wire::encode_address(
        {.instance = instance,
         .name = options.name,
         .worker_address = std::vector<uint8_t>(raw, raw + worker_address_bytes)});
    ucp_worker_release_address(worker, worker_address);
    next_timeout_scan = Clock::now();
    return Status::ok();
  }

  void shut_down() {
    if (worker != nullptr) {
      for (auto& [id, peer] : peers) close_endpoint(*peer, UCP_EP_CLOSE_FLAG_FORCE);
      std::vector<void*> pending;
      for (const auto& [record, owned] : receives) pending.push_back(record->request);
      for (void* request : pending) ucp_request_cancel(worker, request);
      const Clock::time_point give_up = Clock::now() + kShutdownGrace;
      while ((!closing.empty() || !receives.empty()) && Clock::now() < give_up) {
        ucp_worker_progress(worker);
        reap_closed_endpoints();
      }
      ucp_worker_destroy(worker);
      worker = nullptr;
    }
    if (context != nullptr) {
      ucp_cleanup(context);
      context = nullptr;
    }
  }

  // --- endpoints ---

  static void on_endpoint_error(void* arg, ucp_ep_h /*ep*/, ucs_status_t status) {
    auto* peer = static_cast<Peer*>(arg);
    peer->owner->fail_peer(
        *peer, make_error(error_code_of(status),
                          fmt::format("{} failed: {}", peer->label(), ucs_status_string(status))));
  }

  // Records why the peer is gone; its endpoint is closed from progress(), not from a callback.
  void fail_peer(Peer& peer, Status reason) {
    if (peer.failure) return;
    log->warn("{}: {}", self_label(), reason.message());
    peer.failure = std::move(reason);
    peers_to_close.push_back(&peer);
  }

  void close_endpoint(Peer& peer, uint32_t flags) {
    if (peer.ep == nullptr) return;
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    param.flags = flags;
    ucs_status_ptr_t request = ucp_ep_close_nbx(peer.ep, &param);
    peer.ep = nullptr;
    if (UCS_PTR_IS_PTR(request)) closing.push_back(request);
  }

  void reap_closed_endpoints() {
    std::erase_if(closing, [](void* request) {
      if (ucp_request_check_status(request) == UCS_INPROGRESS) return false;
      ucp_request_free(request);
      return true;
    });
  }

  Status connect(PeerId id, const std::vector<uint8_t>& bytes) {
    RUNAHEAD_ASSIGN_OR_RETURN(
        ucx_wire::Address remote,
        ucx_wire::decode_address(bytes, fmt::format("peer {} (at {})", id, self_label())));
    if (peers.contains(id)) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{}: peer {} is already connected", self_label(), id));
    }
    auto peer = std::make_unique<Peer>();
    peer->id = id;
    peer->name = remote.name;
    peer->owner = this;
    ucp_ep_params_t params{};
    params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                        UCP_EP_PARAM_FIELD_ERR_HANDLER;
    params.address = reinterpret_cast<const ucp_address_t*>(remote.worker_address.data());
    params.err_mode =
        without_error_handling ? UCP_ERR_HANDLING_MODE_NONE : UCP_ERR_HANDLING_MODE_PEER;
    params.err_handler.cb = &Impl::on_endpoint_error;
    params.err_handler.arg = peer.get();
    ucs_status_t status = ucp_ep_create(worker, &params, &peer->ep);
    if (status == UCS_ERR_UNREACHABLE && params.err_mode == UCP_ERR_HANDLING_MODE_PEER) {
      // Shared-memory transports (posix, sysv) of UCX 1.13 cannot report a dead peer; without
      // peer error handling they still work, and the send timeout bounds sends to a dead peer.
      params.err_mode = UCP_ERR_HANDLING_MODE_NONE;
      status = ucp_ep_create(worker, &params, &peer->ep);
      if (status == UCS_OK) {
        log->warn(
            "{}: transports to {} cannot detect peer failure; the {} ms send timeout "
            "bounds sends to it",
            self_label(), peer->label(), options.send_timeout.count());
      }
    }
    if (status != UCS_OK) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("{}: cannot reach {}: ucp_ep_create failed: {}", self_label(),
                                    peer->label(), ucs_status_string(status)));
    }
    log->debug("{}: connected {}", self_label(), peer->label());
    peers[id] = std::move(peer);
    return Status::ok();
  }

  void disconnect(PeerId id) {
    const auto found = peers.find(id);
    if (found == peers.end()) return;
    // A flush close lets sends in flight finish; peer error handling bounds it if the peer died.
    close_endpoint(*found->second, 0);
    retired_peers.push_back(std::move(found->second));
    peers.erase(found);
  }

  // --- sends ---

  static void on_send_done(void* request, ucs_status_t status, void* user_data) {
    auto* record = static_cast<SendRecord*>(user_data);
    if (record->state == SendState::kInFlight) {  // not already abandoned with its peer
      record->state = status == UCS_OK ? SendState::kDone : SendState::kFailed;
      record->ucs_status = status;
    }
    record->request = nullptr;
    ucp_request_free(request);
    if (record->released) record->owner->sends.erase(record->handle);  // destroys `record`
  }

  Result<SendHandle> post_send(PeerId id, const KvBlockHeader& header, const void* payload) {
    const auto found = peers.find(id);
    if (found == peers.end()) {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("{}: send of {} to peer {}: not connected", self_label(),
                                    describe(header), id));
    }
    Peer& peer = *found->second;
    if (peer.failure) {
      return make_error(peer.failure->code(),
                        fmt::format("{}: send of {}: {}", self_label(), describe(header),
                                    peer.failure->message()));
    }
    RUNAHEAD_RETURN_IF_ERROR(validate_block_header(header, BlockLimits{}, header.payload_bytes));
    if (payload == nullptr) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{}: send of {} to {}: no payload", self_label(),
                                    describe(header), peer.label()));
    }
    auto record = std::make_unique<SendRecord>();
    record->handle = next_handle++;
    record->peer = id;
    record->target = peer.label();
    record->wire.sender = instance;
    std::memcpy(record->wire.sender_name, options.name.data(),
                std::min(options.name.size(), ucx_wire::kSenderNameBytes));
    record->wire.block = header;
    record->posted = Clock::now();
    record->owner = this;

    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    param.cb.send = &Impl::on_send_done;
    param.user_data = record.get();
    ucs_status_ptr_t request =
        ucp_am_send_nbx(peer.ep, kKvBlockAmId, &record->wire, sizeof(WireHeader), payload,
                        header.payload_bytes, &param);
    if (UCS_PTR_IS_ERR(request)) {
      const ucs_status_t status = UCS_PTR_STATUS(request);
      return make_error(error_code_of(status),
                        fmt::format("{}: send of {} to {} failed: {}", self_label(),
                                    describe(header), peer.label(), ucs_status_string(status)));
    }
    if (request == nullptr) {
      record->state = SendState::kDone;
    } else {
      record->request = request;
    }
    const SendHandle handle = record->handle;
    sends[handle] = std::move(record);
    return handle;
  }

  SendState check(SendHandle handle, Status* failure) {
    const auto found = sends.find(handle);
    if (found == sends.end() || found->second->released) {
      if (failure) {
        *failure = make_error(ErrorCode::kNotFound,
                              fmt::format("{}: unknown send handle {}", self_label(), handle));
      }
      return SendState::kFailed;
    }
    const SendRecord& record = *found->second;
    if (record.state == SendState::kFailed && failure) *failure = send_failure(record);
    return record.state;
  }

  Status send_failure(const SendRecord& record) const {
    // A failed peer explains every send it cancelled better than UCX's status does.
    const auto peer = peers.find(record.peer);
    if (peer != peers.end() && peer->second->failure) {
      return make_error(peer->second->failure->code(),
                        fmt::format("{}: send of {}: {}", self_label(), describe(record.wire.block),
                                    peer->second->failure->message()));
    }
    if (record.ucs_status == UCS_ERR_REJECTED) {
      return make_error(ErrorCode::kProtocol,
                        fmt::format("{}: send of {} to {}: refused by the receiver", self_label(),
                                    describe(record.wire.block), record.target));
    }
    return make_error(
        error_code_of(record.ucs_status),
        fmt::format("{}: send of {} to {} failed: {}", self_label(), describe(record.wire.block),
                    record.target, ucs_status_string(record.ucs_status)));
  }

  void release(SendHandle handle) {
    const auto found = sends.find(handle);
    if (found == sends.end()) return;
    if (found->second->request != nullptr) {
      found->second->released = true;  // UCX still holds it: erased by its completion callback
    } else {
      sends.erase(found);
    }
  }

  // A force close cancels the sends of a peer with error handling; without it (shared memory)
  // UCX keeps them pending forever, so they fail here.
  void abandon_sends_to(PeerId id) {
    for (auto& [handle, record] : sends) {
      if (record->peer == id && record->state == SendState::kInFlight) {
        record->state = SendState::kFailed;
        record->ucs_status = UCS_ERR_CANCELED;
      }
    }
  }

  void fail_overdue_sends() {
    const Clock::time_point now = Clock::now();
    if (now < next_timeout_scan) return;
    next_timeout_scan = now + kTimeoutScanPeriod;
    std::vector<std::pair<PeerId, SendRecord*>> overdue;
    for (const auto& [handle, record] : sends) {
      if (record->state == SendState::kInFlight && now - record->posted > options.send_timeout) {
        overdue.emplace_back(record->peer, record.get());
      }
    }
    for (const auto& [id, record] : overdue) {
      const auto peer = peers.find(id);
      if (peer == peers.end()) {
        // Disconnected, its flush close stuck on a peer that cannot be detected as dead.
        record->state = SendState::kFailed;
        record->ucs_status = UCS_ERR_TIMED_OUT;
        continue;
      }
      fail_peer(
          *peer->second,
          make_error(ErrorCode::kTimeout,
                     fmt::format("{}: send of {} not done after {} ms", peer->second->label(),
                                 describe(record->wire.block), options.send_timeout.count())));
    }
  }

  // --- receives ---

  static void on_receive_done(void* request, ucs_status_t status, size_t /*length*/,
                              void* user_data) {
    auto* record = static_cast<ReceiveRecord*>(user_data);
    Impl& self = *record->owner;
    if (status == UCS_OK) {
      self.completions.emplace_back(record->header, Status::ok());
    } else {
      const Status failure =
          make_error(error_code_of(status), fmt::format("{}: receiving {} from {} failed: {}",
                                                        self.self_label(), describe(record->header),
                                                        record->from, ucs_status_string(status)));
      self.log->warn("{}", failure.message());
      self.completions.emplace_back(record->header, failure);
    }
    ucp_request_free(request);
    self.receives.erase(record);  // destroys `record`
  }

  // Drops a block nobody will receive: logged (rate-limited); a rendezvous sender learns it
  // was refused.
  ucs_status_t refuse(bool rendezvous, std::span<const uint8_t> header_bytes, const Status& why) {
    if (!refusals) refusals = std::make_unique<RefusalLog>(self_label());
    refusals->refused(ucx_wire::describe_sender(header_bytes), why);
    return rendezvous ? UCS_ERR_REJECTED : UCS_OK;
  }

  static ucs_status_t on_active_message(void* arg, const void* header, size_t header_length,
                                        void* data, size_t length,
                                        const ucp_am_recv_param_t* param) {
    return static_cast<Impl*>(arg)->receive(header, header_length, data, length, *param);
  }

  ucs_status_t receive(const void* header, size_t header_length, void* data, size_t length,
                       const ucp_am_recv_param_t& param) {
    const bool rendezvous = (param.recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
    const std::span<const uint8_t> header_bytes(static_cast<const uint8_t*>(header), header_length);
    Result<WireHeader> wire = ucx_wire::decode_block_header(header_bytes, limits, length);
    if (!wire.is_ok()) return refuse(rendezvous, header_bytes, wire.status());
    const KvBlockHeader block = wire->block;
    if (!resolve) {
      return refuse(rendezvous, header_bytes,
                    make_error(ErrorCode::kUnavailable,
                               fmt::format("K/V block {}: no receiver set", describe(block))));
    }
    Result<void*> destination = resolve(block);
    if (!destination.is_ok()) return refuse(rendezvous, header_bytes, destination.status());
    if (*destination == nullptr) {
      return refuse(
          rendezvous, header_bytes,
          make_error(ErrorCode::kInternal,
                     fmt::format("K/V block {}: resolver gave no destination", describe(block))));
    }
    if (!rendezvous) {
      std::memcpy(*destination, data, length);
      completions.emplace_back(block, Status::ok());
      return UCS_OK;
    }
    const std::string from = ucx_wire::describe_sender(header_bytes);
    auto record = std::make_unique<ReceiveRecord>();
    record->header = block;
    record->from = from;
    record->owner = this;
    ucp_request_param_t receive_param{};
    receive_param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    receive_param.cb.recv_am = &Impl::on_receive_done;
    receive_param.user_data = record.get();
    ucs_status_ptr_t request =
        ucp_am_recv_data_nbx(worker, data, *destination, length, &receive_param);
    if (UCS_PTR_IS_ERR(request)) {
      const Status failure = make_error(
          error_code_of(UCS_PTR_STATUS(request)),
          fmt::format("{}: receiving {} from {} failed: {}", self_label(), describe(block), from,
                      ucs_status_string(UCS_PTR_STATUS(request))));
      log->warn("{}", failure.message());
      completions.emplace_back(block, failure);
    } else if (request == nullptr) {
      completions.emplace_back(block, Status::ok());
    } else {
      record->request = request;
      ReceiveRecord* key = record.get();
      receives[key] = std::move(record);
    }
    return UCS_OK;  // the receive was started (or failed) here: UCX owns the descriptor now
  }

  // --- progress ---

  void progress() {
    while (ucp_worker_progress(worker) != 0) {
    }
    fail_overdue_sends();
    std::vector<Peer*> to_close;
    to_close.swap(peers_to_close);
    for (Peer* peer : to_close) {
      close_endpoint(*peer, UCP_EP_CLOSE_FLAG_FORCE);
      abandon_sends_to(peer->id);
    }
    reap_closed_endpoints();
    std::vector<std::pair<KvBlockHeader, Status>> ready;
    ready.swap(completions);
    for (auto& [header, status] : ready) {
      if (complete) complete(header, std::move(status));
    }
  }

  bool arm() {
    if (!completions.empty() || !peers_to_close.empty()) return false;
    const ucs_status_t status = ucp_worker_arm(worker);
    if (status == UCS_OK) return true;
    if (status != UCS_ERR_BUSY) {
      log->warn("{}: ucp_worker_arm failed: {}", self_label(), ucs_status_string(status));
    }
    return false;
  }
};

Result<std::unique_ptr<UcxDataPlane>> UcxDataPlane::create(UcxDataPlaneOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  RUNAHEAD_RETURN_IF_ERROR(impl->start());
  return std::unique_ptr<UcxDataPlane>(new UcxDataPlane(std::move(impl)));
}

UcxDataPlane::UcxDataPlane(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UcxDataPlane::~UcxDataPlane() = default;

TransportCapabilities UcxDataPlane::capabilities() const {
  return TransportCapabilities{
      .transport = "ucx:" + (impl_->options.transports.empty() ? std::string("auto")
                                                               : impl_->options.transports),
      .device_memory = false,  // the Debian UCX build has no CUDA transports
      .zero_copy_receive = true};
}

std::vector<uint8_t> UcxDataPlane::local_address() const {
  return impl_->address;
}
Status UcxDataPlane::connect(PeerId peer, const std::vector<uint8_t>& address) {
  return impl_->connect(peer, address);
}
void UcxDataPlane::disconnect(PeerId peer) {
  impl_->disconnect(peer);
}
Result<SendHandle> UcxDataPlane::post_send(PeerId peer, const KvBlockHeader& header,
                                           const void* payload) {
  return impl_->post_send(peer, header, payload);
}
SendState UcxDataPlane::check(SendHandle handle, Status* failure) {
  return impl_->check(handle, failure);
}
void UcxDataPlane::release(SendHandle handle) {
  impl_->release(handle);
}
void UcxDataPlane::set_receiver(Resolver resolve, Completion complete) {
  impl_->resolve = std::move(resolve);
  impl_->complete = std::move(complete);
}
void UcxDataPlane::set_block_limits(const BlockLimits& limits) {
  impl_->limits = limits;
}
void UcxDataPlane::progress() {
  impl_->progress();
}
int UcxDataPlane::event_fd() const {
  return impl_->efd;
}
bool UcxDataPlane::arm() {
  return impl_->arm();
}

}  // namespace runahead::net
