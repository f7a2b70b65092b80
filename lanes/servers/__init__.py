"""The HTTP servers lanes starts: the codec server and the webhook receiver.

Each is a Starlette app served by :class:`~lanes.servers.uvicorn_server.UvicornServer`, whose bounds
(header and body sizes, connections, timeouts) every server shares.
"""
