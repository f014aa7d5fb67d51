"""DNS provider plugins against live peers: BIND, Knot and moto's Route 53."""
