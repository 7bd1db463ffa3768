"""What must be on every node: the catalog of scripts and function libraries, as immutable values.

- `model`: `Catalog`, `Script` (a file's bytes and SHA1), `Kind`, the specs the config reads
  (`CatalogSpec`, `ScriptSpec`) and `load_catalog`, which reads and hashes the files; the manifest
  clients read (`Catalog.manifest`).
- `shebang`: a script's `#!lua` line and its flags (`parse_shebang`, `Shebang`).

The lowest layer of the package: it imports nothing of ours but `errors`.
"""
