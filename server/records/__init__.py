"""The records: SQL schema and migrations, the hash-chained event log, identities, casework, evidence files."""
