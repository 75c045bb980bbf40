// The UCX data plane against a hostile peer that speaks raw UCP: malformed and lying block
// headers are refused without writing anything; plus UCX-specific behaviour (transport
// override, send timeout).
#include "net/data/ucx_data_plane.h"

#include <ucp/api/ucp.h>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "net/data/ucx_wire.h"
#include "tests/data_plane/test_planes.h"

namespace runahead::net {
namespace {

using testing::pattern;
using testing::pump_until;

// A UCP worker with one endpoint to a data plane; sends whatever AM it is told to.
class RawUcxPeer {
 public:
  explicit RawUcxPeer(const std::string& transports) : transports_(transports) {
    ucp_config_t* config = nullptr;
    EXPECT_EQ(ucp_config_read(nullptr, nullptr, &config), UCS_OK);
    EXPECT_EQ(ucp_config_modify(config, "TLS", transports.c_str()), UCS_OK);
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = UCP_FEATURE_AM;
    EXPECT_EQ(ucp_init(&params, config, &context_), UCS_OK);
    ucp_config_release(config);
    ucp_worker_params_t worker_params{};
    worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    worker_params.thread_mode = UCS_THREAD_MODE_SINGLE;
    EXPECT_EQ(ucp_worker_create(context_, &worker_params, &worker_), UCS_OK);
  }
  ~RawUcxPeer() {
    if (ep_ != nullptr) {
      ucp_request_param_t param{};
      param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
      param.flags = transports_ == "tcp" ? UCP_EP_CLOSE_FLAG_FORCE : 0;
      void* request = ucp_ep_close_nbx(ep_, &param);
      if (UCS_PTR_IS_PTR(request)) {
        while (ucp_request_check_status(request) == UCS_INPROGRESS) ucp_worker_progress(worker_);
        ucp_request_free(request);
      }
    }
    ucp_worker_destroy(worker_);
    ucp_cleanup(context_);
  }

  void connect(const std::vector<uint8_t>& plane_address) {
    Result<ucx_wire::Address> address = ucx_wire::decode_address(plane_address, "the plane");
    ASSERT_TRUE(address.is_ok()) << address.status().to_string();
    ucp_ep_params_t params{};
    params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
    params.address = reinterpret_cast<const ucp_address_t*>(address->worker_address.data());
    // Shared memory of UCX 1.13 has no peer failure detection.
    params.err_mode =
        transports_ == "tcp" ? UCP_ERR_HANDLING_MODE_PEER : UCP_ERR_HANDLING_MODE_NONE;
    ASSERT_EQ(ucp_ep_create(worker_, &params, &ep_), UCS_OK);
  }

  // Sends one active message and progresses it and the plane until it completes.
  ucs_status_t send(const void* header, size_t header_bytes, const void* payload,
                    size_t payload_bytes, Transport& plane, uint32_t flags = 0) {
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    param.flags = flags;
    void* request = ucp_am_send_nbx(ep_, ucx_wire::kKvBlockAmId, header, header_bytes, payload,
                                    payload_bytes, &param);
    if (UCS_PTR_IS_ERR(request)) return UCS_PTR_STATUS(request);
    ucs_status_t status = UCS_OK;
    if (request != nullptr) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while ((status = ucp_request_check_status(request)) == UCS_INPROGRESS &&
             std::chrono::steady_clock::now() < give_up) {
        ucp_worker_progress(worker_);
        plane.progress();
      }
      ucp_request_free(request);
    }
    // Let the plane handle whatever is still on its way.
    for (int i = 0; i < 200; ++i) {
      ucp_worker_progress(worker_);
      plane.progress();
    }
    return status;
  }

