// Asynchronous copies between the CUDA backend and page-locked host memory, as K/V blocks are
// staged in chunks: strided sources and destinations, one completion per copy, ordering after
// the compute stream's work, calls from a thread where another GPU is current, and a D2H -> H2D
// pipeline driven by the completions.
//
// With more than one GPU the backend sits on the last one, so that a thread whose current device
// is GPU 0 (every new thread's) must still reach it.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/dtype.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/random_uniform.h"

namespace runahead {
namespace {

constexpr auto kWaitLimit = std::chrono::seconds(30);
constexpr uint8_t kHostPoison = 0xa5;
constexpr uint16_t kDevicePoison = 0xffff;  // a bf16 NaN

// Counts the completions of a batch of copies, one slot per copy. Shared with the callbacks, so
// that a late completion after a failed wait still lands in live memory.
class Completions {
 public:
  explicit Completions(size_t copies) : calls_(copies, 0), statuses_(copies) {}

  void record(size_t copy, Status status) {
    std::lock_guard lock(mutex_);
    if (++calls_[copy] == 1) statuses_[copy] = std::move(status);
    ++total_;
    changed_.notify_all();
  }

  // Waits until `count` completions arrived; false after kWaitLimit.
  bool wait_for(size_t count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kWaitLimit, [&] { return total_ >= count; });
  }

  // "" when every copy completed exactly once and ok, else what went wrong.
  std::string problems() {
    std::lock_guard lock(mutex_);
    std::string text;
    for (size_t i = 0; i < calls_.size(); ++i) {
      if (calls_[i] != 1) {
        text +=
            "copy " + std::to_string(i) + " completed " + std::to_string(calls_[i]) + " times; ";
      } else if (!statuses_[i].is_ok()) {
        text += "copy " + std::to_string(i) + ": " + statuses_[i].to_string() + "; ";
      }
    }
    return text;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<int> calls_;
  std::vector<Status> statuses_;
  size_t total_ = 0;
};

std::shared_ptr<Completions> make_completions(size_t copies) {
  return std::make_shared<Completions>(copies);
}

// The completion of copy `copy` of the batch.
Backend::CopyDone done(const std::shared_ptr<Completions>& completions, size_t copy) {
  return [completions, copy](Status status) { completions->record(copy, std::move(status)); };
}

// fill_uniform's value for element `index` of a bf16 view, as the host computes it.
uint16_t filled(uint64_t seed, int64_t index) {
  return f32_to_bf16(uniform_value(seed, static_cast<uint64_t>(index), 1.0f, 0.0f));
}

// A distinct, deterministic bf16 bit pattern per element that is never the device poison.
uint16_t pattern(uint64_t salt, int64_t index) {
  const uint16_t bits = static_cast<uint16_t>(splitmix64(salt + static_cast<uint64_t>(index)));
  return bits == kDevicePoison ? 0x3f80 : bits;
}

// The first element where two bf16 arrays differ, as text; "" when equal.
std::string first_mismatch(const uint16_t* got, const uint16_t* want, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (got[i] != want[i]) {
      char text[96];
      std::snprintf(text, sizeof text, "element %zu is 0x%04x, expected 0x%04x", i, got[i],
                    want[i]);
      return text;
    }
  }
  return "";
}

// [begin, end) row ranges of `rows` in pieces of `chunk` rows (the last may be shorter).
std::vector<std::pair<int64_t, int64_t>> chunks_of(int64_t rows, int64_t chunk) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (int64_t begin = 0; begin < rows; begin += chunk) {
    ranges.emplace_back(begin, std::min(rows, begin + chunk));
  }
  return ranges;
}

class AsyncCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int count = 0;
    const cudaError_t error = cudaGetDeviceCount(&count);
    if (error != cudaSuccess || count == 0) {
      GTEST_SKIP() << "no CUDA device: "
                   << (error != cudaSuccess ? cudaGetErrorString(error) : "none found");
    }
    auto gpu = CudaBackend::create(count - 1);
    if (!gpu && gpu.error().code == ErrorCode::kUnsupported) {
      GTEST_SKIP() << "no usable CUDA device: " << gpu.error().message;
    }
    ASSERT_TRUE(gpu.is_ok()) << gpu.error().to_string();
    gpu_ = std::move(gpu).value();
    device_count_ = count;
  }

  Buffer device(size_t bytes) {
    auto buffer = gpu_->allocate(bytes);
    EXPECT_TRUE(buffer.is_ok()) << buffer.error().to_string();
    return buffer.is_ok() ? std::move(buffer).value() : Buffer();
  }

  Buffer pinned(size_t bytes, uint8_t fill) {
    auto buffer = gpu_->allocate_host(bytes);
    EXPECT_TRUE(buffer.is_ok()) << buffer.error().to_string();
    if (!buffer.is_ok()) return Buffer();
    std::memset(buffer->data(), fill, bytes);
    return std::move(buffer).value();
  }

  // Sets every element of `t` (and nothing else) to the device poison, and waits until it is
  // there: from pageable memory copy_from_host returns before the data lands, and copies from
  // the host are not ordered after it.
  void poison_device(const Tensor& t) {
    std::vector<uint16_t> poison(static_cast<size_t>(t.elements()), kDevicePoison);
    Status status = gpu_->copy_from_host(poison.data(), t);
    if (status.is_ok()) status = gpu_->synchronize();
    ASSERT_TRUE(status.is_ok()) << status.to_string();
  }

  std::vector<uint16_t> read(const Tensor& t) {
    std::vector<uint16_t> values(static_cast<size_t>(t.elements()));
    const Status status = gpu_->copy_to_host(t, values.data());
    EXPECT_TRUE(status.is_ok()) << status.to_string();
    return values;
  }

  std::unique_ptr<CudaBackend> gpu_;
  int device_count_ = 0;
};

