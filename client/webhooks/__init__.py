"""``lanes webhooks``: the provider's "response finished" webhooks end the waits of their jobs.

:mod:`~client.webhooks.verification` decides whether a delivery is believed, :mod:`~client.webhooks.receiver`
turns it into a ``provider_finished`` signal, :mod:`~client.webhooks.server` serves it. See
``docs/webhooks.md``.
"""
