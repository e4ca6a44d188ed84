"""The run record and everything that reads records: schema, record, store, failure, trackers,
export, and the compare, gate and report commands. Never imports run or training."""