TEST_F(AsyncCopyTest, ChunkedCopyToHostOfStridedTensorEqualsSynchronousCopy) {
  // Columns [24, 88) of a 300 x 112 matrix: rows 224 bytes apart, 128 bytes of each copied;
  // 300 rows in chunks of 64 leave a short last chunk.
  const int64_t rows = 300;
  const int64_t wide = 112;
  Buffer buffer = device(static_cast<size_t>(rows * wide) * 2);
  ASSERT_FALSE(buffer.empty());
  const Tensor matrix = buffer.view(DType::kBF16, rows, wide);
  ASSERT_TRUE(gpu_->fill_uniform(matrix, 41, 1.0f, 0.0f).is_ok());
  const Tensor slice = matrix.cols_slice(24, 88);
  const std::vector<uint16_t> expected = read(slice);
  ASSERT_EQ(expected.size(), static_cast<size_t>(rows * 64));
  // The synchronous copy itself is right: element (r, c) of the slice is (r, c + 24) of the fill.
  for (int64_t r = 0; r < rows; r += 37) {
    ASSERT_EQ(expected[static_cast<size_t>(r * 64 + 5)], filled(41, r * wide + 24 + 5)) << r;
  }

  const size_t bytes = slice.bytes();
  const size_t guard = 4096;  // past the end: must stay poisoned
  Buffer host = pinned(bytes + guard, kHostPoison);
  ASSERT_FALSE(host.empty());
  auto* base = static_cast<uint8_t*>(host.data());
  const auto ranges = chunks_of(rows, 64);
  ASSERT_EQ(ranges.size(), 5u);
  auto completions = make_completions(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    const auto [begin, end] = ranges[i];
    const Status issued =
        gpu_->copy_to_host_async(slice.rows_slice(begin, end),
                                 base + static_cast<size_t>(begin * 64) * 2, done(completions, i));
    ASSERT_TRUE(issued.is_ok()) << "chunk " << i << ": " << issued.to_string();
  }
  ASSERT_TRUE(completions->wait_for(ranges.size())) << "completions did not arrive in time";
  EXPECT_EQ(
      first_mismatch(reinterpret_cast<const uint16_t*>(base), expected.data(), expected.size()),
      "");
  for (size_t i = 0; i < guard; ++i) {
    ASSERT_EQ(base[bytes + i], kHostPoison) << "byte " << i << " past the copied rows";
  }
  // A second completion of any copy would have arrived by now.
  ASSERT_TRUE(gpu_->synchronize().is_ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(completions->problems(), "");
}

TEST_F(AsyncCopyTest, CopyToHostWaitsForWorkEnqueuedBeforeIt) {
  // Long fills ahead of the copied one: a copy that did not wait would read the poison.
  auto busy = gpu_->allocate(size_t{1} << 30);
  ASSERT_TRUE(busy.is_ok()) << busy.error().to_string();
  const Tensor busy_view = busy->view(DType::kF32, 1 << 14, 1 << 14);
  const int64_t rows = 1024;
  const int64_t wide = 1536;
  Buffer buffer = device(static_cast<size_t>(rows * wide) * 2);
  ASSERT_FALSE(buffer.empty());
  const Tensor target = buffer.view(DType::kBF16, rows, wide).cols_slice(256, 1280);
  const size_t bytes = target.bytes();
  Buffer host = pinned(bytes, kHostPoison);
  ASSERT_FALSE(host.empty());
  auto* values = static_cast<uint16_t*>(host.data());

  for (uint64_t seed = 7; seed < 10; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ASSERT_NO_FATAL_FAILURE(poison_device(target));
    std::memset(host.data(), kHostPoison, bytes);
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(gpu_->fill_uniform(busy_view, 3, 1.0f, 0.0f).is_ok());
    ASSERT_TRUE(gpu_->fill_uniform(target, seed, 1.0f, 0.0f).is_ok());
    // No synchronize: the copy alone must order itself after the fills.
    auto completions = make_completions(2);
    const auto halves = chunks_of(rows, rows / 2);
    for (size_t i = 0; i < halves.size(); ++i) {
      const auto [begin, end] = halves[i];
      const Status issued = gpu_->copy_to_host_async(
          target.rows_slice(begin, end), values + begin * target.cols, done(completions, i));
      ASSERT_TRUE(issued.is_ok()) << issued.to_string();
    }
    ASSERT_TRUE(completions->wait_for(2)) << "completions did not arrive in time";
    EXPECT_EQ(completions->problems(), "");
    std::vector<uint16_t> expected(static_cast<size_t>(target.elements()));
    for (int64_t i = 0; i < target.elements(); ++i) {
      expected[static_cast<size_t>(i)] = filled(seed, i);
    }
    EXPECT_EQ(first_mismatch(values, expected.data(), expected.size()), "");
    const std::vector<uint16_t> later = read(target);
    EXPECT_EQ(first_mismatch(values, later.data(), later.size()), "");
  }
}

TEST_F(AsyncCopyTest, ChunkedCopyFromHostIntoStridedTensor) {
  // Columns [8, 72) of a 257 x 100 matrix, in chunks of 40 rows; the other columns keep the
  // poison.
  const int64_t rows = 257;
  const int64_t wide = 100;
  const int64_t first = 8;
  const int64_t last = 72;
  const int64_t cols = last - first;
  Buffer buffer = device(static_cast<size_t>(rows * wide) * 2);
  ASSERT_FALSE(buffer.empty());
  const Tensor matrix = buffer.view(DType::kBF16, rows, wide);
  ASSERT_NO_FATAL_FAILURE(poison_device(matrix));
  const Tensor slice = matrix.cols_slice(first, last);
  Buffer host = pinned(slice.bytes(), 0);
  ASSERT_FALSE(host.empty());
  auto* source = static_cast<uint16_t*>(host.data());
  for (int64_t i = 0; i < rows * cols; ++i) source[i] = pattern(5, i);

  const auto ranges = chunks_of(rows, 40);
  auto completions = make_completions(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    const auto [begin, end] = ranges[i];
    const Status issued = gpu_->copy_from_host_async(
        source + begin * cols, slice.rows_slice(begin, end), done(completions, i));
    ASSERT_TRUE(issued.is_ok()) << "chunk " << i << ": " << issued.to_string();
  }
  ASSERT_TRUE(completions->wait_for(ranges.size())) << "completions did not arrive in time";
  EXPECT_EQ(completions->problems(), "");

  const std::vector<uint16_t> back = read(matrix);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < wide; ++c) {
      const uint16_t got = back[static_cast<size_t>(r * wide + c)];
      const bool inside = c >= first && c < last;
      const uint16_t want = inside ? pattern(5, r * cols + c - first) : kDevicePoison;
      ASSERT_EQ(got, want) << "row " << r << " column " << c << (inside ? "" : " (outside)");
    }
  }
}

