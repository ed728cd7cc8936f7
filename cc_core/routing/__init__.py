"""Pure routing decisions taken at the start of each call: who is calling, from where,
whether a black/white list names them, and whether the tenant is open now.

Nothing here talks to Redis or FreeSWITCH. Data (number prefixes, area codes, official
holidays) is loaded once by a constructor and passed to whoever needs it.
"""
