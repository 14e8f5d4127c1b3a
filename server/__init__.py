"""The aiohttp signaling server: thin glue around signaling/."""
