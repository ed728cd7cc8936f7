"""freeswitch_conf."""
