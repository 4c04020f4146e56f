"""Messages: accept, price, queue, dispatch and track SMS, one row per recipient."""
