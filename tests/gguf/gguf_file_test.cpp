// The GGUF container: metadata of every type, the tensor table, alignment, and every way a
// file can lie about itself (each must be one clear error, never a crash or a huge allocation).
#include <gtest/gtest.h>

#include "model/gguf.h"
#include "tests/gguf/gguf_builder.h"

namespace runahead {
namespace {

using testing::GgufBuilder;
using testing::write_temp_file;

Result<std::shared_ptr<const GgufFile>> parse_bytes(const std::string& bytes,
                                                    const std::string& name = "test.gguf") {
  return GgufFile::open(write_temp_file(name, bytes));
}

TEST(GgufFile, ReadsMetadataOfEveryType) {
  GgufBuilder b;
  b.raw_kv("u8", 0, GgufBuilder::bytes_of<uint8_t>(200));
  b.raw_kv("i8", 1, GgufBuilder::bytes_of<int8_t>(-100));
  b.raw_kv("u16", 2, GgufBuilder::bytes_of<uint16_t>(60000));
  b.raw_kv("i16", 3, GgufBuilder::bytes_of<int16_t>(-30000));
  b.u32("u32", 4000000000u);
  b.i32("i32", -2000000000);
  b.f32("f32", 1.5f);
  b.boolean("bool", true);
  b.str("string", "héllo");
  b.raw_kv("u64", 10, GgufBuilder::bytes_of<uint64_t>(uint64_t{1} << 40));
  b.raw_kv("i64", 11, GgufBuilder::bytes_of<int64_t>(-(int64_t{1} << 40)));
  b.raw_kv("f64", 12, GgufBuilder::bytes_of<double>(0.125));
  b.str_array("strings", {"a", "", "ccc"});
  b.i32_array("ints", {1, -2, 3});
  // An array of two arrays of uint8.
  std::string nested;
  GgufBuilder::put<uint32_t>(nested, 9);
  GgufBuilder::put<uint64_t>(nested, 2);
  for (uint8_t n : {uint8_t{1}, uint8_t{2}}) {
    GgufBuilder::put<uint32_t>(nested, 0);
    GgufBuilder::put<uint64_t>(nested, n);
    for (uint8_t i = 0; i < n; ++i) GgufBuilder::put<uint8_t>(nested, i);
  }
  b.raw_kv("nested", 9, nested);

  auto file = parse_bytes(b.build());
  ASSERT_TRUE(file) << file.error().to_string();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(*f.get_int("u8"), 200);
  EXPECT_EQ(*f.get_int("i8"), -100);
  EXPECT_EQ(*f.get_int("u16"), 60000);
  EXPECT_EQ(*f.get_int("i16"), -30000);
  EXPECT_EQ(*f.get_int("u32"), 4000000000);
  EXPECT_EQ(*f.get_int("i32"), -2000000000);
  EXPECT_EQ(*f.get_int("u64"), int64_t{1} << 40);
  EXPECT_EQ(*f.get_int("i64"), -(int64_t{1} << 40));
  EXPECT_FLOAT_EQ(static_cast<float>(*f.get_float("f32")), 1.5f);
  EXPECT_DOUBLE_EQ(*f.get_float("f64"), 0.125);
  EXPECT_TRUE(*f.get_bool_or("bool", false));
  EXPECT_EQ(*f.get_string("string"), "héllo");
  EXPECT_EQ(*f.get_string_array("strings"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(*f.get_int_array("ints"), (std::vector<int64_t>{1, -2, 3}));
  const GgufValue* value = f.find("nested");
  ASSERT_NE(value, nullptr);
  ASSERT_NE(value->as_array(), nullptr);
  ASSERT_EQ(value->as_array()->size(), 2u);
  EXPECT_EQ((*value->as_array())[1].as_array()->size(), 2u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_TRUE(f.tensors().empty());
}

TEST(GgufFile, TypedLookupsNameTheKey) {
  GgufBuilder b;
  b.str("name", "x");
  auto file = parse_bytes(b.build());
  ASSERT_TRUE(file);
  auto wrong = (*file)->get_int("name");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("name"), std::string::npos);
  EXPECT_NE(wrong.error().message.find("string"), std::string::npos);
  auto missing = (*file)->get_string("llama.block_count");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("llama.block_count"), std::string::npos);
  EXPECT_EQ(*(*file)->get_int_or("absent", 7), 7);
}

TEST(GgufFile, TensorTableHonoursAlignment) {
  for (uint32_t alignment : {32u, 64u, 256u}) {
    SCOPED_TRACE("alignment " + std::to_string(alignment));
    GgufBuilder b;
    if (alignment != 32) b.u32("general.alignment", alignment);
    b.tensor_f32("a", {3}, {1.0f, 2.0f, 3.0f});
    b.tensor_f32("b", {2, 2}, {4.0f, 5.0f, 6.0f, 7.0f});
    auto file = parse_bytes(b.build(3, alignment));
    ASSERT_TRUE(file) << file.error().to_string();
    const GgufFile& f = **file;
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    ASSERT_EQ(f.tensors().size(), 2u);
    const GgufTensorInfo* t = f.find_tensor("b");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dims, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(t->elements, 4);
    EXPECT_EQ(t->bytes, 16u);
    EXPECT_EQ(t->offset, alignment);
    EXPECT_EQ(t->data, f.mapping()->data() + f.data_offset() + alignment);
    auto values = dequantize_tensor(f, *t);
    ASSERT_TRUE(values);
    EXPECT_EQ(*values, (std::vector<float>{4.0f, 5.0f, 6.0f, 7.0f}));
  }
}

TEST(GgufFile, AcceptsVersionTwoAndThreeOnly) {
  GgufBuilder b;
  b.u32("x", 1);
  EXPECT_TRUE(parse_bytes(b.build(2)));
  EXPECT_TRUE(parse_bytes(b.build(3)));
  for (uint32_t version : {1u, 4u}) {
    auto file = parse_bytes(b.build(version));
    ASSERT_FALSE(file);
    EXPECT_NE(file.error().message.find("version " + std::to_string(version)), std::string::npos);
  }
}

TEST(GgufFile, RejectsWrongMagic) {
  GgufBuilder b;
  auto file = parse_bytes(b.build(3, 32, "GGML"));
  ASSERT_FALSE(file);
  EXPECT_NE(file.error().message.find("magic"), std::string::npos);
}

TEST(GgufFile, EveryTruncationIsAnError) {
  GgufBuilder b;
  b.str("general.architecture", "llama");
  b.str_array("tokens", {"a", "bb"});
  b.tensor_f32("w", {4}, {1, 2, 3, 4});
  const std::string whole = b.build();
  ASSERT_TRUE(parse_bytes(whole));
  for (size_t size = 0; size < whole.size(); ++size) {
    auto file = parse_bytes(whole.substr(0, size), "truncated.gguf");
    EXPECT_FALSE(file) << "a file cut at " << size << " bytes was accepted";
  }
}

TEST(GgufFile, RejectsLengthsBeyondTheFile) {
  {
    std::string payload;
    GgufBuilder::put<uint64_t>(payload, uint64_t{1} << 60);  // string length
    GgufBuilder b;
    b.raw_kv("general.name", 8, payload);
    auto file = parse_bytes(b.build());
    ASSERT_FALSE(file);
    EXPECT_NE(file.error().message.find("general.name"), std::string::npos);
  }
  {
    std::string payload;
    GgufBuilder::put<uint32_t>(payload, 8);
    GgufBuilder::put<uint64_t>(payload, uint64_t{1} << 62);  // array count
    GgufBuilder b;
    b.raw_kv("tokenizer.ggml.tokens", 9, payload);
    auto file = parse_bytes(b.build());
    ASSERT_FALSE(file);
    EXPECT_NE(file.error().message.find("tokenizer.ggml.tokens"), std::string::npos);
  }
}

TEST(GgufFile, RejectsTensorDataPastTheEnd) {
  GgufBuilder b;
  b.tensor_f32("blk.0.attn_q.weight", {4}, {1, 2, 3, 4});
  b.override_offset(4096);
  auto file = parse_bytes(b.build());
  ASSERT_FALSE(file);
  EXPECT_NE(file.error().message.find("blk.0.attn_q.weight"), std::string::npos);
  EXPECT_NE(file.error().message.find("truncated"), std::string::npos);
}

TEST(GgufFile, RejectsShapesThatOverflow) {
  GgufBuilder b;
  b.tensor("huge", {uint64_t{1} << 32, uint64_t{1} << 32}, 0, "");
  auto file = parse_bytes(b.build());
  ASSERT_FALSE(file);
  EXPECT_NE(file.error().message.find("huge"), std::string::npos);
}

TEST(GgufFile, RejectsUnknownTypesAndMisalignedOffsets) {
  {
    GgufBuilder b;
    b.tensor("odd", {4}, 99, std::string(16, '\0'));
    auto file = parse_bytes(b.build());
    ASSERT_FALSE(file);
    EXPECT_NE(file.error().message.find("odd"), std::string::npos);
    EXPECT_NE(file.error().message.find("99"), std::string::npos);
  }
  {
    GgufBuilder b;
    b.tensor_f32("a", {1}, {1});
    b.override_offset(4);
    auto file = parse_bytes(b.build());
    ASSERT_FALSE(file);
    EXPECT_NE(file.error().message.find("aligned"), std::string::npos);
  }
  {
    GgufBuilder b;
    b.u32("general.alignment", 48);
    auto file = parse_bytes(b.build());
    ASSERT_FALSE(file);
    EXPECT_NE(file.error().message.find("general.alignment"), std::string::npos);
  }
}

TEST(GgufFile, RejectsDuplicateKeys) {
  GgufBuilder b;
  b.u32("llama.block_count", 1);
  b.u32("llama.block_count", 2);
  auto file = parse_bytes(b.build());
  ASSERT_FALSE(file);
  EXPECT_NE(file.error().message.find("llama.block_count"), std::string::npos);
}

TEST(GgufFile, UnsupportedQuantizationNamesTensorAndType) {
  GgufBuilder b;
  b.tensor("blk.3.ffn_down.weight", {256}, 12, std::string(144, '\0'));  // Q4_K
  auto file = parse_bytes(b.build());
  ASSERT_TRUE(file) << file.error().to_string();
  auto values = dequantize_tensor(**file, (*file)->tensors()[0]);
  ASSERT_FALSE(values);
  EXPECT_EQ(values.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(values.error().message.find("blk.3.ffn_down.weight"), std::string::npos);
  EXPECT_NE(values.error().message.find("Q4_K"), std::string::npos);
}

}  // namespace
}  // namespace runahead
