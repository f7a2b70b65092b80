"""``lanes webhooks``: the provider's "response finished" webhooks end the waits of their jobs.

:mod:`~lanes.servers.webhooks.verification` decides whether a delivery is believed,
:mod:`~lanes.servers.webhooks.receiver` turns it into a ``provider_finished`` signal,
:mod:`~lanes.servers.webhooks.server` serves it. See ``docs/webhooks.md``.
"""
