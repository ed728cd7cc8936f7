"""cc-core: the contact-centre core behind 400 numbers, driving FreeSWITCH over ESL."""

__version__ = "0.1.0"
