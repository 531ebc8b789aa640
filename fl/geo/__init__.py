"""Orbit-driven remote-sensing data: real land cover under real ground tracks."""
