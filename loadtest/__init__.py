"""Load generation: the simulator-driven traffic generator (SIPp scenarios come later)."""
