"""Background jobs (imports) whose state lives in the database: the Job model, its services,
archive checks and the import runner. Part of the collection layer: it never imports `search`."""
