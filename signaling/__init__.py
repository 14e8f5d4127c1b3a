"""The real-time core of Virtual Windows: pure Python, no I/O.

Nothing in this package imports aiohttp, socketio, redis, aiortc or server/.
"""