TEST_F(AsyncCopyTest, CallsFromAnotherThreadReachTheBackendsDevice) {
  const int64_t rows = 512;
  const int64_t cols = 768;
  Buffer filled_buffer = device(static_cast<size_t>(rows * cols) * 2);
  Buffer uploaded_buffer = device(static_cast<size_t>(rows * cols) * 2);
  ASSERT_FALSE(filled_buffer.empty() || uploaded_buffer.empty());
  const Tensor filled_tensor = filled_buffer.view(DType::kBF16, rows, cols);
  const Tensor uploaded = uploaded_buffer.view(DType::kBF16, rows, cols);
  ASSERT_NO_FATAL_FAILURE(poison_device(uploaded));
  Buffer down = pinned(filled_tensor.bytes(), kHostPoison);
  Buffer up = pinned(uploaded.bytes(), 0);
  ASSERT_FALSE(down.empty() || up.empty());
  auto* up_values = static_cast<uint16_t*>(up.data());
  for (int64_t i = 0; i < rows * cols; ++i) up_values[i] = pattern(9, i);
  // Enqueued here, copied from the other thread: the order holds across threads.
  ASSERT_TRUE(gpu_->fill_uniform(filled_tensor, 13, 1.0f, 0.0f).is_ok());

  const auto ranges = chunks_of(rows, 128);
  auto to_host = make_completions(ranges.size());
  auto from_host = make_completions(ranges.size());
  int thread_device = -1;
  std::string thread_errors;
  std::thread caller([&] {
    if (cudaGetDevice(&thread_device) != cudaSuccess) thread_device = -1;
    for (size_t i = 0; i < ranges.size(); ++i) {
      const auto [begin, end] = ranges[i];
      const Status a = gpu_->copy_to_host_async(filled_tensor.rows_slice(begin, end),
                                                static_cast<uint16_t*>(down.data()) + begin * cols,
                                                done(to_host, i));
      const Status b = gpu_->copy_from_host_async(
          up_values + begin * cols, uploaded.rows_slice(begin, end), done(from_host, i));
      if (!a.is_ok()) thread_errors += "to host " + std::to_string(i) + ": " + a.to_string() + "; ";
      if (!b.is_ok()) {
        thread_errors += "from host " + std::to_string(i) + ": " + b.to_string() + "; ";
      }
    }
  });
  caller.join();
  std::printf("[ info     ] backend on %s of %d GPU(s); the calling thread's current device: %d\n",
              gpu_->name().c_str(), device_count_, thread_device);
  ASSERT_EQ(thread_errors, "");
  ASSERT_TRUE(to_host->wait_for(ranges.size())) << "copies to the host did not complete in time";
  ASSERT_TRUE(from_host->wait_for(ranges.size()))
      << "copies from the host did not complete in time";
  EXPECT_EQ(to_host->problems(), "");
  EXPECT_EQ(from_host->problems(), "");

  std::vector<uint16_t> expected(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows * cols; ++i) expected[static_cast<size_t>(i)] = filled(13, i);
  EXPECT_EQ(
      first_mismatch(static_cast<const uint16_t*>(down.data()), expected.data(), expected.size()),
      "");
  const std::vector<uint16_t> back = read(uploaded);
  EXPECT_EQ(first_mismatch(back.data(), up_values, back.size()), "");
  // The backend still works from this thread afterwards.
  EXPECT_TRUE(gpu_->synchronize().is_ok());
}

