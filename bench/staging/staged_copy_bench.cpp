// Staging a K/V block from one GPU to another through page-locked host memory, as a worker hands
// a layer's keys and values to the next one: how close copying in chunks, each chunk's copy up
// started as its copy down completes, comes to the slower of the two PCIe directions. The "link"
// between the two copies is the shared host buffer itself (zero-copy), so the network is not
// what limits it. See README.md.
#include <cuda_runtime_api.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/statistics.h"
#include "core/status.h"
#include "kernels/cuda/cuda_backend.h"

namespace runahead {
namespace {

using Clock = std::chrono::steady_clock;

// A pipelined transfer that has not finished in this long has hung (a 256 MiB block takes
// tens of milliseconds).
constexpr auto kTransferLimit = std::chrono::seconds(60);

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The bf16 bits the source block holds at element i (any bits will do for a copy; these differ
// from their neighbours so that a misplaced chunk shows).
uint16_t pattern(uint64_t i) {
  return static_cast<uint16_t>(((i * 0x9e3779b1u) >> 13) ^ i);
}

// One pipelined transfer's chunks still in flight and its first failure, shared with the
// completions.
class Transfer {
 public:
  explicit Transfer(size_t chunks) : remaining_(chunks) {}

  // `chunks` chunks are done (with `status`, their copy up's or the failure that stopped them).
  void finish(Status status, size_t chunks = 1) {
    std::lock_guard lock(mutex_);
    if (!status.is_ok() && first_error_.is_ok()) first_error_ = std::move(status);
    remaining_ -= std::min(chunks, remaining_);
    if (remaining_ == 0) finished_.notify_all();
  }

  // Waits for every chunk; its first failure, if any. A transfer that never finishes ends the
  // process: its completions would otherwise land in freed memory.
  Status wait() {
    std::unique_lock lock(mutex_);
    if (!finished_.wait_for(lock, kTransferLimit, [&] { return remaining_ == 0; })) {
      std::fprintf(stderr, "staged_copy_bench: %zu chunks still in flight after %lld s\n",
                   remaining_, static_cast<long long>(kTransferLimit.count()));
      std::_Exit(3);
    }
    return first_error_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable finished_;
  size_t remaining_;
  Status first_error_;
};

// A chunk that has reached the host and is to go up.
struct Upload {
  const void* src = nullptr;
  Tensor dst;
  Status down;  // the copy down's result
  std::shared_ptr<Transfer> transfer;
};

// Issues each chunk's copy up on its own thread, fed by the completions of the copies down:
// those run on CUDA's callback thread, which must not call into CUDA.
class UploadIssuer {
 public:
  explicit UploadIssuer(Backend& target) : target_(target), thread_([this] { run(); }) {}
  ~UploadIssuer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  UploadIssuer(const UploadIssuer&) = delete;
  UploadIssuer& operator=(const UploadIssuer&) = delete;

  void push(Upload upload) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(upload));
    }
    changed_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      Upload upload;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        upload = std::move(queue_.front());
        queue_.pop_front();
      }
      if (!upload.down.is_ok()) {
        upload.transfer->finish(std::move(upload.down));
        continue;
      }
      const std::shared_ptr<Transfer> transfer = upload.transfer;
      Status issued = target_.copy_from_host_async(
          upload.src, upload.dst,
          [transfer](Status status) { transfer->finish(std::move(status)); });
      if (!issued.is_ok()) transfer->finish(std::move(issued));
    }
  }

  Backend& target_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Upload> queue_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the members it uses exist
};

