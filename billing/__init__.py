"""Billing (400 cost sharing, issue 9): one concern, beside ``records/`` whose store it uses.

* ``billing.rating``: the arithmetic of one call (increments, included minutes, fen);
* ``billing.accounts``: accounts, rate tables, the ledger, rating stored records once;
* ``billing.bills``: bills per month, quarter or year (``cc-core billing bill``);
* ``billing.credit``: the Redis credit view the call flow reads, and the hard-stop time;
* ``billing.service``: what spans both (the consumer's rating step, top-ups + publish);
* ``billing.cli``: ``cc-core billing …``.
"""
