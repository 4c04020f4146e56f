"""Phone verification: one-time codes sent by SMS and checked without the caller storing them."""
