"""What tests and benchmarks share (not part of the installed package): breaking local deployments
(`chaos`), temp configs, daemon processes, EVALSHA-only clients and waiting (`helpers`), and Sentinel
groups with their clients (`sentinel`); containers: the engine, images made from Debian's packages,
podman's Docker API for testcontainers (`containers`)."""