// Chunks whose copy to the host completed, for the thread that copies them back up: callbacks
// run on CUDA's thread and must not call into CUDA themselves.
class ChunkQueue {
 public:
  void push(size_t chunk, Status status) {
    std::lock_guard lock(mutex_);
    queue_.emplace_back(chunk, std::move(status));
    changed_.notify_one();
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    changed_.notify_all();
  }
  // The next chunk, or nothing once closed and drained (or after kWaitLimit idle).
  std::optional<std::pair<size_t, Status>> pop() {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, kWaitLimit, [&] { return closed_ || !queue_.empty(); })) {
      return std::nullopt;
    }
    if (queue_.empty()) return std::nullopt;
    auto next = std::move(queue_.front());
    queue_.pop_front();
    return next;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::pair<size_t, Status>> queue_;
  bool closed_ = false;
};

TEST_F(AsyncCopyTest, CompletedChunksCopiedBackUpFromAnIssuingThread) {
  // 2048 x 1024 bf16 (4 MiB) in 16 chunks: each chunk goes down, and as its copy completes the
  // issuing thread sends it up into a second tensor.
  const int64_t rows = 2048;
  const int64_t cols = 1024;
  const int64_t chunk = 128;
  Buffer a_buffer = device(static_cast<size_t>(rows * cols) * 2);
  Buffer b_buffer = device(static_cast<size_t>(rows * cols) * 2);
  ASSERT_FALSE(a_buffer.empty() || b_buffer.empty());
  const Tensor a = a_buffer.view(DType::kBF16, rows, cols);
  const Tensor b = b_buffer.view(DType::kBF16, rows, cols);
  ASSERT_NO_FATAL_FAILURE(poison_device(b));
  Buffer host = pinned(a.bytes(), kHostPoison);
  ASSERT_FALSE(host.empty());
  auto* staged = static_cast<uint16_t*>(host.data());
  ASSERT_TRUE(gpu_->fill_uniform(a, 21, 1.0f, 0.0f).is_ok());

  const auto ranges = chunks_of(rows, chunk);
  auto queue = std::make_shared<ChunkQueue>();
  auto uploads = make_completions(ranges.size());
  std::string issue_errors;
  std::thread issuer([&] {
    for (size_t handled = 0; handled < ranges.size(); ++handled) {
      auto next = queue->pop();
      if (!next) {
        issue_errors += "the issuing thread waited in vain for chunk " + std::to_string(handled);
        return;
      }
      const auto& [index, status] = *next;
      if (!status.is_ok()) {
        issue_errors += "chunk " + std::to_string(index) + " down: " + status.to_string() + "; ";
        continue;
      }
      const auto [begin, end] = ranges[index];
      const Status up = gpu_->copy_from_host_async(staged + begin * cols, b.rows_slice(begin, end),
                                                   done(uploads, index));
      if (!up.is_ok()) issue_errors += "chunk " + std::to_string(index) + " up: " + up.to_string();
    }
  });
  size_t issued = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const auto [begin, end] = ranges[i];
    const Status down =
        gpu_->copy_to_host_async(a.rows_slice(begin, end), staged + begin * cols,
                                 [queue, i](Status status) { queue->push(i, std::move(status)); });
    if (!down.is_ok()) {
      ADD_FAILURE() << "chunk " << i << " down: " << down.to_string();
      break;
    }
    ++issued;
  }
  if (issued < ranges.size()) queue->close();
  issuer.join();
  ASSERT_EQ(issued, ranges.size());
  ASSERT_EQ(issue_errors, "");
  ASSERT_TRUE(uploads->wait_for(ranges.size())) << "copies up did not complete in time";
  EXPECT_EQ(uploads->problems(), "");
  const std::vector<uint16_t> want = read(a);
  const std::vector<uint16_t> got = read(b);
  EXPECT_EQ(first_mismatch(got.data(), want.data(), want.size()), "");
  EXPECT_EQ(want[12345], filled(21, 12345));
}

}  // namespace
}  // namespace runahead
