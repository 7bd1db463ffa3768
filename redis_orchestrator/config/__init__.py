"""The config file, parsed once at the edge into frozen settings; nothing downstream sees a dict.

- `settings`: the values (`Config`, `StartSettings` read once at start, `DesiredState` replaced
  whole by each reload, `RedisSettings`, `Secret`, `Mode`, `RedisOverrides`, `restart_needed`).
- `loader`: `load_config` / `parse_config`: YAML to settings, the schema derived from the settings'
  fields, every problem collected with its `file:line:col` into one ConfigError.
- `yaml_source` (YAML that remembers where each value was written), `durations` ("500ms", "2s"),
  `addresses` (HOST:PORT).
"""