 private:
  std::string transports_;
  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  ucp_ep_h ep_ = nullptr;
};

class UcxHostilePeerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    UcxDataPlaneOptions options;
    options.name = "victim";
    options.transports = GetParam();
    Result<std::unique_ptr<UcxDataPlane>> plane = UcxDataPlane::create(options);
    ASSERT_TRUE(plane.is_ok()) << plane.status().to_string();
    plane_ = std::move(plane).value();
    plane_->set_block_limits(
        BlockLimits{.n_layers = 2, .bytes_per_token = kBpt, .max_block_bytes = cache_.size()});
    plane_->set_receiver(
        [this](const KvBlockHeader& h) -> Result<void*> {
          ++resolved_;
          if (h.request_id != 1 || h.token_end > kTokens) {
            return make_error(ErrorCode::kNotFound, "unknown block " + describe(h));
          }
          return static_cast<void*>(
              cache_.data() +
              (h.layer * static_cast<size_t>(kTokens) + static_cast<size_t>(h.token_begin)) * kBpt);
        },
        [this](const KvBlockHeader&, Status s) { landed_.push_back(std::move(s)); });
    peer_ = std::make_unique<RawUcxPeer>(GetParam());
    peer_->connect(plane_->local_address());
  }

  ucx_wire::BlockHeader wire(int64_t begin, int64_t end) const {
    ucx_wire::BlockHeader w;
    std::strncpy(w.sender_name, "raw-peer", sizeof(w.sender_name));
    w.block = KvBlockHeader{.request_id = 1,
                            .layer = 1,
                            .flags = 0,
                            .token_begin = begin,
                            .token_end = end,
                            .payload_bytes = static_cast<uint64_t>(end - begin) * kBpt};
    return w;
  }

  bool cache_untouched() const {
    for (uint8_t b : cache_) {
      if (b != 0xAB) return false;
    }
    return true;
  }

  static constexpr uint64_t kBpt = 1024;
  static constexpr int64_t kTokens = 4096;
  std::vector<uint8_t> cache_ = std::vector<uint8_t>(2 * static_cast<size_t>(kTokens) * kBpt, 0xAB);
  std::vector<uint8_t> payload_ = pattern(4 * 1024 * 1024, 9);
  std::unique_ptr<UcxDataPlane> plane_;
  std::unique_ptr<RawUcxPeer> peer_;
  std::vector<Status> landed_;
  int resolved_ = 0;
};

TEST_P(UcxHostilePeerTest, RefusesAShortHeader) {
  const uint64_t junk = 42;
  peer_->send(&junk, sizeof(junk), payload_.data(), 4096, *plane_);
  EXPECT_TRUE(landed_.empty());
  EXPECT_EQ(resolved_, 0);
  EXPECT_TRUE(cache_untouched());
}

TEST_P(UcxHostilePeerTest, RefusesABadMagic) {
  ucx_wire::BlockHeader w = wire(0, 4);
  w.magic = 0xdeadbeef;
  peer_->send(&w, sizeof(w), payload_.data(), w.block.payload_bytes, *plane_);
  EXPECT_TRUE(landed_.empty());
  EXPECT_EQ(resolved_, 0);
  EXPECT_TRUE(cache_untouched());
}

TEST_P(UcxHostilePeerTest, RefusesAnEagerPayloadShorterThanItsHeaderClaims) {
  const ucx_wire::BlockHeader w = wire(0, 8);  // claims 8 KiB
  peer_->send(&w, sizeof(w), payload_.data(), 4 * kBpt, *plane_, UCP_AM_SEND_FLAG_EAGER);
  EXPECT_TRUE(landed_.empty());
  EXPECT_EQ(resolved_, 0);
  EXPECT_TRUE(cache_untouched());
}

TEST_P(UcxHostilePeerTest, RefusesARendezvousPayloadLongerThanItsHeaderClaims) {
  const ucx_wire::BlockHeader w = wire(0, 1024);  // claims 1 MiB, sends 4 MiB
  const ucs_status_t status =
      peer_->send(&w, sizeof(w), payload_.data(), payload_.size(), *plane_, UCP_AM_SEND_FLAG_RNDV);
  EXPECT_EQ(status, UCS_ERR_REJECTED) << "the rendezvous sender learns of the refusal";
  EXPECT_TRUE(landed_.empty());
  EXPECT_EQ(resolved_, 0);
  EXPECT_TRUE(cache_untouched());
}

