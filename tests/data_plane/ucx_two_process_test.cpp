// The UCX data plane between two real processes (this test and data_plane_test_peer), addresses
// exchanged through pipes: blocks arrive intact; a peer killed mid-send fails the send in
// bounded time.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <climits>
#include <filesystem>
#include <string>
#include <vector>

#include "net/data/ucx_data_plane.h"
#include "tests/data_plane/test_planes.h"

namespace runahead::net {
namespace {

using testing::pattern;
using testing::pump_until;

constexpr uint64_t kBytesPerToken = 1024;

uint64_t fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (uint8_t b : bytes) hash = (hash ^ b) * 0x100000001b3ull;
  return hash;
}

std::string peer_binary() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "data_plane_test_peer")
      .string();
}

// The peer process and the pipes to it.
class PeerProcess {
 public:
  bool start(const std::vector<std::string>& args) {
    int to_child[2];
    int from_child[2];
    if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) return false;
    std::vector<std::string> argv = {peer_binary(), args[0], std::to_string(to_child[0]),
                                     std::to_string(from_child[1])};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(to_child[1]);
      ::close(from_child[0]);
      std::vector<char*> raw;
      for (std::string& a : argv) raw.push_back(a.data());
      raw.push_back(nullptr);
      ::execv(raw[0], raw.data());
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    to_ = to_child[1];
    from_ = from_child[0];
    return pid_ > 0;
  }
  ~PeerProcess() {
    if (to_ >= 0) ::close(to_);
    if (from_ >= 0) ::close(from_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // Reads the peer's address, sends ours.
  bool exchange(const std::vector<uint8_t>& ours, std::vector<uint8_t>& theirs) {
    uint32_t bytes = 0;
    if (!read_all(&bytes, sizeof(bytes)) || bytes > (1u << 20)) return false;
    theirs.resize(bytes);
    if (!read_all(theirs.data(), bytes)) return false;
    const auto our_bytes = static_cast<uint32_t>(ours.size());
    return ::write(to_, &our_bytes, sizeof(our_bytes)) == sizeof(our_bytes) &&
           ::write(to_, ours.data(), ours.size()) == static_cast<ssize_t>(ours.size());
  }
  bool read_all(void* data, size_t bytes) {
    auto* p = static_cast<uint8_t*>(data);
    while (bytes > 0) {
      const ssize_t n = ::read(from_, p, bytes);
      if (n <= 0) return false;
      p += n;
      bytes -= static_cast<size_t>(n);
    }
    return true;
  }
  void close_input() {
    ::close(to_);
    to_ = -1;
  }
  void kill_now() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int wait_exit() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1;
  int from_ = -1;
};

class UcxTwoProcessTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(peer_binary())) {
      GTEST_SKIP() << "data_plane_test_peer is not next to the test binary";
    }
    UcxDataPlaneOptions options{.name = "parent", .transports = GetParam()};
    options.send_timeout = std::chrono::milliseconds(3000);
    Result<std::unique_ptr<UcxDataPlane>> plane = UcxDataPlane::create(options);
    ASSERT_TRUE(plane.is_ok()) << plane.status().to_string();
    plane_ = std::move(plane).value();
  }

  void connect_to(PeerProcess& peer) {
    std::vector<uint8_t> theirs;
    ASSERT_TRUE(peer.exchange(plane_->local_address(), theirs));
    ASSERT_TRUE(plane_->connect(kChild, theirs).is_ok());
  }

  static constexpr PeerId kChild = 1;
  std::unique_ptr<UcxDataPlane> plane_;
};

TEST_P(UcxTwoProcessTest, BlocksArriveIntactInAnotherProcess) {
  // Small eager blocks and 1.5 MiB rendezvous blocks, alternating.
  std::vector<int64_t> tokens;
  for (int i = 0; i < 12; ++i) tokens.push_back(i % 2 == 0 ? 4 : 1536);
  int64_t capacity = 0;
  for (int64_t t : tokens) capacity += t;
  const std::vector<uint8_t> source = pattern(static_cast<size_t>(capacity) * kBytesPerToken, 12);

  PeerProcess peer;
  ASSERT_TRUE(
      peer.start({GetParam(), "receive", std::to_string(capacity), std::to_string(tokens.size())}));
  connect_to(peer);
  std::vector<SendHandle> handles;
  int64_t begin = 0;
  for (int64_t t : tokens) {
    const KvBlockHeader header{.request_id = 1,
                               .layer = 0,
                               .flags = 0,
                               .token_begin = begin,
                               .token_end = begin + t,
                               .payload_bytes = static_cast<uint64_t>(t) * kBytesPerToken};
    Result<SendHandle> handle =
        plane_->post_send(kChild, header, source.data() + begin * kBytesPerToken);
    ASSERT_TRUE(handle.is_ok()) << handle.status().to_string();
    handles.push_back(*handle);
    begin += t;
  }
  ASSERT_TRUE(pump_until({plane_.get()}, [&] {
    for (SendHandle h : handles) {
      if (plane_->check(h) == SendState::kInFlight) return false;
    }
    return true;
  }));
  for (SendHandle h : handles) {
    Status failure;
    EXPECT_EQ(plane_->check(h, &failure), SendState::kDone) << failure.to_string();
  }
  uint64_t hash = 0;
  ASSERT_TRUE(peer.read_all(&hash, sizeof(hash))) << "the peer did not receive every block";
  EXPECT_EQ(hash, fnv1a(source));
  peer.close_input();
  EXPECT_EQ(peer.wait_exit(), 0);
}

TEST_P(UcxTwoProcessTest, KilledPeerFailsTheSendInBoundedTime) {
  PeerProcess peer;
  ASSERT_TRUE(peer.start({GetParam(), "stall"}));
  connect_to(peer);
  const std::vector<uint8_t> payload = pattern(8 << 20, 13);
  const KvBlockHeader header{.request_id = 1,
                             .layer = 0,
                             .flags = 0,
                             .token_begin = 0,
                             .token_end = 8192,
                             .payload_bytes = payload.size()};
  Result<SendHandle> handle = plane_->post_send(kChild, header, payload.data());
  ASSERT_TRUE(handle.is_ok()) << handle.status().to_string();
  for (int i = 0; i < 100; ++i) plane_->progress();
  ASSERT_EQ(plane_->check(*handle), SendState::kInFlight) << "a stalled peer cannot complete it";
  peer.kill_now();

  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(pump_until(
      {plane_.get()}, [&] { return plane_->check(*handle) != SendState::kInFlight; },
      std::chrono::seconds(6)))
      << "the send to a killed peer still hangs";
  Status failure;
  EXPECT_EQ(plane_->check(*handle, &failure), SendState::kFailed);
  EXPECT_NE(failure.message().find("peer 1 (child)"), std::string::npos) << failure.message();
  EXPECT_LT(std::chrono::steady_clock::now() - killed, std::chrono::seconds(6));
}

std::string transport_name(const ::testing::TestParamInfo<std::string>& param) {
  return param.param == "tcp" ? "tcp" : "shm";
}

INSTANTIATE_TEST_SUITE_P(Transports, UcxTwoProcessTest, ::testing::Values("tcp", "posix,sysv,self"),
                         transport_name);

}  // namespace
}  // namespace runahead::net
