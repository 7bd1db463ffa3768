"""The sync client, generated: every module here but this one and primitives.py is written by
tools/unasync.py from the module of the same name in ../_async/. Edit those, then run it;
`tools/unasync.py --check` (and tests/test_unasync.py) fails when a file here is stale.
"""
