"""Missed-call notice (漏电提醒, issue 9): an optional webhook per tenant
(``Tenant.missed_call_webhook``) told of each call that ended unanswered.

Its own concern beside billing: it reads the same finished-call summaries (the calls streams,
in a consumer group of its own) and nothing on the call path waits for it. The call flow
only appends the summary, as it does for every call; collecting and delivering run in their
own greenlet (``notify.notifier.run_in_worker``), deliveries in a bounded pool with a
timeout each, so a dead or slow endpoint delays its own notices, never a call nor another
tenant's notices.
"""
