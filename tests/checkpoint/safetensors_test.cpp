// The safetensors reader: exact round trips, and every malformed header refused with a message
// that names the file and the tensor or value at fault.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "model/safetensors.h"
#include "tests/checkpoint/checkpoint_files.h"

namespace runahead {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::write_raw_safetensors;

// Opens `path`, expecting failure; returns the message.
std::string open_error(const std::string& path) {
  auto file = SafetensorsFile::open(path);
  EXPECT_FALSE(file.is_ok()) << path << " opened although it is malformed";
  return file.is_ok() ? "" : file.error().message;
}

TEST(SafetensorsTest, RoundTripsEveryDtypeExactly) {
  TempDir dir;
  const std::vector<float> f32 = {1.5f, -2.25f, 3.0e-8f, 65504.0f, -0.0f, 7.0f};
  std::vector<uint16_t> bf16(f32.size()), f16(f32.size());
  convert_from_f32(f32.data(), DType::kBF16, bf16.data(), f32.size());
  convert_from_f32(f32.data(), DType::kF16, f16.data(), f32.size());
  const std::string path = dir.file("t.safetensors");
  ASSERT_TRUE(write_safetensors(path, {{"a.f32", DType::kF32, {2, 3}, f32.data()},
                                       {"b.bf16", DType::kBF16, {6}, bf16.data()},
                                       {"c.f16", DType::kF16, {3, 2}, f16.data()}})
                  .is_ok());

  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.is_ok()) << file.error().to_string();
  ASSERT_EQ((*file)->tensors().size(), 3u);

  auto a = (*file)->host_tensor("a.f32");
  ASSERT_TRUE(a.is_ok()) << a.error().to_string();
  EXPECT_EQ(a->dtype, DType::kF32);
  EXPECT_EQ(a->rows, 2);
  EXPECT_EQ(a->cols, 3);
  EXPECT_EQ(std::memcmp(a->data, f32.data(), f32.size() * 4), 0);
  EXPECT_THAT(a->origin, HasSubstr("a.f32"));

  auto b = (*file)->host_tensor("b.bf16");
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->dtype, DType::kBF16);
  EXPECT_EQ(b->rows, 1);  // a vector becomes one row
  EXPECT_EQ(b->cols, 6);
  EXPECT_EQ(std::memcmp(b->data, bf16.data(), bf16.size() * 2), 0);

  auto c = (*file)->host_tensor("c.f16");
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->dtype, DType::kF16);
  EXPECT_EQ(c->rows, 3);
  EXPECT_EQ(c->cols, 2);
  EXPECT_EQ(std::memcmp(c->data, f16.data(), f16.size() * 2), 0);
}

TEST(SafetensorsTest, IgnoresMetadataAndAcceptsUnpaddedHeaders) {
  TempDir dir;
  const std::string path = dir.file("t.safetensors");
  // A header of 8k + 5 bytes leaves the data misaligned; the reader must still return the values.
  std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  header.append(8 - header.size() % 8 + 5, ' ');
  std::vector<uint8_t> data(8);
  const float values[2] = {0.5f, -4.0f};
  std::memcpy(data.data(), values, 8);
  write_raw_safetensors(path, header, data);
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.is_ok()) << file.error().to_string();
  EXPECT_EQ((*file)->tensors().size(), 1u);
  auto w = (*file)->host_tensor("w");
  ASSERT_TRUE(w.is_ok());
  EXPECT_EQ(static_cast<const float*>(w->data)[1], -4.0f);
}

