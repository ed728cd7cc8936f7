"""fssim."""
