"""Call recordings (issue 9): policy, storage layout, index, retention and checks.

* ``policy``: whether a call is recorded and how (tenant and queue config, mono or stereo);
* ``layout``: where a recording lives, ``<root>/<tenant>/<yyyy>/<mm>/<dd>/<call-uuid>.wav``
  (the date in the tenant's time zone), and the one way back from an index row to a file;
* ``recorder``: the worker side, starting ``uuid_record`` / ``record_session`` and learning
  from RECORD_START / RECORD_STOP what was written;
* ``index``: the ``recordings`` table of the SQL store (migration 0005);
* ``retention`` and ``check``: ``cc-core recordings purge`` and ``cc-core recordings check``;
* ``wav``: the little of RIFF/WAVE that a check needs.
"""