// One K/V block on the source GPU, its place on the target GPU and the page-locked host buffer
// between them.
class StagingRig {
 public:
  static Result<std::unique_ptr<StagingRig>> create(CudaBackend& source, CudaBackend& target,
                                                    int64_t rows, int64_t cols) {
    std::unique_ptr<StagingRig> rig(new StagingRig(source, target));
    const size_t bytes = static_cast<size_t>(rows * cols) * 2;
    RUNAHEAD_ASSIGN_OR_RETURN(rig->source_buffer_, source.allocate(bytes));
    RUNAHEAD_ASSIGN_OR_RETURN(rig->target_buffer_, target.allocate(bytes));
    // Page-locked for every GPU (the CUDA backend's host memory is portable).
    RUNAHEAD_ASSIGN_OR_RETURN(rig->host_, source.allocate_host(bytes));
    rig->src_ = rig->source_buffer_.view(DType::kBF16, rows, cols);
    rig->dst_ = rig->target_buffer_.view(DType::kBF16, rows, cols);
    auto* values = static_cast<uint16_t*>(rig->host_.data());
    for (size_t i = 0; i < bytes / 2; ++i) values[i] = pattern(i);
    RUNAHEAD_RETURN_IF_ERROR(source.copy_from_host(rig->host_.data(), rig->src_));
    return Result<std::unique_ptr<StagingRig>>(std::move(rig));
  }

  size_t bytes() const { return src_.bytes(); }

  // The whole block down, in one copy.
  Result<double> down() {
    const auto start = Clock::now();
    RUNAHEAD_RETURN_IF_ERROR(source_.copy_to_host(src_, host_.data()));
    return seconds_since(start);
  }

  // The whole block up, in one copy (from page-locked memory it returns once the copy is done).
  Result<double> up() {
    const auto start = Clock::now();
    RUNAHEAD_RETURN_IF_ERROR(target_.copy_from_host(host_.data(), dst_));
    return seconds_since(start);
  }

  // Down, then up: a stage that waits for the whole block.
  Result<double> unpipelined() {
    const auto start = Clock::now();
    RUNAHEAD_RETURN_IF_ERROR(source_.copy_to_host(src_, host_.data()));
    RUNAHEAD_RETURN_IF_ERROR(target_.copy_from_host(host_.data(), dst_));
    return seconds_since(start);
  }

  // Chunks of `chunk_rows` rows down, each sent up as soon as it is down; until the last chunk
  // is up on the target.
  Result<double> pipelined(int64_t chunk_rows) {
    const int64_t rows = src_.rows;
    const size_t chunks = static_cast<size_t>((rows + chunk_rows - 1) / chunk_rows);
    const size_t row_bytes = static_cast<size_t>(src_.cols) * 2;
    auto transfer = std::make_shared<Transfer>(chunks);
    UploadIssuer* issuer = &issuer_;
    const auto start = Clock::now();
    size_t issued = 0;
    for (int64_t begin = 0; begin < rows; begin += chunk_rows) {
      const int64_t end = std::min(rows, begin + chunk_rows);
      void* staged = static_cast<char*>(host_.data()) + static_cast<size_t>(begin) * row_bytes;
      const Tensor dst = dst_.rows_slice(begin, end);
      Status status = source_.copy_to_host_async(
          src_.rows_slice(begin, end), staged, [issuer, staged, dst, transfer](Status down) {
            issuer->push(Upload{staged, dst, std::move(down), transfer});
          });
      if (!status.is_ok()) {
        transfer->finish(std::move(status), chunks - issued);
        break;
      }
      ++issued;
    }
    RUNAHEAD_RETURN_IF_ERROR(transfer->wait());
    return seconds_since(start);
  }

  // One pipelined transfer into a poisoned target must reproduce the source exactly.
  Status check_pipelined(int64_t chunk_rows) {
    std::memset(host_.data(), 0xff, bytes());
    RUNAHEAD_RETURN_IF_ERROR(target_.copy_from_host(host_.data(), dst_));
    std::memset(host_.data(), 0, bytes());
    RUNAHEAD_RETURN_IF_ERROR(pipelined(chunk_rows).status());
    std::vector<uint16_t> got(bytes() / 2);
    RUNAHEAD_RETURN_IF_ERROR(target_.copy_to_host(dst_, got.data()));
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i] != pattern(i)) {
        char text[160];
        std::snprintf(text, sizeof text,
                      "%s: pipelined copy in chunks of %lld rows: element %zu (row %zu) is 0x%04x, "
                      "expected 0x%04x",
                      target_.name().c_str(), static_cast<long long>(chunk_rows), i,
                      i / static_cast<size_t>(dst_.cols), got[i], pattern(i));
        return make_error(ErrorCode::kCorruptData, text);
      }
    }
    return Status::ok();
  }

 private:
  StagingRig(CudaBackend& source, CudaBackend& target)
      : source_(source), target_(target), issuer_(target) {}

  CudaBackend& source_;
  CudaBackend& target_;
  Buffer source_buffer_;
  Buffer target_buffer_;
  Buffer host_;
  Tensor src_;
  Tensor dst_;
  UploadIssuer issuer_;  // last: its thread stops before the buffers go
};

