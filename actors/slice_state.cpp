#include "actors/slice_state.h"

#include <utility>

namespace runahead {

SliceState::SliceState(const Transformer& model, SlicePlan slice_plan,
                       std::shared_ptr<KvCache> kv_cache, net::Transport& data_plane,
                       SliceRun::IoPost post)
    : transformer(model),
      plan(std::move(slice_plan)),
      cache(std::move(kv_cache)),
      transport(data_plane),
      io_post(std::move(post)),
      timeline(static_cast<size_t>(model.config().n_layers)) {}

std::string SliceState::request_name() const {
  return "request " + std::to_string(plan.request_id);
}

void SliceState::fail(Status reason) {
  {
    std::lock_guard lock(mutex);
    if (!failure) failure = std::move(reason);
  }
  changed.notify_all();
}

}  // namespace runahead
