// Writes a model held in host memory (canonical tensor names, model/host_model.h) as a Hugging
// Face checkpoint directory, config.json and model.safetensors, in the layout load_model()
// reads: worker processes of a cluster test then load a model of any shape from it.
#pragma once

#include <string>

#include "core/status.h"
#include "model/host_model.h"

namespace runahead::testing {

struct HfExportOptions {
  // Llama: writes "head_dim" even where it equals hidden // n_heads, rounded down as
  // transformers derives it (it is always written otherwise).
  bool explicit_head_dim = true;
  // The transformers 5 "rope_parameters" object instead of "rope_theta" + "rope_scaling".
  bool rope_parameters = false;
};

// Llama (LlamaForCausalLM) or Falcon (FalconForCausalLM, multi-query, rotary); other configs
// are refused naming what cannot be written.
[[nodiscard]] Status write_hf_checkpoint(const HostModel& model, const std::string& dir,
                                         const HfExportOptions& options = {});

}  // namespace runahead::testing