// Median seconds of `repeats` runs of `run` after `warmup` untimed ones.
template <typename Run>
Result<double> median_seconds(int warmup, int repeats, Run&& run) {
  std::vector<double> times;
  for (int i = 0; i < warmup + repeats; ++i) {
    RUNAHEAD_ASSIGN_OR_RETURN(double seconds, run());
    if (i >= warmup) times.push_back(seconds);
  }
  return median(std::move(times));
}

struct Row {
  double size_mib = 0;
  double chunk_mib = 0;
  size_t chunks = 0;
  double down_gbps = 0;
  double up_gbps = 0;
  double unpipelined_gbps = 0;
  double pipelined_gbps = 0;
  double of_slower = 0;  // pipelined as a share of min(down, up)
};

struct Options {
  std::vector<double> sizes_mib{16, 64, 256};
  std::vector<double> chunks_mib{1, 4, 16};
  int repeats = 20;
  int warmup = 3;
  int source_gpu = 0;
  int target_gpu = -1;
  int64_t cols = 8192;
  std::string csv;
};

Status run(const Options& options) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess || count == 0) {
    return make_error(ErrorCode::kDevice,
                      std::string("no CUDA device: ") +
                          (error != cudaSuccess ? cudaGetErrorString(error) : "none found"));
  }
  const int target_gpu =
      options.target_gpu >= 0 ? options.target_gpu : (options.source_gpu + 1) % count;
  RUNAHEAD_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> source,
                            CudaBackend::create(options.source_gpu));
  // Two backends even on one GPU: a sender and a receiver, each with its own copy streams.
  RUNAHEAD_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> target, CudaBackend::create(target_gpu));
  const size_t row_bytes = static_cast<size_t>(options.cols) * 2;
  std::printf("staged K/V copy: %s (%s) -> page-locked host -> %s (%s), %d GPU(s) present\n",
              source->name().c_str(), source->properties().name, target->name().c_str(),
              target->properties().name, count);
  std::printf(
      "rows of %lld bf16 (%zu bytes); median of %d after %d warm-up runs; GB/s = 1e9 "
      "bytes/s\n\n",
      static_cast<long long>(options.cols), row_bytes, options.repeats, options.warmup);
  std::printf("%9s %9s %6s %9s %9s %12s %10s %12s\n", "size MiB", "chunk MiB", "chunks", "D2H GB/s",
              "H2D GB/s", "unpipelined", "pipelined", "% of slower");

  std::vector<Row> rows;
  for (double size_mib : options.sizes_mib) {
    const auto block_rows = std::max<int64_t>(
        1, static_cast<int64_t>(size_mib * 1048576.0 / static_cast<double>(row_bytes)));
    RUNAHEAD_ASSIGN_OR_RETURN(std::unique_ptr<StagingRig> rig,
                              StagingRig::create(*source, *target, block_rows, options.cols));
    const double gigabytes = static_cast<double>(rig->bytes()) / 1e9;
    RUNAHEAD_ASSIGN_OR_RETURN(
        double down, median_seconds(options.warmup, options.repeats, [&] { return rig->down(); }));
    RUNAHEAD_ASSIGN_OR_RETURN(
        double up, median_seconds(options.warmup, options.repeats, [&] { return rig->up(); }));
    RUNAHEAD_ASSIGN_OR_RETURN(
        double unpipelined,
        median_seconds(options.warmup, options.repeats, [&] { return rig->unpipelined(); }));
    for (double chunk_mib : options.chunks_mib) {
      const int64_t chunk_rows = std::clamp<int64_t>(
          static_cast<int64_t>(chunk_mib * 1048576.0 / static_cast<double>(row_bytes)), 1,
          block_rows);
      RUNAHEAD_RETURN_IF_ERROR(rig->check_pipelined(chunk_rows));
      RUNAHEAD_ASSIGN_OR_RETURN(double pipelined,
                                median_seconds(options.warmup, options.repeats,
                                               [&] { return rig->pipelined(chunk_rows); }));
      Row row;
      row.size_mib = static_cast<double>(rig->bytes()) / 1048576.0;
      row.chunk_mib = static_cast<double>(static_cast<size_t>(chunk_rows) * row_bytes) / 1048576.0;
      row.chunks = static_cast<size_t>((block_rows + chunk_rows - 1) / chunk_rows);
      row.down_gbps = gigabytes / down;
      row.up_gbps = gigabytes / up;
      row.unpipelined_gbps = gigabytes / unpipelined;
      row.pipelined_gbps = gigabytes / pipelined;
      row.of_slower = 100.0 * row.pipelined_gbps / std::min(row.down_gbps, row.up_gbps);
      std::printf("%9.2f %9.3f %6zu %9.2f %9.2f %12.2f %10.2f %11.1f%%\n", row.size_mib,
                  row.chunk_mib, row.chunks, row.down_gbps, row.up_gbps, row.unpipelined_gbps,
                  row.pipelined_gbps, row.of_slower);
      std::fflush(stdout);
      rows.push_back(row);
    }
  }
  std::printf(
      "\nunpipelined: whole block down, then up; pipelined: chunk by chunk, each chunk's "
      "copy up issued when its copy down completed (every pipelined result checked "
      "against the source).\n");

  if (!options.csv.empty()) {
    std::ofstream csv(options.csv);
    if (!csv) return make_error(ErrorCode::kInvalidArgument, options.csv + ": cannot write");
    csv << "source,target,size_mib,chunk_mib,chunks,d2h_gbps,h2d_gbps,unpipelined_gbps,"
           "pipelined_gbps,pipelined_pct_of_min\n";
    for (const Row& row : rows) {
      csv << source->name() << ',' << target->name() << ',' << row.size_mib << ',' << row.chunk_mib
          << ',' << row.chunks << ',' << row.down_gbps << ',' << row.up_gbps << ','
          << row.unpipelined_gbps << ',' << row.pipelined_gbps << ',' << row.of_slower << '\n';
    }
    if (!csv) return make_error(ErrorCode::kInvalidArgument, options.csv + ": write failed");
    std::printf("rows written to %s\n", options.csv.c_str());
  }
  return Status::ok();
}

}  // namespace
}  // namespace runahead

