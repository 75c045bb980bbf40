#include <gtest/gtest.h>

#include "net/control/host_port.h"

namespace runahead::net {
namespace {

TEST(HostPort, ParsesNamesAddressesAndBracketedIpv6) {
  auto plain = parse_host_port("127.0.0.1:7000");
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, 7000);
  auto v6 = parse_host_port("[::1]:0");
  ASSERT_TRUE(v6.is_ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->to_string(), "[::1]:0");
  EXPECT_EQ(parse_host_port("localhost:65535")->port, 65535);
}

TEST(HostPort, RejectsMalformedAddressesNamingThem) {
  for (const char* bad :
       {"", "host", ":80", "host:", "host:65536", "host:8x", "::1:80", "[::1]80"}) {
    auto parsed = parse_host_port(bad);
    ASSERT_FALSE(parsed.is_ok()) << bad;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.error().message.find(std::string("'") + bad + "'"), std::string::npos)
        << parsed.error().message;
  }
}

}  // namespace
}  // namespace runahead::net