TEST(SafetensorsTest, ParsesBytesInMemoryAsOpenParsesTheFile) {
  std::string header = R"({"w":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}})";
  header.append(3, ' ');  // misaligned data, copied out of the buffer
  std::vector<uint8_t> bytes(8);
  for (size_t i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(header.size() >> (8 * i));
  bytes.insert(bytes.end(), header.begin(), header.end());
  const float values[2] = {2.5f, -1.0f};
  const auto* value_bytes = reinterpret_cast<const uint8_t*>(values);
  bytes.insert(bytes.end(), value_bytes, value_bytes + sizeof values);
  auto mapping = MappedFile::from_bytes("memory.safetensors", bytes);
  ASSERT_TRUE(mapping.is_ok()) << mapping.error().to_string();
  auto file = SafetensorsFile::parse(std::move(mapping).value());
  ASSERT_TRUE(file.is_ok()) << file.error().to_string();
  auto w = (*file)->host_tensor("w");
  ASSERT_TRUE(w.is_ok()) << w.error().to_string();
  EXPECT_EQ(w->cols, 2);
  EXPECT_EQ(static_cast<const float*>(w->data)[0], 2.5f);
  EXPECT_EQ(static_cast<const float*>(w->data)[1], -1.0f);

  bytes.resize(bytes.size() - 1);
  auto short_file = SafetensorsFile::parse(*MappedFile::from_bytes("memory.safetensors", bytes));
  ASSERT_FALSE(short_file.is_ok());
  EXPECT_THAT(short_file.error().message, HasSubstr("memory.safetensors: tensor w"));
}

TEST(SafetensorsTest, RefusesFileShorterThanTheLengthField) {
  TempDir dir;
  testing::write_text(dir.file("short.safetensors"), "abc");
  const std::string message = open_error(dir.file("short.safetensors"));
  EXPECT_THAT(message, HasSubstr("short.safetensors"));
  EXPECT_THAT(message, HasSubstr("too short"));
}

TEST(SafetensorsTest, RefusesHeaderLengthBeyondTheFile) {
  TempDir dir;
  const std::string path = dir.file("long.safetensors");
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(0xe8);  // 1000
  bytes[1] = 0x03;
  bytes += "{}";
  testing::write_text(path, bytes);
  const std::string message = open_error(path);
  EXPECT_THAT(message, HasSubstr(path));
  EXPECT_THAT(message, HasSubstr("header length 1000"));
}

TEST(SafetensorsTest, RefusesHugeHeaderLength) {
  TempDir dir;
  const std::string path = dir.file("huge.safetensors");
  std::string bytes(8, static_cast<char>(0xff));
  bytes += "{}";
  testing::write_text(path, bytes);
  EXPECT_THAT(open_error(path), HasSubstr("header length 18446744073709551615"));
}

TEST(SafetensorsTest, RefusesHeadersThatAreNotJsonObjects) {
  TempDir dir;
  write_raw_safetensors(dir.file("array.safetensors"), "[1, 2]", {});
  EXPECT_THAT(open_error(dir.file("array.safetensors")), HasSubstr("not a JSON object"));
  write_raw_safetensors(dir.file("garbage.safetensors"), "{\"w\": {", {});
  EXPECT_THAT(open_error(dir.file("garbage.safetensors")), HasSubstr("not valid JSON"));
}

struct BadHeaderCase {
  const char* label;
  const char* header;
  size_t data_bytes;
  const char* expected;  // besides the file and the tensor name
};

class SafetensorsBadHeaderTest : public ::testing::TestWithParam<BadHeaderCase> {};

TEST_P(SafetensorsBadHeaderTest, NamesFileTensorAndValue) {
  const BadHeaderCase& c = GetParam();
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  write_raw_safetensors(path, c.header, std::vector<uint8_t>(c.data_bytes));
  const std::string message = open_error(path);
  EXPECT_THAT(message, HasSubstr(path));
  EXPECT_THAT(message, HasSubstr("bad_tensor"));
  EXPECT_THAT(message, HasSubstr(c.expected));
}

INSTANTIATE_TEST_SUITE_P(
    Headers, SafetensorsBadHeaderTest,
    ::testing::Values(
        BadHeaderCase{"unsupported_dtype",
                      R"({"bad_tensor":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", 16,
                      "dtype I64"},
        BadHeaderCase{"negative_dim",
                      R"({"bad_tensor":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}})", 16,
                      "[-1,4]"},
        BadHeaderCase{"overflowing_dims",
                      R"({"bad_tensor":{"dtype":"F32","shape":[4294967296,4294967296],)"
                      R"("data_offsets":[0,16]}})",
                      16, "overflows"},
        BadHeaderCase{"offsets_beyond_data",
                      R"({"bad_tensor":{"dtype":"F32","shape":[250],"data_offsets":[0,1000]}})", 16,
                      "[0, 1000) out of range"},
        BadHeaderCase{"offsets_reversed",
                      R"({"bad_tensor":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 16,
                      "[8, 4) out of range"},
        BadHeaderCase{"offsets_negative",
                      R"({"bad_tensor":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 16,
                      "data_offsets"},
        BadHeaderCase{"size_mismatch",
                      R"({"bad_tensor":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 16,
                      "needs 16"},
        BadHeaderCase{"overlap",
                      R"({"a_tensor":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                      R"("bad_tensor":{"dtype":"F16","shape":[8],"data_offsets":[8,24]}})",
                      24, "overlap"},
        BadHeaderCase{"missing_shape", R"({"bad_tensor":{"dtype":"F32","data_offsets":[0,8]}})", 8,
                      "shape"},
        BadHeaderCase{"entry_not_object", R"({"bad_tensor":[1,2,3]})", 0, "not an object"}),
    [](const ::testing::TestParamInfo<BadHeaderCase>& param_info) {
      return param_info.param.label;
    });

TEST(SafetensorsTest, RefusesTruncatedFile) {
  TempDir dir;
  const std::string path = dir.file("cut.safetensors");
  std::vector<float> values(64, 1.0f);
  ASSERT_TRUE(write_safetensors(path, {{"first", DType::kF32, {32}, values.data()},
                                       {"second", DType::kF32, {32}, values.data() + 32}})
                  .is_ok());
  const auto size = std::filesystem::file_size(path);
  testing::truncate_file(path, size - 10);
  const std::string message = open_error(path);
  EXPECT_THAT(message, HasSubstr(path));
  EXPECT_THAT(message, HasSubstr("second"));
  EXPECT_THAT(message, HasSubstr("out of range"));
}

TEST(SafetensorsTest, HostTensorRefusesOtherRanks) {
  TempDir dir;
  const std::string path = dir.file("rank3.safetensors");
  std::vector<float> values(24, 0.0f);
  ASSERT_TRUE(write_safetensors(path, {{"cube", DType::kF32, {2, 3, 4}, values.data()}}).is_ok());
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.is_ok());
  auto tensor = (*file)->host_tensor("cube");
  ASSERT_FALSE(tensor.is_ok());
  EXPECT_THAT(tensor.error().message, HasSubstr("cube"));
  EXPECT_THAT(tensor.error().message, HasSubstr("rank 3"));
  auto absent = (*file)->host_tensor("nothing");
  ASSERT_FALSE(absent.is_ok());
  EXPECT_THAT(absent.error().message, HasSubstr("nothing"));
}

}  // namespace
}  // namespace runahead
