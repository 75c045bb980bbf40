// Non-owning views of 2-D tensors in a backend's memory, and the owning buffer behind them.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>

#include "core/dtype.h"

namespace runahead {

// A row-major matrix view: `rows` x `cols` elements of `dtype`, rows `row_stride` elements apart.
// Activations are [tokens, features]; weight matrices are [out_features, in_features];
// vectors (norm weights, biases) are a single row.
struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;

  static Tensor matrix(void* data, DType dtype, int64_t rows, int64_t cols) {
    return Tensor{data, dtype, rows, cols, cols};
  }

  bool empty() const { return data == nullptr; }
  bool contiguous() const { return row_stride == cols; }
  int64_t elements() const { return rows * cols; }
  size_t bytes() const { return static_cast<size_t>(rows * cols) * dtype_size(dtype); }

  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
  template <typename T>
  T* row(int64_t r) const {
    return static_cast<T*>(data) + r * row_stride;
  }
  void* row_address(int64_t r) const {
    return static_cast<char*>(data) + static_cast<size_t>(r * row_stride) * dtype_size(dtype);
  }

  // Rows [begin, end) of this view.
  Tensor rows_slice(int64_t begin, int64_t end) const {
    assert(0 <= begin && begin <= end && end <= rows);
    return Tensor{row_address(begin), dtype, end - begin, cols, row_stride};
  }
  // Columns [begin, end) of this view (the rows keep their stride).
  Tensor cols_slice(int64_t begin, int64_t end) const {
    assert(0 <= begin && begin <= end && end <= cols);
    return Tensor{static_cast<char*>(data) + static_cast<size_t>(begin) * dtype_size(dtype), dtype,
                  rows, end - begin, row_stride};
  }
};

// Owns memory from a backend (host or device); releases it through the backend's deleter.
class Buffer {
 public:
  Buffer() = default;
  Buffer(void* data, size_t bytes, std::function<void(void*)> release)
      : data_(data), bytes_(bytes), release_(std::move(release)) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
      release_ = std::move(other.release_);
    }
    return *this;
  }
  ~Buffer() { reset(); }

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  bool empty() const { return data_ == nullptr; }

  // A matrix view over the start of this buffer.
  Tensor view(DType dtype, int64_t rows, int64_t cols) const {
    assert(static_cast<size_t>(rows * cols) * dtype_size(dtype) <= bytes_);
    return Tensor::matrix(data_, dtype, rows, cols);
  }

  void reset() {
    if (data_ != nullptr && release_) release_(data_);
    data_ = nullptr;
    bytes_ = 0;
  }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  std::function<void(void*)> release_;
};

}  // namespace runahead