int main(int argc, char** argv) {
  runahead::Options options;
  CLI::App app{
      "Staging a K/V block from one GPU to another through page-locked host memory, whole or "
      "in chunks whose copies down (D2H) and up (H2D) overlap. Per block size: D2H and H2D "
      "bandwidth of one copy each, the unpipelined stage (whole D2H, then whole H2D), and per "
      "chunk size the pipelined stage, also as a share of the slower direction, its ceiling."};
  app.add_option("--sizes-mib", options.sizes_mib, "K/V block sizes in MiB")
      ->delimiter(',')
      ->check(CLI::Range(1.0 / 1024, 65536.0))
      ->capture_default_str();
  app.add_option("--chunks-mib", options.chunks_mib,
                 "chunk sizes in MiB (rounded down to whole rows; at most the block)")
      ->delimiter(',')
      ->check(CLI::Range(1.0 / 1024, 65536.0))
      ->capture_default_str();
  app.add_option("--repeats", options.repeats, "timed runs per measurement (the median is shown)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", options.warmup, "untimed runs before each measurement")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--source-gpu", options.source_gpu, "GPU the block is copied from")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--target-gpu", options.target_gpu,
                 "GPU the block is copied to (default: the next GPU after the source, the source "
                 "itself on a one-GPU machine)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--cols", options.cols,
                 "bf16 elements per row (8192: the keys and values of one Llama-2-7B layer for "
                 "one token); chunks are whole rows")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--csv", options.csv, "also write the results as CSV to this file");
  CLI11_PARSE(app, argc, argv);

  const runahead::Status status = runahead::run(options);
  if (!status.is_ok()) {
    std::fprintf(stderr, "staged_copy_bench: %s\n", status.to_string().c_str());
    return 1;
  }
  return 0;
}
