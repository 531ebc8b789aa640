"""Studies: applications of the library, each a driver of sweeps and its report. Nothing in
the library imports them."""
