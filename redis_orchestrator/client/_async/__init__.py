"""The asyncio client, and the one source of the sync client.

tools/unasync.py writes every module of ../_sync/ from the module of the same name here (`async def`
becomes `def`, `await` goes, AsyncScripts becomes Scripts, ...): edit here, then run it. Two files are
hand-written and not copied: this one, and primitives.py, the few things the two flavours do
differently (it has a sync twin, _sync/primitives.py, with the same names).
"""
