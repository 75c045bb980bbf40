#include "net/control/control_auth.h"

#include <fmt/format.h>

namespace runahead::net {

const ControlKey* ControlAuth::key_for(PeerRole role) const {
  switch (role) {
    case PeerRole::kWorker:
      return cluster_key ? &*cluster_key : nullptr;
    case PeerRole::kClient:
      return client_key ? &*client_key : nullptr;
  }
  return nullptr;
}

Result<ControlAuth> ControlAuth::load(const std::string& cluster_key_file,
                                      const std::string& client_key_file, bool insecure) {
  ControlAuth auth;
  auth.insecure = insecure;
  if (!cluster_key_file.empty()) {
    RUNAHEAD_ASSIGN_OR_RETURN(auth.cluster_key, ControlKey::load(cluster_key_file));
  }
  if (!client_key_file.empty()) {
    RUNAHEAD_ASSIGN_OR_RETURN(auth.client_key, ControlKey::load(client_key_file));
  }
  if (auth.cluster_key && auth.client_key && auth.cluster_key->same_secret(*auth.client_key)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("the cluster key ({}) and the client key ({}) are the same: a "
                                  "client could then join as a worker; give each its own key "
                                  "(runahead keygen PATH)",
                                  cluster_key_file, client_key_file));
  }
  return auth;
}

Status ControlAuth::check_listen(const std::string& address, bool loopback_only) const {
  if (loopback_only || insecure || complete()) return Status::ok();
  const char* missing = !cluster_key && !client_key ? "--cluster-key-file and --client-key-file"
                        : !cluster_key              ? "--cluster-key-file"
                                                    : "--client-key-file";
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("refusing to listen on {}, which is not a loopback address, "
                                "without authentication: anyone who reaches it could join as a "
                                "worker or submit prompts; give {} (runahead keygen PATH makes "
                                "a key), or --insecure on a network you trust",
                                address, missing));
}

}  // namespace runahead::net