TEST_P(UcxHostilePeerTest, RefusesAHugeClaimWithoutAllocating) {
  ucx_wire::BlockHeader w = wire(0, 1);
  w.block.token_end = int64_t{1} << 40;
  w.block.payload_bytes = uint64_t{1} << 50;
  peer_->send(&w, sizeof(w), payload_.data(), 1024, *plane_);
  EXPECT_TRUE(landed_.empty());
  EXPECT_TRUE(cache_untouched());
}

TEST_P(UcxHostilePeerTest, StillReceivesValidBlocksAfterRefusals) {
  ucx_wire::BlockHeader bad = wire(0, 4);
  bad.block.layer = 7;
  peer_->send(&bad, sizeof(bad), payload_.data(), bad.block.payload_bytes, *plane_);
  const ucx_wire::BlockHeader good = wire(100, 2148);  // 2 MiB
  ASSERT_EQ(peer_->send(&good, sizeof(good), payload_.data(), good.block.payload_bytes, *plane_),
            UCS_OK);
  ASSERT_TRUE(pump_until({plane_.get()}, [&] { return !landed_.empty(); }));
  ASSERT_EQ(landed_.size(), 1u);
  EXPECT_TRUE(landed_[0].is_ok()) << landed_[0].to_string();
  const size_t offset = static_cast<size_t>(kTokens + 100) * kBpt;
  EXPECT_EQ(std::memcmp(cache_.data() + offset, payload_.data(), good.block.payload_bytes), 0);
  for (size_t i = 0; i < cache_.size(); ++i) {
    if (i >= offset && i < offset + good.block.payload_bytes) continue;
    ASSERT_EQ(cache_[i], 0xAB) << "byte " << i;
  }
}

std::string transport_name(const ::testing::TestParamInfo<std::string>& param) {
  return param.param == "tcp" ? "tcp" : "shm";
}

INSTANTIATE_TEST_SUITE_P(Transports, UcxHostilePeerTest,
                         ::testing::Values("tcp", "posix,sysv,self"), transport_name);

TEST(UcxDataPlaneTest, TransportCanBeChosen) {
  Result<std::unique_ptr<UcxDataPlane>> plane =
      UcxDataPlane::create(UcxDataPlaneOptions{.name = "p", .transports = "tcp"});
  ASSERT_TRUE(plane.is_ok()) << plane.status().to_string();
  EXPECT_EQ((*plane)->capabilities().transport, "ucx:tcp");
  EXPECT_TRUE((*plane)->capabilities().zero_copy_receive);
}

TEST(UcxDataPlaneTest, SendToAStalledPeerTimesOut) {
  UcxDataPlaneOptions options{.name = "impatient", .transports = "tcp"};
  options.send_timeout = std::chrono::milliseconds(300);
  Result<std::unique_ptr<UcxDataPlane>> sender = UcxDataPlane::create(options);
  Result<std::unique_ptr<UcxDataPlane>> stalled =
      UcxDataPlane::create(UcxDataPlaneOptions{.name = "stalled", .transports = "tcp"});
  ASSERT_TRUE(sender.is_ok() && stalled.is_ok());
  ASSERT_TRUE((*sender)->connect(8, (*stalled)->local_address()).is_ok());

  const std::vector<uint8_t> payload = pattern(4 << 20, 10);
  const KvBlockHeader header{.request_id = 1,
                             .layer = 0,
                             .flags = 0,
                             .token_begin = 0,
                             .token_end = 4096,
                             .payload_bytes = payload.size()};
  Result<SendHandle> handle = (*sender)->post_send(8, header, payload.data());
  ASSERT_TRUE(handle.is_ok());
  // The stalled plane is alive but never progresses.
  ASSERT_TRUE(pump_until(
      {sender->get()}, [&] { return (*sender)->check(*handle) != SendState::kInFlight; },
      std::chrono::seconds(3)));
  Status failure;
  ASSERT_EQ((*sender)->check(*handle, &failure), SendState::kFailed);
  EXPECT_EQ(failure.code(), ErrorCode::kTimeout) << failure.to_string();
  EXPECT_NE(failure.message().find("peer 8 (stalled)"), std::string::npos) << failure.message();
}

}  // namespace
}  // namespace runahead::net
