#include "net/data/block_admission.h"

#include <algorithm>

#include <fmt/format.h>

namespace runahead::net {

bool same_capability(const KvCapability& a, const KvCapability& b) {
  uint8_t difference = 0;
  for (size_t i = 0; i < a.bytes.size(); ++i) difference |= a.bytes[i] ^ b.bytes[i];
  return difference == 0;
}

Status admit_block(const KvBlockHeader& header, const BlockAdmission& admission) {
  const bool planned_sender = std::find(admission.senders.begin(), admission.senders.end(),
                                        header.sender_worker) != admission.senders.end();
  const bool capable = same_capability(header.capability, admission.capability);
  if (header.request_id == admission.request_id && planned_sender && capable) return Status::ok();
  const char* why = header.request_id != admission.request_id
                        ? "it belongs to another request"
                        : (!planned_sender ? "that worker is not a planned sender of the request"
                                           : "its capability does not match the request's");
  return make_error(ErrorCode::kProtocol,
                    fmt::format("K/V block {} claiming to come from worker {} refused: {}",
                                describe(header), header.sender_worker, why));
}

}  // namespace runahead::net
