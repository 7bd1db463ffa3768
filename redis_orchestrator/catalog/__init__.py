"""What must be on every node: the catalog of scripts and function libraries, as immutable values.

- `model`: `Catalog`, `Script` (a file's bytes and SHA1), `Kind`, the specs the config reads
  (`CatalogSpec`, `ScriptSpec`) and `load_catalog`, which reads and hashes the files; the manifest
  clients read (`Catalog.manifest`).
- `shebang`: a script's `#!lua` line and its flags (`parse_shebang`, `Shebang`).
- `files`: reading a file the config names (regular files only, never blocking, bounded:
  `read_file`, `FileReads`) and what each read saw (`FileSeen`), for the file watch.

The lowest layer of the package: it imports nothing of ours but `errors`.
"""
