"""Work done after the ack: the delivery engine and its kinds, the scheduler's jobs."""
