#include "launcher/config_sections.h"

namespace tessera::launcher {

const ConfigSchema& config_schema() {
  static const ConfigSchema schema = [] {
    ConfigSchema s;
    declare_generation_config(s);
    declare_plan_config(s);
    declare_serve_config(s);
    return s;
  }();
  return schema;
}

}  // namespace tessera::launcher
